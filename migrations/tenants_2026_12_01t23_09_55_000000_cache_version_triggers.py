"""The triggers that bump cache_version (the previous migration's table) on every write
that changes who may do what or how a page looks: one counter each `portal serve` process
reads once per request (tenants/access/resolved.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-12-01T23:09:55:000000"
VERSION = "1.38.0"
DESCRIPTION = "cache_version triggers"

# Every write here changes who may do what, or how a page looks; an account's balance
# changes with every send and is left out (pages read it fresh).
WATCHED = (
    "user_session",
    "portal_user",
    "membership",
    "team",
    "team_member",
    "permission_override",
    "custom_role",
    "account_branding",
)
ACCOUNT_COLUMNS = (
    "name, slug, kind, parent, path, depth, status, consent_mode, timezone, default_region"
)
PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION cache_version_bump() RETURNS trigger AS $$ "
    "BEGIN UPDATE cache_version SET n = n + 1 WHERE id = 1; RETURN NULL; END $$ "
    "LANGUAGE plpgsql"
)


def _sqlite_triggers() -> list[str]:
    bump = "BEGIN UPDATE cache_version SET n = n + 1 WHERE id = 1; END"
    events = [(t, op, op) for t in WATCHED for op in ("INSERT", "UPDATE", "DELETE")]
    events += [
        ("account", "INSERT", "INSERT"),
        ("account", "DELETE", "DELETE"),
        ("account", "UPDATE", f"UPDATE OF {ACCOUNT_COLUMNS}"),
    ]
    return [
        f"CREATE TRIGGER cache_version_{table}_{name.lower()} AFTER {event} ON {table} {bump}"
        for table, name, event in events
    ]


def _postgres_triggers() -> list[str]:
    run = "FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump()"
    statements = [PG_FUNCTION]
    statements += [
        f"CREATE TRIGGER cache_version_{t} AFTER INSERT OR UPDATE OR DELETE ON {t} {run}"
        for t in WATCHED
    ]
    statements.append(
        "CREATE TRIGGER cache_version_account AFTER INSERT OR DELETE OR "
        f"UPDATE OF {ACCOUNT_COLUMNS} ON account {run}"
    )
    return statements


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def triggers():
        engine = engine_finder()
        await engine.run_ddl("INSERT INTO cache_version (id, n) VALUES (1, 1)")
        sqlite = isinstance(engine, SQLiteEngine)
        for statement in _sqlite_triggers() if sqlite else _postgres_triggers():
            await engine.run_ddl(statement)

    manager.add_raw(triggers)
    return manager
