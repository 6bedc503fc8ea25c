"""The API names every invalid field of a request in one answer: type errors of each field
(msgspec stops at the first, the strict check goes on), and a send that would reach nobody
names `to` beside the other fields it gets wrong, writing nothing."""

from __future__ import annotations

from tenants.access import apikeys
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging.tables import Batch, Message
from tenants.numbers import numbers
from tenants.numbers.tables import Keyword
from tests.api.conftest import basic
from tests.conftest import login
from tests.factories import HX


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


async def test_a_keyword_claim_names_the_word_and_the_account_at_once(client, demo):
    made = await apikeys.create_api_key(
        actor=SYSTEM, account_id=demo["northwind"], name="claims", role="Owner"
    )
    headers = basic(made.key_id, made.secret)
    r = await client.post(
        "/api/v1/keywords",
        # Melbourne's number: Sydney does not send from it; and two words are no keyword.
        json={"number": "+61480000001", "word": "two words", "account_id": demo["sydney"]},
        headers=headers,
    )
    assert r.status_code == 422, r.text
    assert set(r.json()["errors"]) == {"word", "account_id"}
    assert await Keyword.count() == 1  # the demo's JOIN only


async def test_adding_a_number_names_every_bad_field(client, demo):
    token = await login(client, "operator@portal.test")
    r = await client.post(
        "/numbers",
        data={"_csrf_token": token, "number": "12345", "kind": "long_code", "owner_id": ""},
        headers=HX,
    )
    assert r.status_code == 422
    assert 'id="num-number-error"' in r.text and 'id="num-owner-error"' in r.text
    assert len(await numbers.numbers_for(demo["platform"])) == 2
