"""How long the reports take when the roll-up holds 90 days of 50 sub-accounts: the
dashboard's queries, the usage report by account and by day (p50/p95).

    .venv/bin/python bench/reports_bench.py                 # SQLite file in a temp folder
    DATABASE_URL=postgresql://... .venv/bin/python bench/reports_bench.py   # wipes that DB
    BENCH_MESSAGES=1000000 ...                              # the issue's scale

Messages are written in bulk SQL (the accept path would take hours on a shared machine)
and rolled up through `rollups.record`, the code every status change runs; their final
statuses are spread like a real month (mostly delivered). The reports read the roll-up
only, so their cost follows its rows (accounts x days x channels x statuses), not the
number of messages. Prints the figures and writes bench/results/reports.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.db")
os.environ.setdefault("SECRET_KEY", "bench-secret")

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200000"))
SUB_ACCOUNTS = 50
DAYS = 90
ROUNDS = 60
CHUNK = 5000
STATUSES = (
    ("delivered", 80),
    ("read", 5),
    ("failed", 8),
    ("rejected", 3),
    ("enqueued_failed", 1),
    ("sent", 2),
    ("enqueued", 1),
)
CHANNELS = (("sms", 90), ("whatsapp", 7), ("mms", 3))


def _pick(rnd: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rnd.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


async def seed() -> tuple[int, list[int]]:
    from tenants.accounts.tables import Account
    from tenants.accounts.tree import create_root_account, create_sub_account
    from tenants.audit.record import SYSTEM
    from tenants.db import placeholders, run_sql, transaction
    from tenants.reports import rollups

    master = await create_root_account(name="Bench Master", slug="bench")
    subs = []
    for n in range(SUB_ACCOUNTS):
        sub = await create_sub_account(
            actor=SYSTEM,
            within_account_id=master.id,
            parent_id=master.id,
            name=f"Branch {n:02d}",
            slug=f"branch-{n:02d}",
        )
        subs.append(sub.id)
    await Account.update({Account.timezone: "Australia/Sydney"}).where(Account.id == subs[0])
    rnd = random.Random(16)
    end = datetime.now(UTC)
    accounts = [master.id, *subs]
    columns = "account_id, direction, to_number, body, channel, status, segments, cost, created_at, updated_at"
    written = 0
    while written < MESSAGES:
        size = min(CHUNK, MESSAGES - written)
        rows = []
        moves = []
        for _ in range(size):
            account = rnd.choice(accounts)
            at = end - timedelta(seconds=rnd.randrange(DAYS * 86400))
            channel = _pick(rnd, CHANNELS)
            status = _pick(rnd, STATUSES)
            segments = 1 if rnd.random() < 0.8 else 2
            rows.append(
                (
                    account,
                    "out",
                    "+61400000000",
                    "bench",
                    channel,
                    status,
                    segments,
                    segments,
                    at,
                    at,
                )
            )
            moves.append(rollups.StatusMove(account, at, channel, segments, segments, None, status))
        async with transaction():
            for part in range(0, size, 500):
                block = rows[part : part + 500]
                values = ", ".join(f"({placeholders(10)})" for _ in block)
                await run_sql(
                    f"INSERT INTO message ({columns}) VALUES {values}",  # noqa: S608 (only placeholders are formatted in)
                    *(v for row in block for v in row),
                )
            await rollups.record(moves)
        written += size
    return master.id, subs


def _figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
    }


async def timed(work) -> dict[str, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    return _figures(samples)


async def main() -> dict[str, object]:
    from portal.controllers.dashboard import activity
    from tenants.accounts.tree import get_account
    from tenants.db import close_pool, is_sqlite, run_sql, start_pool
    from tenants.reports import usage
    from tenants.schema import migrate, wipe_all_data

    await migrate()
    await start_pool()
    await wipe_all_data()
    started = time.perf_counter()
    master_id, subs = await seed()
    seeding = time.perf_counter() - started
    master = await get_account(master_id)
    branch = await get_account(subs[1])
    today = await usage.today_in(master_id)
    quarter = usage.Period(today - timedelta(days=DAYS - 1), today)
    rollup_rows = (await run_sql("SELECT COUNT(*) AS n FROM usage_rollup"))[0]["n"]

    async def dashboard_master() -> None:
        act = await activity(master)
        await usage.usage_report(master, act.period, ("account",))

    async def dashboard_branch() -> None:
        await activity(branch)

    async def by_account() -> None:
        await usage.usage_report(master, quarter, ("account",))

    async def by_day() -> None:
        await usage.usage_report(master, quarter, ("day",))

    async def by_day_status() -> None:
        await usage.usage_report(master, quarter, ("day", "account", "status"))

    # Each account counts days in its own time zone: a day either side holds them all.
    wide = usage.Period(quarter.start - timedelta(days=1), quarter.end + timedelta(days=1))
    total = await usage.usage_report(master, wide, ())
    assert total.totals.messages == MESSAGES, (total.totals, MESSAGES)
    result: dict[str, object] = {
        "database": "sqlite" if is_sqlite() else "postgresql",
        "messages": MESSAGES,
        "sub_accounts": SUB_ACCOUNTS,
        "days": DAYS,
        "rollup_rows": int(rollup_rows),
        "seed_seconds": round(seeding, 1),
        "rounds": ROUNDS,
        "dashboard_master": await timed(dashboard_master),
        "dashboard_branch": await timed(dashboard_branch),
        "usage_by_account_90d": await timed(by_account),
        "usage_by_day_90d": await timed(by_day),
        "usage_by_day_account_status_90d": await timed(by_day_status),
    }
    await close_pool()
    return result


if __name__ == "__main__":
    figures = asyncio.run(main())
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / f"reports_{figures['database']}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
