"""Signed-in pages under load: dashboard, messages log, message page and a campaign's
progress fragment, each at CONNECTIONS back-to-back connections against `--workers 2` web
processes (bench/report_server.py, the portal plus a bare route), beside the bare route and
a static file served by the same processes in the same run, with p95 and the load average.

Northwind holds MESSAGES messages (1M by default, the issue's scale): a campaign of
CAMPAIGN recipients through the accept path, the rest written in bulk (COPY on PostgreSQL,
executemany on SQLite: `copy_rows`) over the last 90 days, older than the campaign, with
their roll-up recorded through `rollups.record` as one move per hour and status.

    PYTHONPATH=. .venv/bin/python bench/pages_bench.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/wt_perf \\
    BROKER_URL=redis://127.0.0.1:6379/13 PYTHONPATH=. .venv/bin/python bench/pages_bench.py

Prints the figures and merges them into bench/results/pages.json under the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = int(os.environ.get("BENCH_REQUESTS") or 1_000)
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS") or 50)
WORKERS = int(os.environ.get("BENCH_WORKERS") or 2)
MESSAGES = int(os.environ.get("BENCH_MESSAGES") or 1_000_000)
CAMPAIGN = min(MESSAGES, int(os.environ.get("BENCH_CAMPAIGN") or 5_000))
BULK_CHUNK = 50_000
DAYS = 90
# Final statuses of the bulk messages, per 100 (a month of traffic, mostly delivered).
SPREAD = ["delivered"] * 84 + ["read"] * 4 + ["failed"] * 7 + ["rejected"] * 2 + ["sent"] * 3
INBOUND_EVERY = 20  # one message in 20 is a reply
TMP = Path("/tmp/portal-bench")
TMP.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP}/pages-{uuid.uuid4().hex[:6]}.db")
os.environ.setdefault("BROKER_URL", "memory://")
os.environ.setdefault("BROKER_NAMESPACE", f"portal-bench-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DATA_DIR", str(TMP / "data"))
os.environ.setdefault("SECRET_KEY", "bench-secret")
STACK_ENV = {
    name: os.environ[name]
    for name in ("DATABASE_URL", "BROKER_URL", "BROKER_NAMESPACE", "DATA_DIR", "SECRET_KEY")
}

import aiohttp

from bench.stack import Stack
from tasks.broker import broker, is_in_process
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import DB, copy_rows, is_sqlite, pool, transaction
from tenants.demo import DEMO_PASSWORD, seed_demo
from tenants.messaging import accept as sending
from tenants.messaging.tables import Campaign, Message
from tenants.reports import rollups
from tenants.schema import migrate, wipe_all_data

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def say(text: str) -> None:
    print(text, flush=True)


BULK_COLUMNS = (
    "account_id", "direction", "to_number", "from_number", "body", "channel", "status",
    "segments", "cost", "created_at", "updated_at",
)  # fmt: skip


def _bulk_row(account_id: int, i: int, at: datetime) -> tuple[Any, ...]:
    number = f"+6141{i % 10_000_000:07d}"
    if i % INBOUND_EVERY == 0:
        return (account_id, "in", "+61400000000", number, f"Reply {i}", "sms",
                "incoming_message", 1, 0, at, at)  # fmt: skip
    status = SPREAD[i % len(SPREAD)]
    return (account_id, "out", number, "Northwind", f"Order {i} is on its way", "sms",
            status, 1, 1, at, at)  # fmt: skip


async def seed_bulk(account_id: int, count: int) -> None:
    """`count` messages of the account over the last DAYS days, oldest first, written a
    chunk at a time, with their roll-up (one move per hour and status)."""
    end = datetime.now(UTC) - timedelta(hours=1)
    step = DAYS * 86400 / max(count, 1)
    start = end - timedelta(seconds=step * count)
    for first in range(0, count, BULK_CHUNK):
        rows = []
        moves: dict[tuple[datetime, str], int] = {}
        for i in range(first, min(first + BULK_CHUNK, count)):
            at = start + timedelta(seconds=i * step)
            row = _bulk_row(account_id, i, at)
            rows.append(row)
            if row[1] == "out":
                hour = at.replace(minute=0, second=0, microsecond=0)
                moves[(hour, row[6])] = moves.get((hour, row[6]), 0) + 1
        async with transaction():
            await copy_rows("message", BULK_COLUMNS, rows)
            await rollups.record(
                [
                    rollups.StatusMove(account_id, hour, "sms", n, n, None, status, messages=n)
                    for (hour, status), n in moves.items()
                ]
            )
        say(f"  seeded {first + len(rows):,} of {count:,} messages")


async def seed() -> dict[str, str]:
    """The demo tree, MESSAGES messages for Northwind (the newest CAMPAIGN of them one
    campaign sent through the accept path); the paths."""
    async with pool():
        await migrate()
        await wipe_all_data()
        ids = await seed_demo()
        started = time.perf_counter()
        await seed_bulk(ids["northwind"], MESSAGES - CAMPAIGN)
        await ledger.adjust(ids["northwind"], 10 * CAMPAIGN, reason="bench", actor=SYSTEM)
        await sending.accept_send(
            sending.SendRequest(
                account_id=ids["northwind"],
                numbers=[f"+614{i:08d}" for i in range(CAMPAIGN)],
                body="Spring sale",
                campaign_name="Spring sale",
                permissions=sending.PLATFORM_SEND,
            ),
            actor=SYSTEM,
        )
        if not is_sqlite():
            # What autovacuum does soon after a bulk load on a live server: without the
            # statistics and visibility map the planner reads all 1M index entries.
            await DB.run_ddl("VACUUM ANALYZE message")
        say(f"  seeded in {time.perf_counter() - started:.0f} s")
        message = (
            await Message.select(Message.id)
            .where(Message.account_id == ids["northwind"])
            .order_by(Message.id, ascending=False)
            .first()
        )
        campaign = (
            await Campaign.select(Campaign.id)
            .where(Campaign.account_id == ids["northwind"])
            .first()
        )
    assert message and campaign
    return {
        "dashboard": "/",
        "messages_log": "/messages",
        "message_page": f"/messages/{message['id']}",
        "progress_fragment": f"/campaigns/{campaign['id']}",
    }


async def drive(
    session: aiohttp.ClientSession, path: str, headers: dict[str, str], count: int
) -> dict[str, Any]:
    latencies: list[float] = []
    queue = iter(range(count))
    failures = 0

    async def run() -> None:
        nonlocal failures
        for _ in queue:
            started = time.perf_counter()
            async with session.get(path, headers=headers, allow_redirects=False) as answer:
                await answer.read()
                failures += answer.status != 200
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(CONNECTIONS)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "per_second": round(count / seconds),
        "failed": failures,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def signed_in(base_url: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    session = aiohttp.ClientSession(
        base_url=base_url, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    async with session.get("/login") as page:
        token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    data = {"_csrf_token": token, "email": "owner@northwind.test", "password": DEMO_PASSWORD}
    async with session.post("/login", data=data, allow_redirects=False) as answer:
        assert answer.status == 303, answer.status
    return session


def write_results(name: str, results: dict[str, object]) -> None:
    out = ROOT / "bench" / "results" / "pages.json"
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
    paths = await seed()
    stack = Stack(STACK_ENV, TMP / "logs")
    results: dict[str, Any] = {
        "requests": REQUESTS,
        "connections": CONNECTIONS,
        "serve_workers": WORKERS,
        "messages": MESSAGES,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    try:
        stack.start_serve(bench_routes=True, workers=WORKERS)
        session = await signed_in(stack.base_url)
        try:
            runs = {"bare_route": ("/bench/bare", {}), "static_file": ("/static/portal.css", {})}
            runs |= {label: (path, {}) for label, path in paths.items()}
            runs["progress_fragment"] = (paths["progress_fragment"], {"HX-Request": "true"})
            # Warm: both processes started, their pools and templates loaded.
            for path, headers in runs.values():
                await drive(session, path, headers, CONNECTIONS * 2)
            for label, (path, headers) in runs.items():
                results[label] = await drive(session, path, headers, REQUESTS)
            # The machine is shared: the baseline again at the end, and their mean used.
            after = await drive(session, "/bench/bare", {}, REQUESTS)
            results["bare_route_after"] = after
        finally:
            await session.close()
    finally:
        stack.stop()
    bare = (results["bare_route"]["per_second"] + results["bare_route_after"]["per_second"]) / 2
    results["bare_route_mean_per_second"] = round(bare)
    for label in [*runs, "bare_route_after"]:
        figures = results[label]
        figures["of_bare_route"] = round(figures["per_second"] / bare, 3)
        say(
            f"  {label:18s} {figures['per_second']:6d}/s  p50 {figures['p50_ms']:7.1f} ms  "
            f"p95 {figures['p95_ms']:7.1f} ms  {figures['of_bare_route']:6.1%} of bare  "
            f"load {figures['load_average_1m']}"
            + (f"  FAILED {figures['failed']}" if figures["failed"] else "")
        )
    say(f"stack {name}, {WORKERS} serve workers, {CONNECTIONS} connections, {REQUESTS} each")
    write_results(name, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
