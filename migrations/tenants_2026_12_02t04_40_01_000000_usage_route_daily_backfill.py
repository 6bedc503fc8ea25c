"""usage_route_daily's rows for the messages rolled up before it existed: usage_route_rollup
summed over channel and status (every status change since moved nothing there), and its
(account_id, day) index, the order every report reads it in.

Data migration: raw SQL through the migration's engine, no tenants imports."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-02T04:40:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "usage_route_daily backfill from usage_route_rollup, and its index"

# The key as rollups.record writes it: "<account>|<YYYY-MM-DD>|<country>|<sender>".
BACKFILL = (
    "INSERT INTO usage_route_daily "
    "(key, account_id, day, country, sender, messages, segments, credits) "
    "SELECT CAST(account_id AS TEXT) || '|' || CAST(day AS TEXT) || '|' || country || '|' "
    "|| sender, account_id, day, country, sender, SUM(messages), SUM(segments), "
    "SUM(credits) FROM usage_route_rollup GROUP BY account_id, day, country, sender "
    "HAVING SUM(messages) <> 0 OR SUM(segments) <> 0 OR SUM(credits) <> 0"
)
INDEX = (
    "CREATE INDEX IF NOT EXISTS usage_route_daily_account_day "
    "ON usage_route_daily (account_id, day)"
)


async def backfill():
    engine = engine_finder()
    await engine.run_querystring(QueryString(BACKFILL))
    await engine.run_querystring(QueryString(INDEX))


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(backfill)
    return manager
