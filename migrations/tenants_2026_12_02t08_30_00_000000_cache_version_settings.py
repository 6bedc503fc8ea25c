"""More tables watched by the cache_version counter: the settings every send and every
inbound message reads (numbers, keywords and their actions, sender IDs, prices, wallet
settings, channel choices, integrations, consent words and replies, webhook
subscriptions, contact lists), and on PostgreSQL a TRUNCATE of any watched table (a
statement trigger on INSERT, UPDATE or DELETE does not fire for it; on SQLite a DELETE
without WHERE runs the row triggers). An inbound group reads the counter once and keeps
these reads across groups while it stands (tenants.memo, tenants.db.shared_read); a write
to any of them bumps it in its own transaction, so no process answers from an older
state.

None of these tables is written by sending or receiving itself (only by people changing
settings), so the counter stands still under traffic."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-12-02T08:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "cache_version triggers on the settings sends and inbound read"

WATCHED = (
    "phone_number",
    "keyword",
    "keyword_action",
    "sender_id",
    "price_rule",
    "wallet_settings",
    "channel_default",
    "provider_integration",
    "consent_keyword",
    "consent_reply",
    "webhook_subscription",
    "contact_list",
)
OPERATIONS = ("INSERT", "UPDATE", "DELETE")
# The earlier migration's watched tables, and account, get TRUNCATE triggers too. A copy
# of its list, not an import: Piccolo imports migrations as top-level modules, and a
# migration must not change when another one does.
EARLIER = (
    "user_session",
    "portal_user",
    "membership",
    "team",
    "team_member",
    "permission_override",
    "custom_role",
    "account_branding",
    "account",
)


def _sqlite_name(table: str, operation: str) -> str:
    return f"cache_version_{table}_{operation.lower()}"


def _create() -> tuple[list[str], list[str]]:
    """(SQLite statements, PostgreSQL statements); the PostgreSQL function
    cache_version_bump() is the earlier migration's."""
    bump = "BEGIN UPDATE cache_version SET n = n + 1 WHERE id = 1; END"
    sqlite = [
        f"CREATE TRIGGER {_sqlite_name(t, op)} AFTER {op} ON {t} {bump}"
        for t in WATCHED
        for op in OPERATIONS
    ]
    run = "FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump()"
    postgres = [
        f"CREATE TRIGGER cache_version_{t} AFTER INSERT OR UPDATE OR DELETE ON {t} {run}"
        for t in WATCHED
    ]
    postgres += [
        f"CREATE TRIGGER cache_version_{t}_truncate AFTER TRUNCATE ON {t} {run}"
        for t in (*WATCHED, *EARLIER)
    ]
    return sqlite, postgres


def _drop() -> tuple[list[str], list[str]]:
    sqlite = [f"DROP TRIGGER IF EXISTS {_sqlite_name(t, op)}" for t in WATCHED for op in OPERATIONS]
    postgres = [f"DROP TRIGGER IF EXISTS cache_version_{t} ON {t}" for t in WATCHED]
    postgres += [
        f"DROP TRIGGER IF EXISTS cache_version_{t}_truncate ON {t}" for t in (*WATCHED, *EARLIER)
    ]
    return sqlite, postgres


async def _run(statements: tuple[list[str], list[str]]) -> None:
    engine = engine_finder()
    sqlite, postgres = statements
    for statement in sqlite if isinstance(engine, SQLiteEngine) else postgres:
        await engine.run_ddl(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def create():
        await _run(_create())

    async def drop():
        await _run(_drop())

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
