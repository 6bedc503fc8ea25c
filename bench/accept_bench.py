"""Accepting a send in process: accept_send for N E.164 recipients (default 100,000) against
the raw bulk insert of the same outbox rows in the same run (sqlite3 executemany; asyncpg
COPY), without HTTP (JSON in and out is measured by campaign_bench.py). Prints both, their
ratio and the load average, and merges them into bench/results/accept.json.

    /work/main/.venv/bin/python bench/accept_bench.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/wt_accept \
        /work/main/.venv/bin/python bench/accept_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='accept-bench-')}/bench.db"
os.environ.setdefault("SECRET_KEY", "bench-secret")

from bench.campaign_bench import raw_insert_seconds
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import enable_wal, is_sqlite, pool, run_sql
from tenants.messaging.accept import SEND_PERMISSIONS, SendRequest, accept_send
from tenants.schema import migrate

N = int(os.environ.get("BENCH_RECIPIENTS") or 100_000)
RUNS = int(os.environ.get("BENCH_RUNS") or 2)
BODY = "Spring sale: 20% off everything this weekend only."


async def _accept_seconds(account_id: int, numbers: list[str]) -> float:
    started = time.perf_counter()
    result = await accept_send(
        SendRequest(
            account_id=account_id,
            numbers=numbers,
            body=BODY,
            campaign_name="bench",
            permissions=frozenset(SEND_PERMISSIONS),
        ),
        actor=SYSTEM,
    )
    seconds = time.perf_counter() - started
    assert len(result.accepted) == len(numbers), result.skipped_by_reason()
    await run_sql("DELETE FROM message WHERE batch_id = {}", result.batch_id)
    return seconds


async def main() -> dict[str, object]:
    async with pool():
        await migrate()
        await enable_wal()
        account = await create_root_account(name="Bench", slug=f"bench-{uuid.uuid4().hex[:8]}")
        await ledger.adjust(account.id, N * (RUNS + 1) * 2, reason="bench", actor=SYSTEM)
        numbers = [f"+61412{n:06d}" for n in range(N)]
        await _accept_seconds(account.id, numbers[:1000])  # warm-up: imports, caches, pool
        runs = []
        for _ in range(RUNS):
            accept = await _accept_seconds(account.id, numbers)
            raw = await raw_insert_seconds(account.id, numbers, BODY)
            runs.append({"accept_seconds": round(accept, 3), "raw_insert_seconds": round(raw, 3)})
        best_accept = min(r["accept_seconds"] for r in runs)
        best_raw = min(r["raw_insert_seconds"] for r in runs)
        return {
            "recipients": N,
            "runs": runs,
            "accept_seconds_best": best_accept,
            "raw_insert_seconds_best": best_raw,
            "accept_of_raw_insert": round(best_raw / best_accept, 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }


if __name__ == "__main__":
    results = asyncio.run(main())
    stack = "sqlite" if is_sqlite() else "postgresql"
    for run in results["runs"]:  # type: ignore[attr-defined]
        print(
            f"{stack}: accept {N:,} in {run['accept_seconds']:.2f} s, raw insert of the same "
            f"rows {run['raw_insert_seconds']:.2f} s"
        )
    print(
        f"{stack}: accept runs at {results['accept_of_raw_insert']:.1%} of the raw bulk insert "
        f"(best of {RUNS}; load {results['load_average_1m']})"
    )
    out = ROOT / "bench" / "results" / "accept.json"
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[stack] = results
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
