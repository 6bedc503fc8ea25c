"""POST/GET /api/v1/messages end to end: consent filter, exact cost, delivery through the
simulator with a real worker (stub broker or Redis), refunds, idempotency, permissions."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.credits import ledger
from tenants.messaging.messages import FINAL_STATUSES
from tenants.messaging.tables import Message
from tenants.numbers import numbers
from tests.factories import wait_until

NUMBERS = ["+61400000001", "+61400000002", "+61400000003"]


async def fund(account_id: int, amount: int = 1000) -> None:
    await ledger.adjust(account_id, amount, reason="test credits", actor=SYSTEM)


async def wait_final(ids: list[int], seconds: float = 20.0) -> dict[int, str]:
    """Poll until every message has a final status (the worker and callbacks run apart)."""

    async def final() -> dict[int, str] | None:
        rows = await Message.select(Message.id, Message.status).where(Message.id.is_in(ids))
        statuses = {r["id"]: r["status"] for r in rows}
        done = len(statuses) == len(ids) and all(s in FINAL_STATUSES for s in statuses.values())
        return statuses if done else None

    return await wait_until(final, seconds, what=f"a final status for messages {ids}")


async def test_send_skips_the_opted_out_charges_exactly_and_delivers(
    client, world, make_key, worker, simulator
):
    account = world.accounts["alpha"]
    await fund(account)
    await consent_events.record_opt_out(account, NUMBERS[2], "sms", source="manual")
    headers = await make_key("alpha", "Sender")
    before = await ledger.balance(account)
    r = await client.post(
        "/api/v1/messages",
        json={"to": NUMBERS, "body": "Hello from Alpha"},
        headers={**headers, "Idempotency-Key": "send-1"},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert [a["to"] for a in body["accepted"]] == NUMBERS[:2]
    assert body["skipped"] == [{"to": NUMBERS[2], "reason": "opted_out"}]
    assert body["total_cost"] == sum(a["cost"] for a in body["accepted"]) > 0
    assert await ledger.balance(account) == before - body["total_cost"]

    ids = [a["message_id"] for a in body["accepted"]]
    statuses = await wait_final(ids)
    assert statuses == {i: "delivered" for i in ids}
    one = await client.get(f"/api/v1/messages/{ids[0]}", headers=headers)
    assert one.status_code == 200
    # the provider's own `sent` callback may come after our record of it: kept, not applied
    timeline = [e["status"] for e in one.json()["events"] if e.get("applied", True)]
    assert timeline == ["enqueued", "sent", "delivered"]
    outbox = {o["message_id"]: o["submissions"] for o in simulator.outbox()}
    assert outbox == {i: 1 for i in ids}
    assert await ledger.balance(account) == before - body["total_cost"]


async def test_a_provider_rejection_is_refunded(client, world, make_key, worker, simulator):
    account = world.accounts["alpha"]
    await fund(account)
    simulator.configure({"outcomes": {NUMBERS[0]: "reject_submit", NUMBERS[1]: "rejected"}})
    headers = await make_key("alpha", "Sender")
    before = await ledger.balance(account)
    r = await client.post("/api/v1/messages", json={"to": NUMBERS, "body": "Hi"}, headers=headers)
    assert r.status_code == 202, r.text
    body = r.json()
    ids = {a["to"]: a["message_id"] for a in body["accepted"]}
    statuses = await wait_final(list(ids.values()))
    assert statuses[ids[NUMBERS[0]]] == "rejected"  # refused in the submission answer
    assert statuses[ids[NUMBERS[1]]] == "rejected"  # refused later by a callback
    assert statuses[ids[NUMBERS[2]]] == "delivered"
    delivered_cost = next(a["cost"] for a in body["accepted"] if a["to"] == NUMBERS[2])
    assert await ledger.balance(account) == before - delivered_cost


async def test_idempotency_key_replays_and_refuses_a_different_body(client, world, make_key):
    account = world.accounts["alpha"]
    await fund(account)
    headers = {**(await make_key("alpha", "Sender")), "Idempotency-Key": "abc-123"}
    first = await client.post(
        "/api/v1/messages", json={"to": NUMBERS[:1], "body": "One"}, headers=headers
    )
    assert first.status_code == 202
    balance = await ledger.balance(account)
    again = await client.post(
        "/api/v1/messages", json={"to": NUMBERS[:1], "body": "One"}, headers=headers
    )
    assert again.status_code == 202
    assert again.json() == first.json()
    assert await ledger.balance(account) == balance
    assert await Message.count() == 1
    other = await client.post(
        "/api/v1/messages", json={"to": NUMBERS[:1], "body": "Two"}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert await Message.count() == 1


async def test_support_role_cannot_send_free_text(client, world, make_key):
    await fund(world.accounts["alpha"])
    headers = await make_key("alpha", "Support")
    r = await client.post(
        "/api/v1/messages", json={"to": NUMBERS[:1], "body": "Free"}, headers=headers
    )
    assert r.status_code == 403
    assert await Message.count() == 0


async def test_insufficient_credits_is_409_and_writes_nothing(client, world, make_key):
    headers = await make_key("alpha", "Sender")
    r = await client.post("/api/v1/messages", json={"to": NUMBERS, "body": "Hi"}, headers=headers)
    assert r.status_code == 409
    assert r.json()["code"] == "insufficient_credits"
    assert await Message.count() == 0


async def test_bad_input_names_the_field(client, world, make_key):
    headers = await make_key("alpha", "Sender")
    r = await client.post("/api/v1/messages", json={"to": [], "body": "Hi"}, headers=headers)
    assert r.status_code == 422 and r.json()["field"] == "to"
    r = await client.post(
        "/api/v1/messages", json={"to": NUMBERS, "body": "Hi", "channel": "fax"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["field"] == "channel"
    r = await client.post(
        "/api/v1/messages",
        json={"to": NUMBERS, "body": "Hi", "sender": "WayTooLongSender"},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["field"] == "sender"


async def test_list_is_newest_first_paginated_and_scoped(client, world, make_key):
    account = world.accounts["alpha"]
    await fund(account)
    headers = await make_key("alpha", "Sender")
    r = await client.post("/api/v1/messages", json={"to": NUMBERS, "body": "Hi"}, headers=headers)
    batch_id = r.json()["batch_id"]
    page = await client.get(f"/api/v1/messages?batch_id={batch_id}&limit=2", headers=headers)
    assert page.status_code == 200
    items = page.json()
    assert [m["to"] for m in items] == [NUMBERS[2], NUMBERS[1]]
    nxt = page.headers["x-next-before-id"]
    rest = await client.get(
        f"/api/v1/messages?batch_id={batch_id}&before_id={nxt}", headers=headers
    )
    assert [m["to"] for m in rest.json()] == [NUMBERS[0]]
    enq = await client.get("/api/v1/messages?status=enqueued", headers=headers)
    assert len(enq.json()) == 3
    beta = await make_key("beta", "Owner")
    hidden = await client.get(f"/api/v1/messages/{items[0]['id']}", headers=beta)
    assert hidden.status_code == 404
    assert (await client.get("/api/v1/messages", headers=beta)).json() == []


async def test_inbound_stop_through_the_hook_opts_the_phone_out(client, world, make_key):
    account = world.accounts["alpha"]
    await fund(account)
    # The account sends from a number it holds (sending accepts no other sender).
    await numbers.add_number(
        actor=SYSTEM, owner_account_id=account, number="+61480000000", kind="long_code"
    )
    headers = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/messages",
        json={"to": NUMBERS[:1], "body": "Hi", "sender": "+61480000000"},
        headers=headers,
    )
    assert r.status_code == 202
    hook = {"id": "in-1", "from": NUMBERS[0], "to": "+61480000000", "body": " stop! "}
    denied = await client.post(
        "/hooks/simulator/inbound", json=hook, headers={"X-Simulator-Secret": "wrong"}
    )
    assert denied.status_code == 403
    ok = await client.post(
        "/hooks/simulator/inbound", json=hook, headers={"X-Simulator-Secret": "simulator-secret"}
    )
    assert ok.status_code == 202, ok.text
    assert ok.json()["routed"] is True and ok.json()["keyword"] == "opt_out"
    again = await client.post(
        "/hooks/simulator/inbound", json=hook, headers={"X-Simulator-Secret": "simulator-secret"}
    )
    assert again.json()["duplicate"] is True
    state = await client.get("/api/v1/messages?status=incoming_message", headers=headers)
    assert [m["body"] for m in state.json()] == [" stop! "]
    resend = await client.post(
        "/api/v1/messages", json={"to": NUMBERS[:1], "body": "Hi"}, headers=headers
    )
    assert resend.json()["skipped"] == [{"to": NUMBERS[0], "reason": "opted_out"}]


async def test_status_hook_refuses_a_bad_secret(client, world):
    r = await client.post(
        "/hooks/simulator/status",
        json=[{"message_id": 1, "status": "delivered"}],
        headers={"X-Simulator-Secret": "nope"},
    )
    assert r.status_code == 403


async def test_a_sender_with_a_space_is_refused_naming_the_field(client, world, make_key):
    await fund(world.accounts["alpha"])
    headers = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/messages",
        json={"to": NUMBERS[:1], "body": "Hi", "sender": "NW Sydney"},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["field"] == "sender"
    assert "no spaces" in r.text
    assert await Message.count() == 0


async def test_a_send_at_in_the_past_is_refused_naming_it_and_sends_nothing(
    client, world, make_key
):
    await fund(world.accounts["alpha"])
    headers = await make_key("alpha", "Sender")
    before = await ledger.balance(world.accounts["alpha"])
    for past in ("2020-01-01T09:00:00+00:00", "2020-01-01T09:00"):  # with and without offset
        r = await client.post(
            "/api/v1/messages",
            json={"to": NUMBERS[:1], "body": "Too late", "send_at": past},
            headers=headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "send_at"
        assert "passed" in r.text
    assert await Message.count() == 0
    assert await ledger.balance(world.accounts["alpha"]) == before
