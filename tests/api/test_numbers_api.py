"""/api/v1 numbers, senders, sender IDs and keywords: shapes, 409 reasons, tenant scoping."""

from __future__ import annotations

from tenants.access import apikeys
from tenants.audit.record import SYSTEM
from tenants.numbers import numbers
from tests.api.conftest import basic


async def key(demo: dict[str, int], slug: str, role: str) -> dict[str, str]:
    made = await apikeys.create_api_key(
        actor=SYSTEM, account_id=demo[slug], name=f"{slug}-{role}", role=role
    )
    return basic(made.key_id, made.secret)


async def test_numbers_and_senders_of_a_sub_account(client, demo):
    headers = await key(demo, "melbourne-events", "Sender")
    r = await client.get("/api/v1/numbers", headers=headers)
    assert r.status_code == 200
    held = {n["number"]: n["account_id"] for n in r.json()}
    assert held == {"+61480000000": demo["northwind"], "+61480000001": demo["melbourne"]}
    r = await client.get("/api/v1/senders", headers=headers)
    assert [s["value"] for s in r.json()] == ["+61480000000", "+61480000001"]
    assert all(s["receives_replies"] for s in r.json())


async def test_claim_keyword_409_reasons_and_201(client, demo):
    headers = await key(demo, "sydney", "Admin")
    r = await client.post(
        "/api/v1/keywords", json={"number": "+61480000000", "word": "stop"}, headers=headers
    )
    assert r.status_code == 409 and r.json()["code"] == "compliance_keyword"
    r = await client.post(
        "/api/v1/keywords", json={"number": "+61480000000", "word": "Join"}, headers=headers
    )
    # Sydney holds JOIN itself in the demo, so it may see the holder.
    assert r.status_code == 409 and r.json()["code"] == "duplicate_keyword"
    assert "Sydney Branch" in r.json()["message"]
    r = await client.post(
        "/api/v1/keywords", json={"number": "+61480000000", "word": "Deals"}, headers=headers
    )
    assert r.status_code == 201
    body = r.json()
    assert body["word"] == "DEALS" and body["account_id"] == demo["sydney"]
    r = await client.post(
        f"/api/v1/keywords/{body['id']}/actions",
        json={"kind": "auto_reply", "reply_text": "Thanks"},
        headers=headers,
    )
    assert r.status_code == 201 and r.json()["actions"][0]["reply_text"] == "Thanks"
    r = await client.get("/api/v1/keywords", headers=headers)
    assert sorted(k["word"] for k in r.json()) == ["DEALS", "JOIN"]


async def test_keyword_on_another_trees_number_is_404(client, world, demo):
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    headers = await key(demo, "sydney", "Admin")
    r = await client.post(
        "/api/v1/keywords", json={"number_id": melb.id, "word": "deals"}, headers=headers
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/keywords", json={"number_id": "x", "word": "deals"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["field"] == "number_id"


async def test_sender_key_cannot_claim_and_sender_ids_need_numbers_manage(client, demo):
    headers = await key(demo, "sydney", "Sender")
    r = await client.post(
        "/api/v1/keywords", json={"number": "+61480000000", "word": "deals"}, headers=headers
    )
    assert r.status_code == 403
    assert (
        await client.post("/api/v1/sender-ids", json={"value": "Syd"}, headers=headers)
    ).status_code == 403
    admin = await key(demo, "northwind", "Owner")
    r = await client.post(
        "/api/v1/sender-ids", json={"value": "Syd", "account_id": demo["sydney"]}, headers=admin
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    r = await client.post("/api/v1/sender-ids", json={"value": "x" * 12}, headers=admin)
    assert r.status_code == 422 and r.json()["field"] == "value"
