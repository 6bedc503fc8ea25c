"""The API names every invalid field of a request in one answer: type errors of each field
(msgspec stops at the first, the strict check goes on), and a send that would reach nobody
names `to` beside the other fields it gets wrong, writing nothing."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging.tables import Batch, Message


async def test_a_send_to_no_phone_number_with_an_empty_body_names_both(client, world, make_key):
    headers = await make_key("alpha", "Sender")
    for body in (
        {"to": "not-a-list", "body": ""},
        {"to": ["not-a-number", "12"], "body": ""},
        {"to": "not-a-list"},
    ):
        r = await client.post("/api/v1/messages", json=body, headers=headers)
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert set(errors) == {"to", "body"}, errors
        assert errors["to"].startswith("Not a phone number: not-a")
    assert await Batch.count() == 0 and await Message.count() == 0


async def test_a_send_to_no_phone_number_alone_is_refused_naming_to(client, world, make_key):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/messages", json={"to": ["nope"], "body": "Hello"}, headers=headers
    )
    assert r.status_code == 422 and set(r.json()["errors"]) == {"to"}
    assert await Batch.count() == 0
    # Beside a good number a bad one is skipped with its reason, as before.
    r = await client.post(
        "/api/v1/messages", json={"to": ["nope", "+61400000001"], "body": "Hello"}, headers=headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["skipped"] == [{"to": "nope", "reason": "invalid_number"}]


async def test_type_errors_of_several_fields_are_named_at_once(client, world, make_key):
    headers = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/messages",
        json={"to": 5, "body": 7, "track_links": "yes", "list_ids": "x"},
        headers=headers,
    )
    assert r.status_code == 422
    assert set(r.json()["errors"]) == {"to", "body", "track_links", "list_ids"}
    r = await client.post("/api/v1/contacts", json={"phone": 1, "first_name": 2}, headers=headers)
    assert r.status_code == 422 and set(r.json()["errors"]) >= {"phone", "first_name"}
