"""Cost of the database round trip the portal pays on every query: a raw query outside a
transaction, one inside a transaction, and a Piccolo select, each beside the same query on
a fresh connection (what Piccolo's SQLite engine did before connections were kept).

    python bench/db_bench.py                 # SQLite file in a temporary folder
    DATABASE_URL=postgresql://... python bench/db_bench.py

Prints the figures and writes bench/results/db_<kind>.json."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='db-bench-')}/bench.db"

from tenants.accounts.tables import Account
from tenants.db import database_url, is_sqlite, pool, run_sql, sqlite_path, transaction
from tenants.schema import migrate

ROUNDS = int(os.environ.get("BENCH_ROUNDS") or 500)


async def per_call(work, rounds: int = ROUNDS) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds per call, best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            await work()
        best = min(best, (time.perf_counter() - started) / rounds * 1000)
    return round(best, 3)


async def query() -> None:
    await run_sql("SELECT count(*) AS n FROM account")


async def query_in_transaction() -> None:
    async with transaction():
        await run_sql("SELECT count(*) AS n FROM account")


async def piccolo_select() -> None:
    await Account.select(Account.id).limit(1)


def fresh_connection_query(path: str) -> None:
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("SELECT count(*) AS n FROM account").fetchall()
    finally:
        connection.close()


async def main() -> None:
    await migrate()
    async with pool():
        figures: dict[str, object] = {
            "database": "sqlite" if is_sqlite() else "postgresql",
            "rounds": ROUNDS,
            "load_average": os.getloadavg()[0],
            "query_ms": await per_call(query),
            "query_in_transaction_ms": await per_call(query_in_transaction),
            "piccolo_select_ms": await per_call(piccolo_select),
        }
    if is_sqlite():
        path = sqlite_path(database_url())

        async def fresh() -> None:
            await asyncio.to_thread(fresh_connection_query, path)

        # The baseline: a connection (and, with aiosqlite, a thread) per query.
        figures["fresh_connection_query_ms"] = await per_call(fresh)
    for name, value in figures.items():
        print(f"{name:>28}: {value}")
    results = ROOT / "bench" / "results" / f"db_{figures['database']}.json"
    results.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
