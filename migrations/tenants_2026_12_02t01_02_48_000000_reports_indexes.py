"""The reports' indexes and the backfill of the route and daily roll-ups.

Data migration: raw SQL through the migration's engine, no tenants imports (the tables may
have moved on since). usage_route_rollup gets the messages written before it existed,
summed per (account, local day, channel, status, country, sender) like the usage_rollup
backfill, and usage_daily their sums per (account, local day); the roll-ups get an
(account_id, day) index, the order every report reads them in. On PostgreSQL the message search (body and numbers, ILIKE '%...%') gets pg_trgm GIN
indexes; on SQLite an index of the account's messages holding the searched columns lets
the search read the index alone (not every row of the account, scattered over the table).
"""

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.querystring import QueryString

ID = "2026-12-02T01:02:48:000000"
VERSION = "1.38.0"
DESCRIPTION = "usage_route_rollup and usage_daily backfill; roll-up and search indexes"
PAGE = 10_000
COLUMNS = "key, account_id, day, channel, status, country, sender, messages, segments, credits"
DAILY_COLUMNS = "key, account_id, day, messages, segments, credits"
INDEXES = (
    "CREATE INDEX usage_rollup_account_day ON usage_rollup (account_id, day)",
    "CREATE INDEX usage_route_rollup_account_day ON usage_route_rollup (account_id, day)",
    "CREATE INDEX usage_daily_account_day ON usage_daily (account_id, day)",
)
POSTGRES_INDEXES = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX message_body_trgm ON message USING gin (body gin_trgm_ops)",
    "CREATE INDEX message_to_number_trgm ON message USING gin (to_number gin_trgm_ops)",
    "CREATE INDEX message_from_number_trgm ON message USING gin (from_number gin_trgm_ops)",
)
SQLITE_INDEXES = (
    "CREATE INDEX message_search ON message "
    "(account_id, id, direction, status, created_at, to_number, from_number, body)",
)


def _zone(name):
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _moment(value):
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _totals(engine):
    zones = {
        r["id"]: _zone(r["timezone"])
        for r in await engine.run_querystring(QueryString("SELECT id, timezone FROM account"))
    }
    totals = defaultdict(lambda: [0, 0, 0])
    last = 0
    while True:
        rows = await engine.run_querystring(
            QueryString(
                "SELECT id, account_id, created_at, channel, status, segments, cost, country, "
                "from_number FROM message WHERE direction = 'out' AND id > {} "
                "ORDER BY id LIMIT {}",
                last,
                PAGE,
            )
        )
        if not rows:
            return totals
        last = rows[-1]["id"]
        for r in rows:
            day = _moment(r["created_at"]).astimezone(zones.get(r["account_id"], UTC)).date()
            key = (
                r["account_id"],
                day,
                r["channel"],
                r["status"],
                r["country"] or "",
                r["from_number"] or "",
            )
            total = totals[key]
            total[0] += 1
            total[1] += r["segments"]
            total[2] += r["cost"]


async def _insert(engine, table, columns, key, counts):
    marks = ", ".join(["{}"] * (len(key) + 4))
    await engine.run_querystring(
        QueryString(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",
            "|".join(v.isoformat() if hasattr(v, "isoformat") else str(v) for v in key),
            *key,
            *counts,
        )
    )


async def backfill():
    engine = engine_finder()
    totals = await _totals(engine)
    daily = defaultdict(lambda: [0, 0, 0])
    for key, counts in sorted(totals.items()):
        await _insert(engine, "usage_route_rollup", COLUMNS, key, counts)
        for n in range(3):
            daily[key[:2]][n] += counts[n]
    for key, counts in sorted(daily.items()):
        await _insert(engine, "usage_daily", DAILY_COLUMNS, key, counts)
    statements = list(INDEXES)
    statements += SQLITE_INDEXES if isinstance(engine, SQLiteEngine) else POSTGRES_INDEXES
    for statement in statements:
        await engine.run_querystring(QueryString(statement))


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(backfill)
    return manager
