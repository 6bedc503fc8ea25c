"""usage_rollup backfill: the messages written before the roll-up existed, counted once.

Data migration: raw SQL through the migration's engine, no tenants imports (the tables may
have moved on since). Messages are read in id order a page at a time and summed per
(account, local day, channel, status); the account's time zone names the day.
"""

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-01T19:45:16:000000"
VERSION = "1.38.0"
DESCRIPTION = "usage_rollup: count the messages written before it existed"
PAGE = 10_000


def _zone(name):
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _moment(value):
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def backfill():
    engine = engine_finder()
    zones = {
        r["id"]: _zone(r["timezone"])
        for r in await engine.run_querystring(QueryString("SELECT id, timezone FROM account"))
    }
    totals = defaultdict(lambda: [0, 0, 0])
    last = 0
    while True:
        rows = await engine.run_querystring(
            QueryString(
                "SELECT id, account_id, created_at, channel, status, segments, cost "
                "FROM message WHERE direction = 'out' AND id > {} ORDER BY id LIMIT {}",
                last,
                PAGE,
            )
        )
        if not rows:
            break
        last = rows[-1]["id"]
        for r in rows:
            zone = zones.get(r["account_id"], ZoneInfo("UTC"))
            day = _moment(r["created_at"]).astimezone(zone).date()
            total = totals[(r["account_id"], day, r["channel"], r["status"])]
            total[0] += 1
            total[1] += r["segments"]
            total[2] += r["cost"]
    for (account_id, day, channel, status), (messages, segments, credits) in sorted(
        totals.items()
    ):
        await engine.run_querystring(
            QueryString(
                "INSERT INTO usage_rollup "
                "(key, account_id, day, channel, status, messages, segments, credits) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
                f"{account_id}|{day.isoformat()}|{channel}|{status}",
                account_id,
                day,
                channel,
                status,
                messages,
                segments,
                credits,
            )
        )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(backfill)
    return manager
