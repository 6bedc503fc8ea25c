"""How long the reports take when 1M messages over 90 days of 50 sub-accounts are rolled
up: the dashboard's queries, the usage report by account, by day and by country, and the
message search by text and by number (p50/p95), beside a same-run baseline: the same
usage figure counted by scanning the messages (what the roll-up saves).

    .venv/bin/python bench/reports_bench.py                 # SQLite file in a temp folder
    DATABASE_URL=postgresql://... .venv/bin/python bench/reports_bench.py   # wipes that DB
    BENCH_MESSAGES=200000 ...                               # a quicker run
    BENCH_REUSE=1 DATABASE_URL=... .venv/bin/python bench/reports_bench.py  # seed once

With BENCH_REUSE=1 and a DATABASE_URL that already holds a complete seed (the bench master,
its 50 sub-accounts and BENCH_MESSAGES messages) the wipe and the seed are skipped (the run
says it reused them; migrations still run, so a new index is built on the seeded rows);
otherwise, and by default, the database is wiped and seeded. BENCH_SEED_ONLY=1 stops once
the database is seeded (to seed in the background while the code under test changes).

Messages are written in bulk (copy_rows: COPY on PostgreSQL; the accept path would take
hours on a shared machine), the search indexes built after them, and rolled up through
`rollups.record`, the code every status change runs; their final statuses are spread like
a real month (mostly delivered). What limits each figure:
- dashboard, usage by account, by day: usage_daily's rows (accounts x days, ~4.6k here);
  the dashboard's own chart reads usage_rollup for one account (days x channels x statuses);
- usage by country (or sender): usage_route_daily's rows over the whole subtree (~41k here:
  usage_route_rollup's ~175k summed over channel and status, which only an accept moves);
- usage by day+account+status: usage_rollup's rows over the whole subtree (~55k here), and
  the ~30k rows of the report itself (each made into a row object in Python);
- search by text: one account's messages (~20k here), read from the covering
  message_search index on SQLite (every entry is tested: LIKE '%...%'; a page that holds
  every match needs no count), pg_trgm GIN indexes on PostgreSQL;
- search by a whole number (national or E.164): the index entries of that number in the
  account, To and From (message_account_to, message_account_from), newest first.
Prints the figures with the load average and writes bench/results/reports_<database>.json.
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

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "1000000"))
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
# Recipients: mostly Australian mobiles, some New Zealand and British ones.
COUNTRIES = (("AU", "+614", 85, 8), ("NZ", "+6421", 10, 7), ("GB", "+447400", 5, 6))
SENDERS = ("Northwind", "Promo", "+61480000001")
WORDS = ("sale", "order", "shipped", "reminder", "appointment", "code", "invoice", "thanks")
BASELINE_ROUNDS = 5
REUSE = os.environ.get("BENCH_REUSE", "") == "1"
SEED_ONLY = os.environ.get("BENCH_SEED_ONLY", "") == "1"


def _pick(rnd: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rnd.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def _message(rnd: random.Random, account: int, end: datetime) -> tuple[object, ...]:
    """One outbound message row (the columns seed() inserts)."""
    at = end - timedelta(seconds=rnd.randrange(DAYS * 86400))
    country, prefix, _, digits = rnd.choices(COUNTRIES, [c[2] for c in COUNTRIES])[0]
    to = prefix + "".join(rnd.choices("0123456789", k=digits))
    body = f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} ref {rnd.randrange(10**6):06d}"
    segments = 1 if rnd.random() < 0.8 else 2
    channel, status = _pick(rnd, CHANNELS), _pick(rnd, STATUSES)
    sender = rnd.choice(SENDERS)
    return (account, "out", to, sender, body, channel, status, segments, segments, country, at, at)


def _bulk(row: tuple[object, ...]) -> tuple[object, ...]:
    from tenants.db import bulk_value

    return tuple(bulk_value(v) for v in row)


def _search_indexes() -> list[str]:
    """The message search indexes as the migration *reports_indexes* creates them: dropped
    while the messages are seeded and built after (a bulk build, not 1M index inserts)."""
    import importlib.util

    from tenants.db import is_sqlite

    path = next((ROOT / "migrations").glob("*_reports_indexes.py"))
    spec = importlib.util.spec_from_file_location("reports_indexes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    chosen = module.SQLITE_INDEXES if is_sqlite() else module.POSTGRES_INDEXES
    return [statement for statement in chosen if statement.startswith("CREATE INDEX")]


async def seed_with_indexes_after() -> tuple[int, list[int], float]:
    """seed(), the search indexes built after it; returns the seconds the build took."""
    from tenants.db import is_sqlite, run_sql

    indexes = _search_indexes()
    for definition in indexes:
        await run_sql(f"DROP INDEX IF EXISTS {definition.split()[2]}")
    master_id, subs = await seed()
    started = time.perf_counter()
    for definition in indexes:
        await run_sql(definition)
    if not is_sqlite():
        # The seed updated each roll-up row once per chunk: vacuum what autovacuum would
        # have by then, so the figures are those of a steady state, not of dead rows.
        await run_sql("VACUUM ANALYZE")
    return master_id, subs, time.perf_counter() - started


async def reusable_seed() -> tuple[int, list[int]] | None:
    """The bench master and its sub-accounts when the database holds a complete seed of
    this size (every message rolled up), else None. The search indexes are (re)built if an
    earlier run stopped before building them."""
    from tenants.db import is_sqlite, run_sql

    masters = await run_sql("SELECT id FROM account WHERE slug = 'bench' AND parent IS NULL")
    if not masters:
        return None
    master_id = masters[0]["id"]
    subs = [
        r["id"]
        for r in await run_sql("SELECT id FROM account WHERE parent = {} ORDER BY slug", master_id)
    ]
    messages = (await run_sql("SELECT COUNT(*) AS n FROM message"))[0]["n"]
    rolled = (await run_sql("SELECT COALESCE(SUM(messages), 0) AS n FROM usage_daily"))[0]["n"]
    if len(subs) != SUB_ACCOUNTS or int(messages) != MESSAGES or int(rolled) != MESSAGES:
        return None
    for definition in _search_indexes():
        await run_sql(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
    if not is_sqlite():
        await run_sql("ANALYZE")
    return master_id, subs


async def seed() -> tuple[int, list[int]]:
    from tenants.accounts.tables import Account
    from tenants.accounts.tree import create_root_account, create_sub_account
    from tenants.audit.record import SYSTEM
    from tenants.db import copy_rows, transaction
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
    columns = (
        "account_id", "direction", "to_number", "from_number", "body", "channel", "status",
        "segments", "cost", "country", "created_at", "updated_at",
    )  # fmt: skip
    written = 0
    while written < MESSAGES:
        size = min(CHUNK, MESSAGES - written)
        rows = [_message(rnd, rnd.choice(accounts), end) for _ in range(size)]
        moves = [
            rollups.StatusMove(r[0], r[10], r[5], r[7], r[8], None, r[6], country=r[9], sender=r[3])
            for r in rows
        ]
        async with transaction():
            await copy_rows("message", columns, [_bulk(r) for r in rows])
            await rollups.record(moves)
        written += size
    return master.id, subs


def _figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
    }


async def timed(work, rounds: int = ROUNDS) -> dict[str, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    return _figures(samples)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


async def _scan_by_account(master_path: str, period) -> None:  # type: ignore[no-untyped-def]
    """The baseline: usage by account counted from the messages, as without a roll-up."""
    from tenants.db import run_sql

    await run_sql(
        "SELECT account_id, COUNT(*) AS n, SUM(segments) AS s, SUM(cost) AS c FROM message "
        "WHERE direction = 'out' AND account_id IN "
        "(SELECT id FROM account WHERE path LIKE {}) "
        "AND created_at >= {} AND created_at < {} GROUP BY account_id",
        master_path + "%",
        datetime.combine(period.start, datetime.min.time(), UTC),
        datetime.combine(period.end + timedelta(days=1), datetime.min.time(), UTC),
    )


async def _searches(account_id: int) -> tuple[str, str]:
    """A text a few of the account's messages hold, and one of its numbers written the
    national way (0413 000 000: read in the account's region, as people type it)."""
    from tenants.db import run_sql

    row = (
        await run_sql(
            "SELECT body, to_number FROM message WHERE account_id = {} "
            "AND to_number LIKE '+614%' ORDER BY id LIMIT 1",
            account_id,
        )
    )[0]
    return row["body"].split(" ref ")[1], "0" + row["to_number"][3:]


async def main() -> dict[str, object]:
    from portal.controllers.dashboard import activity
    from tenants.accounts.tree import get_account
    from tenants.db import close_pool, is_sqlite, run_sql, start_pool
    from tenants.messaging import messages
    from tenants.reports import usage
    from tenants.schema import migrate, wipe_all_data

    await migrate()
    await start_pool()
    reused = await reusable_seed() if REUSE else None
    seeding: float | None = None
    indexing: float | None = None
    if reused is not None:
        master_id, subs = reused
        print(f"reused the seeded database ({MESSAGES} messages): no wipe, no seed", flush=True)
    else:
        if REUSE:
            print("no complete seed of this size to reuse: wiping and seeding", flush=True)
        await wipe_all_data()
        started = time.perf_counter()
        master_id, subs, indexing = await seed_with_indexes_after()
        seeding = time.perf_counter() - started
        print(f"seeded {MESSAGES} messages in {seeding:.0f} s (load {_load()})", flush=True)
    if SEED_ONLY:
        await close_pool()
        return {}
    master = await get_account(master_id)
    branch = await get_account(subs[1])
    today = await usage.today_in(master_id)
    quarter = usage.Period(today - timedelta(days=DAYS - 1), today)
    rollup_rows = (await run_sql("SELECT COUNT(*) AS n FROM usage_rollup"))[0]["n"]
    route_rows = (await run_sql("SELECT COUNT(*) AS n FROM usage_route_rollup"))[0]["n"]
    route_daily_rows = (await run_sql("SELECT COUNT(*) AS n FROM usage_route_daily"))[0]["n"]
    text, number = await _searches(branch.id)

    async def dashboard_master() -> None:
        act = await activity(master)
        await usage.usage_report(master, act.period, ("account",))

    async def dashboard_branch() -> None:
        await activity(branch)

    async def by_account() -> None:
        await usage.usage_report(master, quarter, ("account",))

    async def by_day() -> None:
        await usage.usage_report(master, quarter, ("day",))

    async def by_country() -> None:
        await usage.usage_report(master, quarter, ("country",))

    async def by_day_status() -> None:
        await usage.usage_report(master, quarter, ("day", "account", "status"))

    async def search_text() -> None:
        found = await messages.list_messages(branch.id, messages.MessageFilter(text=text))
        assert found.total >= 1

    async def search_number() -> None:
        found = await messages.list_messages(branch.id, messages.MessageFilter(number=number))
        assert found.total >= 1

    async def search_partial_number() -> None:
        # A part of the number (its last 7 digits): no whole number, so digits anywhere.
        found = await messages.list_messages(branch.id, messages.MessageFilter(number=number[-7:]))
        assert found.total >= 1

    async def scan_by_account() -> None:
        await _scan_by_account(master.path, quarter)

    # Each account counts days in its own time zone: a day either side holds them all.
    wide = usage.Period(quarter.start - timedelta(days=1), quarter.end + timedelta(days=1))
    total = await usage.usage_report(master, wide, ())
    assert total.totals.messages == MESSAGES, (total.totals, MESSAGES)
    by_route = await usage.usage_report(master, wide, ("country", "sender"))
    assert by_route.totals == total.totals, (by_route.totals, total.totals)
    result: dict[str, object] = {
        "database": "sqlite" if is_sqlite() else "postgresql",
        "messages": MESSAGES,
        "sub_accounts": SUB_ACCOUNTS,
        "days": DAYS,
        "rollup_rows": int(rollup_rows),
        "route_rollup_rows": int(route_rows),
        "route_daily_rows": int(route_daily_rows),
        "branch_messages": (
            await run_sql("SELECT COUNT(*) AS n FROM message WHERE account_id = {}", branch.id)
        )[0]["n"],
        "reused_seed": reused is not None,
        "seed_seconds": None if seeding is None else round(seeding, 1),
        "search_index_build_and_vacuum_seconds": None if indexing is None else round(indexing, 1),
        "rounds": ROUNDS,
        "load_average_1m_at_start": _load(),
    }
    for name, work in (
        ("dashboard_master", dashboard_master),
        ("dashboard_branch", dashboard_branch),
        ("usage_by_account_90d", by_account),
        ("usage_by_day_90d", by_day),
        ("usage_by_country_90d", by_country),
        ("usage_by_day_account_status_90d", by_day_status),
        ("search_text", search_text),
        ("search_number_national", search_number),
        ("search_number_partial", search_partial_number),
    ):
        result[name] = {**await timed(work), "load_1m": _load()}
    result["baseline_usage_by_account_90d_scanning_messages"] = {
        **await timed(scan_by_account, BASELINE_ROUNDS),
        "load_1m": _load(),
    }
    await close_pool()
    return result


if __name__ == "__main__":
    figures = asyncio.run(main())
    if not figures:
        sys.exit(0)
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / f"reports_{figures['database']}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
