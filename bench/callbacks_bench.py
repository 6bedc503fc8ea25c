"""Delivery reports and inbound messages one per request, as real providers post them,
each figure printed beside baselines served by the same process in the same run.

Starts one `portal serve` (bench/report_server.py: the portal plus a bare route) and drives
it from this process with CONCURRENCY requests in flight (aiohttp, keep-alive):
  - a static file (/static/portal.css) and a bare Litestar route (/bench/bare): baselines,
  - one status report per request on the simulator hook (/hooks/simulator/status),
  - one Twilio status callback per request, signed as Twilio signs, on the integration hook
    (/hooks/providers/<id>/<token>/status),
  - one inbound message per request on the simulator hook (keyword JOIN, STOP with its
    confirmation, plain replies to the last sender, on the demo tree).
Each figure carries its ratio to the static-file rate and the 1-minute load average at the
time. Prints the figures and merges them into bench/results/callbacks.json under the database.

    PYTHONPATH=. .venv/bin/python bench/callbacks_bench.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/wt_perf \
    BROKER_URL=redis://127.0.0.1:6379/13 PYTHONPATH=. .venv/bin/python bench/callbacks_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = int(os.environ.get("BENCH_REQUESTS") or 3_000)
INBOUND = int(os.environ.get("BENCH_INBOUND") or 1_000)
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY") or 16)
TMP = Path("/tmp/portal-bench")
TMP.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP}/reports-{uuid.uuid4().hex[:6]}.db")
os.environ.setdefault("BROKER_URL", "memory://")
os.environ.setdefault("BROKER_NAMESPACE", f"portal-bench-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DATA_DIR", str(TMP / "data"))
os.environ.setdefault("SECRET_KEY", "bench-secret")
STACK_ENV = {
    name: os.environ[name]
    for name in ("DATABASE_URL", "BROKER_URL", "BROKER_NAMESPACE", "DATA_DIR", "SECRET_KEY")
}
STACK_ENV["SIMULATOR_LATENCY_MS"] = "0"

import aiohttp
from twilio.request_validator import RequestValidator

from bench.stack import Stack
from tasks.broker import broker, is_in_process
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import is_sqlite, pool
from tenants.demo import seed_demo
from tenants.messaging.tables import Batch, Message
from tenants.providers import integrations as providers
from tenants.schema import migrate, wipe_all_data
from tenants.settings import export_env

TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "c" * 32
SIM_HEADERS = {"X-Simulator-Secret": os.environ.get("SIMULATOR_SECRET") or "simulator-secret"}


def say(text: str) -> None:
    print(text, flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


async def _messages(account_id: int, provider: str, count: int, ref_prefix: str) -> list[int]:
    batch = await Batch.insert(Batch(account_id=account_id)).returning(Batch.id)
    ids: list[int] = []
    for start in range(0, count, 500):
        rows = await Message.insert(
            *[
                Message(
                    account_id=account_id,
                    batch_id=batch[0]["id"],
                    to_number=f"+614{i:08d}",
                    from_number="Bench",
                    status="sent",
                    provider=provider,
                    provider_ref=f"{ref_prefix}{i:030d}",
                )
                for i in range(start, min(start + 500, count))
            ]
        ).returning(Message.id)
        ids.extend(int(r["id"]) for r in rows)
    return ids


async def seed(base_url: str) -> dict[str, Any]:
    export_env("PORTAL_BASE_URL", base_url)
    async with pool():
        await migrate()
        await wipe_all_data()
        ids = await seed_demo()
        for slug in ("northwind", "sydney", "melbourne", "melbourne-events"):
            await ledger.adjust(ids[slug], 10 * REQUESTS, reason="bench credits", actor=SYSTEM)
        created = await providers.create_integration(
            SYSTEM,
            account_id=ids["platform"],
            kind="twilio",
            name="Bench Twilio",
            values={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
        )
        config = await providers.load_config(created.integration.id)
        simulated = await _messages(ids["northwind"], providers.BUILTIN, REQUESTS, "sim")
        twilio = await _messages(ids["northwind"], config.key, REQUESTS, "SM")
    return {"simulated": simulated, "twilio": twilio, "status_url": config.status_url()}


Request = Callable[[aiohttp.ClientSession, int], Any]


async def drive(base_url: str, request: Request, count: int) -> dict[str, float]:
    """`count` requests, CONCURRENCY in flight: rate, latency p50/p95 and load average."""
    latencies: list[float] = []
    queue = iter(range(count))
    failures = 0

    async def run(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for i in queue:
            started = time.perf_counter()
            async with request(session, i) as answer:
                await answer.read()
                failures += answer.status >= 300
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(run(session) for _ in range(CONCURRENCY)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "per_second": round(count / seconds),
        "failed": failures,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "load_average_1m": load(),
    }


def static(session: aiohttp.ClientSession, i: int) -> Any:
    return session.get("/static/portal.css")


def bare(session: aiohttp.ClientSession, i: int) -> Any:
    return session.get("/bench/bare")


def simulator_report(ids: list[int]) -> Request:
    def post(session: aiohttp.ClientSession, i: int) -> Any:
        report = {"message_id": ids[i], "status": "delivered", "event_id": f"bench-sim-{i}"}
        return session.post("/hooks/simulator/status", json=report, headers=SIM_HEADERS)

    return post


def twilio_report(status_url: str, ids: list[int]) -> Request:
    validator = RequestValidator(TWILIO_TOKEN)
    path = "/" + status_url.split("/", 3)[3]
    signed = []
    for i, message_id in enumerate(ids):
        url = f"{status_url}?ref={message_id}"
        params = {"MessageSid": f"SM{i:030d}", "MessageStatus": "delivered"}
        signed.append(
            (f"{path}?ref={message_id}", params, validator.compute_signature(url, params))
        )

    def post(session: aiohttp.ClientSession, i: int) -> Any:
        url, params, signature = signed[i]
        return session.post(url, data=params, headers={"X-Twilio-Signature": signature})

    return post


def inbound(run_id: str) -> Request:
    def post(session: aiohttp.ClientSession, i: int) -> Any:
        phone = f"+614{22000000 + i:08d}"
        to, body = (
            ("+61480000000", "join")
            if i % 4 == 0
            else ("+61480000001", "Stop ")
            if i % 4 == 1
            else ("+61480000001", "see you at 5")
        )
        message = {"id": f"bench-{run_id}-{i}", "from": phone, "to": to, "body": body}
        return session.post("/hooks/simulator/inbound", json=message, headers=SIM_HEADERS)

    return post


def write_results(name: str, results: dict[str, object]) -> None:
    out = ROOT / "bench" / "results" / "callbacks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[name] = results
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    say(f"  written to {out.relative_to(ROOT)}")


async def main() -> int:
    name = (
        ("sqlite" if is_sqlite() else "postgresql")
        + "+"
        + ("memory" if is_in_process(broker) else os.environ["BROKER_URL"].split(":", 1)[0])
    )
    stack = Stack(STACK_ENV, TMP / "logs")
    seeded = await seed(stack.base_url)
    results: dict[str, Any] = {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    try:
        stack.start_serve(bench_routes=True)
        if not is_in_process(broker):
            stack.start_worker(processes=1, threads=4)
        base = stack.base_url
        # Warm-up: imports, pools, templates.
        await drive(base, static, 200)
        await drive(base, bare, 200)
        runs = {
            "static_file": static,
            "bare_route": bare,
            "report_simulator_hook": simulator_report(seeded["simulated"]),
            "report_twilio_hook": twilio_report(seeded["status_url"], seeded["twilio"]),
            "inbound_simulator_hook": inbound(uuid.uuid4().hex[:6]),
        }
        for label, request in runs.items():
            count = INBOUND if label.startswith("inbound") else REQUESTS
            figures = await drive(base, request, count)
            results[label] = figures
        static_rate = results["static_file"]["per_second"]
        bare_rate = results["bare_route"]["per_second"]
        for label in runs:
            figures = results[label]
            figures["of_static_file"] = round(figures["per_second"] / static_rate, 3)
            figures["of_bare_route"] = round(figures["per_second"] / bare_rate, 3)
            say(
                f"  {label:24s} {figures['per_second']:6d}/s  p50 {figures['p50_ms']:6.1f} ms  "
                f"p95 {figures['p95_ms']:6.1f} ms  {figures['of_static_file']:6.1%} of static  "
                f"{figures['of_bare_route']:6.1%} of bare  load {figures['load_average_1m']}"
                + (f"  FAILED {figures['failed']}" if figures["failed"] else "")
            )
    finally:
        stack.stop()
    say(f"stack {name}, {CONCURRENCY} in flight, {REQUESTS} requests each")
    write_results(name, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
