"""Campaign benchmark for the configured DATABASE_URL / BROKER_URL.

Starts `portal serve` (simulator at 50 ms latency, hooks) and, with a real broker, two
`portal worker` processes; then measures, through the public API and webhooks:
  - seconds to accept a 100,000-recipient campaign (POST /api/v1/messages, one transaction),
  - messages per second submitted to the simulator until the outbox is empty,
  - status callbacks ingested per second (batched as the simulator posts them, and one
    callback per request as most real providers do),
  - peak memory of the server, the workers and this script.
Prints the figures and merges them into bench/results/campaign.json under the stack name.
With the in-process broker (memory://) the workers are threads of `portal serve`.

    .venv/bin/python bench/campaign_bench.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal_bench \
    BROKER_URL=redis://127.0.0.1:6379/5 .venv/bin/python bench/campaign_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS") or 100_000)
CALLBACK_EVENTS = int(os.environ.get("BENCH_CALLBACK_EVENTS") or 50_000)
SINGLE_CALLBACKS = int(os.environ.get("BENCH_SINGLE_CALLBACKS") or 3_000)
# BENCH_ACCEPT_ONLY=1: only the accept figure and its raw-insert baseline.
ACCEPT_ONLY = bool(os.environ.get("BENCH_ACCEPT_ONLY"))
TMP = Path("/tmp/portal-bench")
TMP.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP}/bench-{uuid.uuid4().hex[:6]}.db")
os.environ.setdefault("BROKER_URL", "memory://")
os.environ.setdefault("BROKER_NAMESPACE", f"portal-bench-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DATA_DIR", str(TMP / "data"))
os.environ.setdefault("SECRET_KEY", "bench-secret")
STACK_ENV = {
    "DATABASE_URL": os.environ["DATABASE_URL"],
    "BROKER_URL": os.environ["BROKER_URL"],
    "BROKER_NAMESPACE": os.environ["BROKER_NAMESPACE"],
    "DATA_DIR": os.environ["DATA_DIR"],
    "SECRET_KEY": os.environ["SECRET_KEY"],
    "SIMULATOR_LATENCY_MS": "50",
    # Capacity, not policy: the rate limiter is set out of the way.
    "RATE_LIMIT_PROVIDER_SEGMENTS": "1000000",
    "RATE_LIMIT_SENDER_SEGMENTS": "1000000",
}

import httpx

from bench.stack import Stack, group_peak_rss_mb
from tasks.broker import broker, is_in_process
from tenants.access import apikeys
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import (
    is_sqlite,
    run_sql,
)
from tenants.schema import migrate


def say(text: str) -> None:
    print(text, flush=True)


async def seed() -> tuple[int, tuple[str, str]]:
    await migrate()
    account = await create_root_account(name="Bench", slug=f"bench-{uuid.uuid4().hex[:8]}")
    await ledger.adjust(account.id, RECIPIENTS * 3, reason="campaign bench", actor=SYSTEM)
    key = await apikeys.create_api_key(
        actor=SYSTEM, account_id=account.id, name="bench", role="Owner"
    )
    return account.id, (key.key_id, key.secret)


RAW_COLUMNS = (
    "account_id", "batch_id", "direction", "to_number", "from_number", "body", "channel",
    "status", "segments", "encoding", "cost", "country", "provider", "refunded",
    "release_at", "dispatched_at", "submit_attempts", "created_at", "updated_at",
)  # fmt: skip


async def raw_insert_seconds(account_id: int, numbers: list[str], body: str) -> float:
    """The floor for accepting: the same outbox rows written by the driver alone, in one
    transaction (sqlite3 executemany; asyncpg COPY), then removed again."""
    from datetime import UTC, datetime

    import asyncpg

    from tenants.db import database_url, sqlite_path

    stamp = datetime.now(UTC)
    batch = await run_sql(
        "INSERT INTO message_batch (account_id) VALUES ({}) RETURNING id", account_id
    )
    batch_id = int(batch[0]["id"])
    rows = [
        (account_id, batch_id, "out", n, "", body, "sms", "enqueued", 1, "GSM-7", 1, "AU",
         "simulator", False, stamp, stamp, 0, stamp, stamp)
        for n in numbers
    ]  # fmt: skip
    if is_sqlite():
        import sqlite3

        text = stamp.isoformat()
        sqlite_rows = [(*r[:13], 0, text, text, 0, text, text) for r in rows]
        connection = sqlite3.connect(sqlite_path(database_url()), timeout=60)
        started = time.perf_counter()
        with connection:
            connection.executemany(
                f"INSERT INTO message ({', '.join(RAW_COLUMNS)}) "  # noqa: S608
                f"VALUES ({', '.join('?' * len(RAW_COLUMNS))})",
                sqlite_rows,
            )
        seconds = time.perf_counter() - started
        connection.close()
    else:
        connection = await asyncpg.connect(database_url())
        started = time.perf_counter()
        async with connection.transaction():
            await connection.copy_records_to_table("message", records=rows, columns=RAW_COLUMNS)
        seconds = time.perf_counter() - started
        await connection.close()
    await run_sql("DELETE FROM message WHERE batch_id = {}", batch_id)
    await run_sql("DELETE FROM message_batch WHERE id = {}", batch_id)
    return seconds


async def enqueued(batch_id: int) -> int:
    rows = await run_sql(
        "SELECT COUNT(*) AS n FROM message WHERE batch_id = {} AND status = 'enqueued'", batch_id
    )
    return int(rows[0]["n"])


async def wait_submitted(batch_id: int, started: float) -> dict[str, float]:
    """Time until the outbox of the batch is empty; the 10%-90% window is the steady rate."""
    marks: dict[float, float] = {}
    while True:
        left = await enqueued(batch_id)
        moment = time.monotonic() - started
        done = RECIPIENTS - left
        for fraction in (0.1, 0.9):
            if done >= RECIPIENTS * fraction and fraction not in marks:
                marks[fraction] = moment
        if left == 0:
            total = moment
            break
        if moment > 1200:
            raise RuntimeError(f"{left} messages still enqueued after 20 minutes")
        await asyncio.sleep(0.25)
    steady = RECIPIENTS * 0.8 / max(marks[0.9] - marks[0.1], 1e-6)
    return {"seconds": total, "overall_per_second": RECIPIENTS / total, "steady_per_second": steady}


async def wait_callbacks_settled(batch_id: int) -> float:
    """Seconds until no message of the batch waits for its final callback."""
    started = time.monotonic()
    while time.monotonic() - started < 600:
        rows = await run_sql(
            "SELECT COUNT(*) AS n FROM message WHERE batch_id = {} AND status IN ('enqueued', 'sent')",
            batch_id,
        )
        if int(rows[0]["n"]) == 0:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def post_callbacks(
    base_url: str, events: list[dict[str, object]], per_request: int, concurrency: int
) -> float:
    """Post events to the status hook; returns events per second."""
    batches = [events[i : i + per_request] for i in range(0, len(events), per_request)]
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    headers = {"X-Simulator-Secret": os.environ.get("SIMULATOR_SECRET") or "simulator-secret"}

    async def run(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            r = await client.post("/hooks/simulator/status", json=batch, headers=headers)
            r.raise_for_status()

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        await asyncio.gather(*(run(client) for _ in range(concurrency)))
    return len(events) / (time.monotonic() - started)


def write_results(stack_name: str, results: dict[str, object]) -> None:
    """Merge this stack's figures into bench/results/campaign.json."""
    out = ROOT / "bench" / "results" / "campaign.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[stack_name] = results
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    say(f"  written to {out.relative_to(ROOT)}")


async def main() -> int:
    stack_name = (
        ("sqlite" if is_sqlite() else "postgresql")
        + "+"
        + ("memory" if is_in_process(broker) else os.environ["BROKER_URL"].split(":", 1)[0])
    )
    account_id, (key_id, secret) = await seed()
    stack = Stack(STACK_ENV, TMP / "logs")
    results: dict[str, object] = {"stack": stack_name, "recipients": RECIPIENTS}
    try:
        stack.start_serve()
        # Warm-up: the first send pays for imports and connection pools.
        async with httpx.AsyncClient(
            base_url=stack.base_url, auth=(key_id, secret), timeout=900
        ) as api:
            r = await api.post(
                "/api/v1/messages",
                json={"to": ["+61412000001"], "body": "warm-up"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            r.raise_for_status()
            numbers = [f"+61412{n:06d}" for n in range(RECIPIENTS)]
            say(f"stack {stack_name}: accepting a {RECIPIENTS:,}-recipient campaign...")
            started = time.monotonic()
            r = await api.post(
                "/api/v1/messages",
                json={
                    "to": numbers,
                    "body": "Spring sale: 20% off everything this weekend only.",
                    "campaign_name": "bench",
                },
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            accept_seconds = time.monotonic() - started
            r.raise_for_status()
            body = r.json()
        batch_id = int(body["batch_id"])
        results["accept_seconds"] = round(accept_seconds, 2)
        results["accepted"] = len(body["accepted"])
        results["load_average_1m_at_accept"] = round(os.getloadavg()[0], 2)
        say(f"  accept: {accept_seconds:.2f} s for {len(body['accepted']):,} messages")
        raw_seconds = await raw_insert_seconds(
            account_id, numbers, "Spring sale: 20% off everything this weekend only."
        )
        results["raw_insert_seconds"] = round(raw_seconds, 2)
        results["accept_of_raw_insert"] = round(raw_seconds / accept_seconds, 3)
        say(
            f"  raw bulk insert of the same rows: {raw_seconds:.2f} s "
            f"(accept runs at {raw_seconds / accept_seconds:.1%} of it; "
            f"load {results['load_average_1m_at_accept']})"
        )

        if ACCEPT_ONLY:
            return 0
        # Separate worker processes start only now, so the two figures do not share the CPU.
        submit_start = time.monotonic()
        if not is_in_process(broker):
            stack.start_worker(processes=2, threads=8)
        submitted = await wait_submitted(batch_id, submit_start)
        results["submit_seconds"] = round(submitted["seconds"], 2)
        results["submitted_per_second"] = round(submitted["overall_per_second"])
        results["submitted_per_second_steady"] = round(submitted["steady_per_second"])
        say(
            f"  submitted to the simulator (50 ms latency): {submitted['overall_per_second']:.0f} msg/s overall, "
            f"{submitted['steady_per_second']:.0f} msg/s steady (10%-90%)"
        )
        settle = await wait_callbacks_settled(batch_id)
        say(f"  simulator callbacks settled {settle:.1f} s after the outbox emptied")

        ids = [int(a["message_id"]) for a in body["accepted"]][:CALLBACK_EVENTS]
        batched = [
            {
                "message_id": m,
                "status": "read",
                "event_id": f"bench-read-{m}",
                "provider_ref": f"b{m}",
            }
            for m in ids
        ]
        rate_batched = await post_callbacks(stack.base_url, batched, per_request=500, concurrency=4)
        results["callbacks_per_second_batched"] = round(rate_batched)
        say(
            f"  status callbacks ingested: {rate_batched:.0f}/s in batches of 500 ({len(batched):,} events)"
        )
        singles = [
            {"message_id": m, "status": "read", "event_id": f"bench-single-{m}"}
            for m in ids[:SINGLE_CALLBACKS]
        ]
        rate_single = await post_callbacks(stack.base_url, singles, per_request=1, concurrency=16)
        results["callbacks_per_second_single"] = round(rate_single)
        say(
            f"  status callbacks ingested: {rate_single:.0f}/s one per request ({len(singles):,} events)"
        )

        serve_peak = group_peak_rss_mb(stack.serve.pid) if stack.serve else 0.0
        worker_peak = max((group_peak_rss_mb(w.pid) for w in stack.workers), default=0.0)
        bench_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results["peak_rss_mb"] = {
            "serve": round(serve_peak),
            "worker_process": round(worker_peak),
            "bench_client": round(bench_peak),
        }
        say(
            f"  peak memory: serve {serve_peak:.0f} MiB, one worker process {worker_peak:.0f} MiB, "
            f"this script {bench_peak:.0f} MiB"
        )
    finally:
        stack.stop()
        write_results(stack_name + ("-accept" if ACCEPT_ONLY else ""), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
