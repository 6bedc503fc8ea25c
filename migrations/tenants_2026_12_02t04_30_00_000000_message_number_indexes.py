"""The message search by a whole number: an account's messages to, and from, one number, in
id order, so a search for "0413 000 006" (read as +61413000006 in the account's region)
reads the index entries of that number alone, newest first, not every message of the
account tested with LIKE '%413000006%' (partial numbers still are).

SQLite appends the rowid (id) to every index, so (account_id, to_number) is already
(account_id, to_number, id); PostgreSQL names id."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-12-02T04:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "message (account_id, to_number, id) and (account_id, from_number, id) indexes"

SQLITE_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "message_account_to" ON "message" ("account_id", "to_number")',
    'CREATE INDEX IF NOT EXISTS "message_account_from" '
    'ON "message" ("account_id", "from_number")',
)
POSTGRES_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "message_account_to" '
    'ON "message" ("account_id", "to_number", "id")',
    'CREATE INDEX IF NOT EXISTS "message_account_from" '
    'ON "message" ("account_id", "from_number", "id")',
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        sqlite = isinstance(engine, SQLiteEngine)
        for statement in SQLITE_INDEXES if sqlite else POSTGRES_INDEXES:
            await engine.run_ddl(statement)

    async def drop_indexes():
        for name in ("message_account_to", "message_account_from"):
            await engine_finder().run_ddl(f'DROP INDEX IF EXISTS "{name}"')

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
