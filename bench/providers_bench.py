"""Provider gateways and customer webhooks: how fast the platform's side goes.

1. Sinch SMS gateway: 10,000 messages (chunks of 100, same text) against an in-process
   transport answering like Sinch: requests made and messages per second.
2. Twilio gateway: 2,000 messages (one request each, 8 at a time), same transport kind.
3. Customer webhooks: 2,000 status events queued in the outbox, then posted one by one to a
   receiver on a loopback port that checks each signature: deliveries per second and the
   latency of each post (p50 / p95).

Prints the figures and writes bench/results/providers.json. Uses DATABASE_URL (a temporary
SQLite file by default)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='providers-bench-')}/bench.db"
os.environ.setdefault("SECRET_KEY", "bench-secret-key")
os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"

import httpx
import uvicorn

from tasks.gateways.sinch import SinchSmsGateway
from tasks.gateways.twilio import TwilioGateway
from tasks.webhook_poster import WEBHOOK_POSTER
from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM
from tenants.db import pool, transaction
from tenants.messaging.outbox import OutboundMessage
from tenants.messaging.tables import Batch, Message
from tenants.providers.integrations import IntegrationConfig
from tenants.schema import migrate, wipe_all_data
from tenants.webhooks import deliveries as customer_webhooks
from tenants.webhooks.tables import WebhookDelivery

SINCH_MESSAGES = 10_000
TWILIO_MESSAGES = 2_000
WEBHOOK_EVENTS = int(os.environ.get("PROVIDERS_BENCH_EVENTS") or 2_000)


def _config(kind: str, settings: dict[str, str], secrets: dict[str, str]) -> IntegrationConfig:
    return IntegrationConfig(
        1, kind, kind, "active", settings, secrets, "tok", 0, datetime.now(UTC)
    )


def _sinch_answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(201, json={"id": "01BENCH", "to": body["to"], "type": "mt_text"})


async def bench_sinch() -> dict[str, float]:
    requests = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return _sinch_answer(request)

    gateway = SinchSmsGateway(
        _config(
            "sinch_sms", {"service_plan_id": "benchplan01", "region": "eu"}, {"api_token": "t" * 32}
        ),
        transport=httpx.MockTransport(handler),
    )
    batch = [
        OutboundMessage(i, f"+614{i:08d}", "Bench", "Sale today", "sms", 1)
        for i in range(SINCH_MESSAGES)
    ]
    started = time.perf_counter()
    accepted = 0
    for start in range(0, len(batch), 100):
        accepted += sum(r.accepted for r in await gateway.submit(batch[start : start + 100]))
    seconds = time.perf_counter() - started
    return {
        "messages": accepted,
        "requests": requests,
        "messages_per_second": round(accepted / seconds),
    }


async def bench_twilio() -> dict[str, float]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"sid": "SM" + "0" * 32, "status": "queued"})

    gateway = TwilioGateway(
        _config(
            "twilio",
            {"account_sid": "AC" + "a" * 32, "default_sender": "Bench"},
            {"auth_token": "f" * 32},
        ),
        transport=httpx.MockTransport(handler),
    )
    batch = [
        OutboundMessage(i, f"+614{i:08d}", "Bench", "Sale today", "sms", 1)
        for i in range(TWILIO_MESSAGES)
    ]
    started = time.perf_counter()
    accepted = 0
    for start in range(0, len(batch), 100):
        accepted += sum(r.accepted for r in await gateway.submit(batch[start : start + 100]))
    seconds = time.perf_counter() - started
    return {
        "messages": accepted,
        "requests": accepted,
        "messages_per_second": round(accepted / seconds),
    }


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.good = 0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        stamp = headers.get(b"x-portal-timestamp", b"")
        expected = (
            b"sha256="
            + hmac.new(self.secret, stamp + b"." + body, hashlib.sha256).hexdigest().encode()
        )
        ok = hmac.compare_digest(expected, headers.get(b"x-portal-signature", b""))
        self.good += ok
        await send({"type": "http.response.start", "status": 200 if ok else 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _wait_started(server: uvicorn.Server) -> None:
    while not server.started:
        time.sleep(0.01)


async def bench_webhooks() -> dict[str, float]:
    await wipe_all_data()
    account = await accounts.create_root_account(name="Bench", slug="bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, secret = await customer_webhooks.add_subscription(
        SYSTEM, account_id=account.id, url=f"http://127.0.0.1:{port}/hook", events=["status"]
    )
    receiver = Receiver(secret)
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    await asyncio.to_thread(_wait_started, server)
    batch = await Batch.insert(Batch(account_id=account.id)).returning(Batch.id)
    rows = await Message.insert(
        *[
            Message(
                account_id=account.id,
                batch_id=batch[0]["id"],
                to_number=f"+614{i:08d}",
                from_number="Bench",
            )
            for i in range(WEBHOOK_EVENTS)
        ]
    ).returning(Message.id)
    queued_started = time.perf_counter()
    async with transaction():
        await customer_webhooks.queue_status_events([(r["id"], "sent", None) for r in rows])
    queue_seconds = time.perf_counter() - queued_started
    ids = await customer_webhooks.take_due(limit=WEBHOOK_EVENTS)
    started = time.perf_counter()
    for delivery_id in ids:
        await customer_webhooks.attempt_delivery(delivery_id, WEBHOOK_POSTER)
    seconds = time.perf_counter() - started
    latencies = [
        r["last_latency_ms"] for r in await WebhookDelivery.select(WebhookDelivery.last_latency_ms)
    ]
    server.should_exit = True
    thread.join(timeout=10)
    return {
        "events": len(ids),
        "queued_per_second": round(len(rows) / queue_seconds),
        "delivered_per_second_one_worker": round(len(ids) / seconds),
        "signatures_verified": receiver.good,
        "post_latency_ms_p50": statistics.median(latencies),
        "post_latency_ms_p95": sorted(latencies)[int(len(latencies) * 0.95) - 1],
    }


async def main() -> dict[str, object]:
    async with pool():
        await migrate()
        results: dict[str, object] = {
            "sinch_sms_gateway": await bench_sinch(),
            "twilio_gateway": await bench_twilio(),
            "customer_webhooks": await bench_webhooks(),
        }
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "database": os.environ["DATABASE_URL"].split(":")[0],
    }
    return results


if __name__ == "__main__":
    figures = asyncio.run(main())
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / "providers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
