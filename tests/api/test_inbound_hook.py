"""Inbound through the simulator's callback, end to end with a worker: routing, the STOP
confirmation reaching the provider despite the opt-out, idempotency by inbound id, and
signed webhook forwarding."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import respx

from tasks.webhook_poster import WEBHOOK_POSTER
from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.consent import keywords as consent_keywords
from tenants.consent.tables import ConsentEvent
from tenants.credits import ledger
from tenants.messaging.messages import FINAL_STATUSES
from tenants.messaging.tables import Message
from tenants.numbers import keywords, numbers
from tenants.webhooks import deliveries as customer_webhooks
from tests.factories import wait_until

PHONE = "+61412345678"
SECRET = {"X-Simulator-Secret": "simulator-secret"}


async def wait_final(seconds: float = 20.0) -> list[dict]:
    """Poll until every outbound message has a final status (worker and callbacks run apart)."""

    async def final() -> list[dict] | None:
        rows = await Message.select(Message.id, Message.status, Message.body).where(
            Message.direction == "out"
        )
        return rows if rows and all(r["status"] in FINAL_STATUSES for r in rows) else None

    return await wait_until(final, seconds, what="a final status for every outbound message")


async def test_stop_twice_is_one_opt_out_and_one_delivered_confirmation(
    client, demo, worker, simulator
):
    await ledger.adjust(demo["melbourne"], 100, reason="test credits", actor=SYSTEM)
    message = {"id": "in-42", "from": PHONE, "to": "+61480000001", "body": "Stop "}
    first = await client.post("/hooks/simulator/inbound", json=message, headers=SECRET)
    assert first.status_code == 202, first.text
    assert first.json()["route"] == "opt_out" and first.json()["duplicate"] is False
    again = await client.post("/hooks/simulator/inbound", json=message, headers=SECRET)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert again.json()["message_id"] == first.json()["message_id"]

    assert await Message.count().where(Message.direction == "in") == 1
    assert await ConsentEvent.count() == 1
    assert (await consent_events.explain(demo["melbourne"], PHONE, "sms")).status == "opted_out"
    rows = await wait_final()
    confirmation = await consent_keywords.confirmation_reply(demo["melbourne"], "opt_out")
    # Submitted although the phone opted out: the consent re-check exempts confirmations.
    assert [(r["body"], r["status"]) for r in rows] == [(confirmation, "delivered")]
    sent = [o for o in simulator.outbox() if o["to"] == PHONE]
    assert [(o["from"], o["body"], o["submissions"]) for o in sent] == [
        ("+61480000001", confirmation, 1)
    ]


async def test_inbound_without_the_secret_is_refused(client, demo):
    message = {"id": "in-1", "from": PHONE, "to": "+61480000001", "body": "STOP"}
    r = await client.post("/hooks/simulator/inbound", json=message)
    assert r.status_code == 403
    assert await ConsentEvent.count() == 0 and await Message.count() == 0


async def test_join_through_the_hook_answers_from_the_shared_number(
    client, demo, worker, simulator
):
    await ledger.adjust(demo["sydney"], 100, reason="test credits", actor=SYSTEM)
    message = {"id": "in-7", "from": PHONE, "to": "+61480000000", "body": "join"}
    r = await client.post("/hooks/simulator/inbound", json=message, headers=SECRET)
    assert r.status_code == 202 and r.json()["route"] == "keyword"
    rows = await wait_final()
    assert [r["status"] for r in rows] == ["delivered"]
    assert rows[0]["body"].startswith("Thanks there, you are on the Sydney Branch list")


@respx.mock
async def test_forwarded_keyword_is_posted_signed_and_retried(demo, settings_env):
    # The receiver is mocked, so its made-up host needs no public address.
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1")
    shared = await numbers.find_number("+61480000000")
    assert shared is not None
    kw = await keywords.claim_keyword(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        number_id=shared.id,
        word="CALLME",
        account_id=demo["sydney"],
    )
    await keywords.add_action(
        actor=SYSTEM, within_account_id=demo["sydney"], keyword_id=kw.id, kind="forward_webhook"
    )
    _, secret = await customer_webhooks.add_subscription(
        SYSTEM,
        account_id=demo["sydney"],
        url="https://rx.example.test/inbound",
        events=("inbound",),
    )
    from tenants.messaging import inbound

    await inbound.route_inbound("fw-1", PHONE, "+61480000000", "callme tomorrow")
    (delivery_id,) = await customer_webhooks.take_due()
    route = respx.post("https://rx.example.test/inbound").mock(
        side_effect=[httpx.Response(503), httpx.Response(204)]
    )
    first = await customer_webhooks.attempt_delivery(delivery_id, WEBHOOK_POSTER)
    assert first.retry and not first.delivered  # the worker raises and Dramatiq backs off
    assert (await customer_webhooks.attempt_delivery(delivery_id, WEBHOOK_POSTER)).delivered
    again = await customer_webhooks.attempt_delivery(delivery_id, WEBHOOK_POSTER)
    assert not again.delivered and not again.retry  # delivered: not posted again
    assert route.call_count == 2
    request = route.calls.last.request
    timestamp = request.headers["X-Portal-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.content, hashlib.sha256
    ).hexdigest()
    assert request.headers["X-Portal-Signature"] == f"sha256={expected}"
    payload = json.loads(request.content)
    assert payload["keyword"] == "CALLME" and payload["sender"] == PHONE
    assert payload["body"] == "callme tomorrow" and payload["recipient"] == "+61480000000"
    (log,) = await customer_webhooks.list_deliveries(demo["sydney"])
    assert (log.status, log.attempts, log.last_status_code) == ("delivered", 2, 204)
