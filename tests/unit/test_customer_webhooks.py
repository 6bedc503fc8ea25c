"""Customer webhooks against a real receiver on a loopback port: every delivery is signed,
each event is seen once after retries, and a receiver that is down for a while gets every
event when it comes back (Dramatiq's backoff; stub broker or Redis)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn

from tasks.customer_webhooks import deliver_webhook_event, dispatch_pending
from tasks.webhook_poster import WEBHOOK_POSTER
from tenants.audit.record import SYSTEM
from tenants.messaging import messages
from tenants.messaging.messages import StatusReport
from tenants.messaging.tables import Batch, Campaign, Message
from tenants.webhooks import deliveries as customer_webhooks
from tenants.webhooks.tables import WebhookDelivery
from tests.factories import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A customer's endpoint: checks the signature, answers 500 while told to fail."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.secret = ""
        self.fail_next = 0
        self.accepted: Counter[str] = Counter()
        self.payloads: dict[str, dict] = {}
        self.bad_signatures = 0
        self.requests = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests += 1
        stamp = headers.get("x-portal-timestamp", "")
        expected = (
            "sha256="
            + hmac.new(
                self.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
        )
        status = 200
        if not hmac.compare_digest(expected, headers.get("x-portal-signature", "")):
            self.bad_signatures += 1
            status = 401
        elif self.fail_next > 0:
            self.fail_next -= 1
            status = 500
        else:
            event_id = headers["x-portal-delivery"]
            self.accepted[event_id] += 1
            self.payloads[event_id] = json.loads(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="error", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None


@pytest.fixture
def receiver(monkeypatch, settings_env):
    # Short backoff so the retries of a test take milliseconds, not minutes.
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1", WEBHOOK_MIN_BACKOFF_MS="20")
    monkeypatch.setitem(deliver_webhook_event.options, "max_backoff", 150)
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


async def subscribe(account_id: int, url: str, events=("status", "inbound")) -> str:
    _, secret = await customer_webhooks.add_subscription(
        SYSTEM, account_id=account_id, url=url, events=events
    )
    return secret


async def outbox(account_id: int, numbers: list[str]) -> list[int]:
    campaign = await Campaign.insert(Campaign(account_id=account_id, name="Spring")).returning(
        Campaign.id
    )
    batch = await Batch.insert(
        Batch(account_id=account_id, campaign_id=campaign[0]["id"])
    ).returning(Batch.id)
    ids = []
    for number in numbers:
        rows = await Message.insert(
            Message(
                account_id=account_id,
                batch_id=batch[0]["id"],
                campaign_id=campaign[0]["id"],
                to_number=number,
                from_number="Alpha",
                body="Hello",
                channel="rcs",
            )
        ).returning(Message.id)
        ids.append(rows[0]["id"])
    return ids


async def report(ids: list[int], status: str, code: str | None = None) -> None:
    at = datetime.now(UTC)
    await messages.ingest_status_reports(
        [StatusReport(i, status, at, code, f"ref-{i}", f"evt-{i}-{status}") for i in ids]
    )


async def settle(expected: int, seconds: float = 30.0) -> list[dict]:
    """Wait until `expected` deliveries are no longer pending (stub or Redis worker)."""

    async def settled() -> list[dict] | None:
        rows = await WebhookDelivery.select().order_by(WebhookDelivery.id)
        return (
            rows if len(rows) >= expected and all(r["status"] != "pending" for r in rows) else None
        )

    return await wait_until(settled, seconds, what=f"{expected} deliveries no longer pending")


async def test_signed_events_are_seen_once_after_the_receiver_failed_twice(world, worker, receiver):
    alpha = world.accounts["alpha"]
    receiver.secret = await subscribe(alpha, receiver.url)
    ids = await outbox(alpha, ["+61400000001", "+61400000002"])
    await report(ids, "sent")
    await report([ids[0]], "delivered")
    await report([ids[1]], "failed", "RECIPIENT_NOT_REACHABLE")
    await report([ids[1]], "failed", "RECIPIENT_NOT_REACHABLE")  # a duplicate callback
    receiver.fail_next = 2
    assert await dispatch_pending() == 4
    rows = await settle(4)
    assert [r["status"] for r in rows] == ["delivered"] * 4
    assert receiver.bad_signatures == 0
    assert sorted(receiver.accepted.values()) == [1, 1, 1, 1]  # each event once
    assert receiver.requests == 6  # the two failures were retried
    assert sum(r["attempts"] for r in rows) == 6
    failed = next(p for p in receiver.payloads.values() if p["status"] == "failed")
    assert failed["message_type"] == "outbound" and failed["action_type"] == "rcs"
    assert failed["recipient"] == "+61400000002" and failed["sender"] == "Alpha"
    assert failed["campaign_id"] is not None and failed["sent_timestamp"]
    assert failed["error"]["code"] == "RECIPIENT_NOT_REACHABLE"
    assert "coverage" in failed["error"]["description"]
    log = await customer_webhooks.list_deliveries(alpha)
    assert all(d.last_status_code == 200 and d.last_latency_ms is not None for d in log)
    # nothing is posted again for delivered events
    assert await dispatch_pending() == 0


async def test_a_receiver_that_is_down_gets_every_event_when_it_comes_back(world, worker, receiver):
    alpha = world.accounts["alpha"]
    receiver.secret = await subscribe(alpha, receiver.url)
    receiver.stop()
    ids = await outbox(alpha, [f"+6140000001{i}" for i in range(5)])
    await report(ids, "sent")
    assert await dispatch_pending() == 5
    # wait until every delivery has failed at least twice against the closed port

    async def failed_twice() -> list[dict] | None:
        rows = await WebhookDelivery.select(WebhookDelivery.attempts, WebhookDelivery.status)
        return rows if rows and all(r["attempts"] >= 2 for r in rows) else None

    rows = await wait_until(failed_twice, 8, what="every delivery to fail twice", interval=0.02)
    assert all(r["status"] == "pending" and r["attempts"] >= 2 for r in rows)
    errors = {d.last_error.split(":")[0] for d in await customer_webhooks.list_deliveries(alpha)}
    assert errors == {"ConnectError"}
    receiver.start()
    rows = await settle(5)
    assert [r["status"] for r in rows] == ["delivered"] * 5
    assert sorted(receiver.accepted.values()) == [1] * 5
    assert {p["message_id"] for p in receiver.payloads.values()} == set(ids)


async def test_lost_work_is_handed_over_again_and_inbound_events_go_to_inbound_webhooks(world):
    alpha = world.accounts["alpha"]
    await subscribe(alpha, "https://hooks.example.com/status", events=("status",))
    await subscribe(alpha, "https://hooks.example.com/inbound", events=("inbound",))
    await outbox(alpha, ["+61400000001"])
    await messages.ingest_status_reports(
        [
            StatusReport(
                (await Message.select(Message.id).first())["id"],
                "sent",
                datetime.now(UTC),
                None,
                "r",
                "e1",
            )
        ]
    )
    (delivery,) = await WebhookDelivery.select()
    taken = await customer_webhooks.take_due()
    assert taken == [delivery["id"]] and await customer_webhooks.take_due() == []
    # its queued work vanished (a broker restart): after the stale period it is taken again
    await WebhookDelivery.update(
        {WebhookDelivery.touched_at: datetime.now(UTC) - timedelta(hours=1)}
    ).where(WebhookDelivery.id == delivery["id"])
    assert await customer_webhooks.take_due() == [delivery["id"]]
    count = await customer_webhooks.queue_inbound_event(
        account_id=alpha,
        message_id=99,
        sender="+61400000001",
        to="+61480000000",
        body="STOP",
        channel="sms",
        received_at=datetime.now(UTC),
    )
    assert count == 1
    inbound = (
        await WebhookDelivery.select().where(WebhookDelivery.event == "message.inbound").first()
    )
    payload = json.loads(inbound["payload"])
    assert payload["message_type"] == "inbound" and payload["body"] == "STOP"
    assert payload["status"] == "incoming_message"


async def test_private_receivers_are_refused_unless_allowed(world, settings_env):
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS=None)
    alpha = world.accounts["alpha"]
    await subscribe(alpha, "http://127.0.0.1:9/events", events=("status",))
    ids = await outbox(alpha, ["+61400000001"])
    await report(ids, "sent")
    (delivery,) = await WebhookDelivery.select()
    outcome = await customer_webhooks.attempt_delivery(delivery["id"], WEBHOOK_POSTER)
    assert not outcome.delivered and "private address" in outcome.error
