"""Written by hand, right after the baseline:
- composite unique keys of the access tables (Piccolo's ADD CONSTRAINT does not run on
  SQLite, while a unique index works on both databases);
- on SQLite, ids are never reused: every table's integer primary key becomes AUTOINCREMENT
  (without it SQLite hands a deleted row's id to the next row, so an audit row or a report
  that keeps an id could point at another tenant's row). PostgreSQL sequences never reuse.
  The tables are empty here (this runs right after the baseline creates them), so each is
  dropped and created again from its own statement with AUTOINCREMENT added; Piccolo's own
  migration table is left as it is."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-12-01T19:01:31:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique indexes; SQLite ids never reused"

UNIQUE_INDEXES = (
    ("custom_role_account_name_uq", "custom_role", ("account", "name")),
    ("team_account_name_uq", "team", ("account", "name")),
    ("team_member_team_user_uq", "team_member", ("team", "user")),
    ("permission_override_uq", "permission_override", ("user", "account", "permission")),
    ("sso_identity_provider_subject_uq", "sso_identity", ("provider", "subject")),
)
SERIAL_KEY = '"id" INTEGER PRIMARY KEY NOT NULL'


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for name, table, columns in UNIQUE_INDEXES:
            cols = ", ".join(f'"{c}"' for c in columns)
            await engine.run_ddl(f'CREATE UNIQUE INDEX "{name}" ON "{table}" ({cols})')

    async def drop_indexes():
        engine = engine_finder()
        for name, _, _ in UNIQUE_INDEXES:
            await engine.run_ddl(f'DROP INDEX IF EXISTS "{name}"')

    async def sqlite_autoincrement():
        engine = engine_finder()
        if not isinstance(engine, SQLiteEngine):
            return
        tables = await engine.run_ddl(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name != 'migration' AND instr(sql, '" + SERIAL_KEY + "') > 0 ORDER BY rowid"
        )
        names = {table["name"] for table in tables}
        indexes = [
            index
            for index in await engine.run_ddl(
                "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' "
                "AND sql IS NOT NULL ORDER BY rowid"
            )
            if index["tbl_name"] in names
        ]
        for table in tables:
            rows = await engine.run_ddl(f'SELECT count(*) AS n FROM "{table["name"]}"')
            if rows[0]["n"]:
                raise RuntimeError(f"{table['name']} is not empty; this runs on a new database")
        for table in reversed(tables):
            await engine.run_ddl(f'DROP TABLE "{table["name"]}"')
        for table in tables:
            await engine.run_ddl(
                table["sql"].replace(SERIAL_KEY, '"id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL')
            )
        for index in indexes:
            await engine.run_ddl(index["sql"])

    manager.add_raw(sqlite_autoincrement)
    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
