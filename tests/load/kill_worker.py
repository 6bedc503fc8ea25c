"""Fault script: kill -9 a `portal worker` mid-campaign and check nothing is lost or sent twice.

Against PostgreSQL + Redis (a database of its own, wiped): accepts a 10,000-message
campaign, starts `portal serve` (simulator and hooks) and one `portal worker`, kills the
worker's whole process group with SIGKILL while the campaign is being submitted, starts a
new worker, and checks that every message ends in a final status and that the simulator
saw each message id exactly once. Not collected by pytest; run it by hand or from CI:

    FAULT_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal_fault \
    FAULT_BROKER_URL=redis://127.0.0.1:6379/5 .venv/bin/python tests/load/kill_worker.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MESSAGES = int(os.environ.get("FAULT_MESSAGES") or 10_000)
DATABASE_URL = (
    os.environ.get("FAULT_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/portal_fault"
)
BROKER_URL = os.environ.get("FAULT_BROKER_URL") or "redis://127.0.0.1:6379/5"
ENV = {
    "DATABASE_URL": DATABASE_URL,
    "BROKER_URL": BROKER_URL,
    "BROKER_NAMESPACE": f"portal-fault-{uuid.uuid4().hex[:8]}",
    "DATA_DIR": "/tmp/portal-fault-data",
    "SECRET_KEY": "fault-script-secret",
    "SIMULATOR_LATENCY_MS": "50",
    # Late delivery reports: messages the killed worker handed over stay `enqueued` until
    # the sweeper takes them back, so the lookup by reference is what prevents a resend.
    "SIMULATOR_CALLBACK_DELAY_MS": "20000",
    # Slow enough that the kill lands mid-campaign, short leases so recovery is quick.
    "RATE_LIMIT_PROVIDER_SEGMENTS": "800",
    "RATE_LIMIT_SENDER_SEGMENTS": "800",
    "CLAIM_LEASE_SECONDS": "15",
    "SWEEP_GRACE_SECONDS": "10",
    "SWEEP_INTERVAL_SECONDS": "2",
}
os.environ.update(ENV)

from bench.stack import Stack
from tasks.sending import dispatch_chunks
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import (
    DB,
    run_sql,
)
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND
from tenants.messaging.messages import FINAL_STATUSES
from tenants.schema import migrate


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def prepare() -> int:
    dbname = DATABASE_URL.rsplit("/", 1)[1]
    await asyncio.to_thread(
        subprocess.run,
        ["createdb", "-h", "127.0.0.1", "-U", "postgres", dbname],
        capture_output=True,
        check=False,
    )
    await DB.run_ddl("DROP SCHEMA public CASCADE")
    await DB.run_ddl("CREATE SCHEMA public")
    await migrate()
    account = await create_root_account(name="Fault Test", slug="fault-test")
    await ledger.adjust(account.id, MESSAGES * 2, reason="fault script", actor=SYSTEM)
    return account.id


async def accept(account_id: int) -> list[int]:
    numbers = [f"+61412{n:06d}" for n in range(MESSAGES)]
    result = await sending.accept_send(
        sending.SendRequest(
            account_id=account_id,
            numbers=numbers,
            body="Fault test: nothing lost, nothing twice",
            campaign_name="kill -9",
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    dispatch_chunks(result.chunks)
    return [a.message_id for a in result.accepted if a.message_id]


async def counts() -> dict[str, int]:
    rows = await run_sql("SELECT status, COUNT(*) AS n FROM message GROUP BY status")
    return {r["status"]: int(r["n"]) for r in rows}


async def main() -> int:
    account_id = await prepare()
    stack = Stack(ENV, Path("/tmp/portal-fault-logs"))
    try:
        stack.start_serve()
        worker = stack.start_worker(processes=1, threads=8)
        ids = await accept(account_id)
        log(f"accepted {len(ids)} messages")
        while True:
            c = await counts()
            done = MESSAGES - c.get("enqueued", 0)
            if done >= MESSAGES * 0.3:
                break
            await asyncio.sleep(0.2)
        log(f"kill -9 the worker at {done} submitted: {c}")
        stack.kill9(worker)
        await asyncio.sleep(2)
        log(f"after the kill: {await counts()}")
        stack.start_worker(processes=1, threads=8)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            c = await counts()
            if sum(n for s, n in c.items() if s in FINAL_STATUSES) == MESSAGES:
                break
            await asyncio.sleep(1)
        final = await counts()
        log(f"final: {final}")
        retried = await run_sql("SELECT COUNT(*) AS n FROM message WHERE submit_attempts > 1")
        looked_up = await run_sql(
            "SELECT COUNT(*) AS n FROM message_event WHERE source = 'platform' AND status = 'sent'"
        )
        log(
            f"claimed again after the kill: {retried[0]['n']}; found at the provider by "
            f"reference instead of resubmitted: {looked_up[0]['n']}"
        )
        outbox = stack.outbox()
        submissions = {int(o["message_id"]): int(o["submissions"]) for o in outbox}  # type: ignore[call-overload]
        twice = [m for m, n in submissions.items() if n != 1]
        missing = set(ids) - set(submissions)
        not_final = {s: n for s, n in final.items() if s not in FINAL_STATUSES}
        log(
            f"simulator saw {len(submissions)} ids; submitted more than once: {len(twice)}; never: {len(missing)}"
        )
        ok = not twice and not missing and not not_final and sum(final.values()) == MESSAGES
        print("1 passed, 0 failed" if ok else "0 passed, 1 failed", flush=True)
        return 0 if ok else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
