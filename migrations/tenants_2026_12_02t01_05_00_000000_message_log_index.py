"""The messages log's index: an account's messages by id, so the log's newest-first page and
each "older" page (a keyset on id) read an index range of the page's length, and its capped
count reads at most cap + 1 entries, however many messages the account holds.

PostgreSQL only: there the single-column account_id index left a sort of every match per
page view. SQLite's account_id index already holds (account_id, rowid), and id is the
rowid, so a second index would only slow every insert."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-12-02T01:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "message (account_id, id) index for the messages log"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def create_index():
        engine = engine_finder()
        if isinstance(engine, SQLiteEngine):
            return
        await engine.run_ddl(
            'CREATE INDEX IF NOT EXISTS "message_account_id_id" ON "message" ("account_id", "id")'
        )

    async def drop_index():
        await engine_finder().run_ddl('DROP INDEX IF EXISTS "message_account_id_id"')

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
