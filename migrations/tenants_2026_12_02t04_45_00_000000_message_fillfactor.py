"""Room on each page of the message table for the next versions of its rows (fillfactor).

Every message is updated several times on its way out (claimed, its attempt counted,
sent, delivered). PostgreSQL writes an update of columns no index covers (the claim, the
attempt count, the provider's reference) as a heap-only tuple, with no entry in any of
the table's ten indexes (three of them trigram GIN), but only when the row's page has room
for the new version; rows bulk-written at fillfactor 100 leave none, so each of those
updates also wrote every index. 70 keeps 30% of each new page for them.

PostgreSQL only (a storage parameter; SQLite has none)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-12-02T04:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "message fillfactor 70: room for heap-only updates"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def set_fillfactor():
        engine = engine_finder()
        if isinstance(engine, SQLiteEngine):
            return
        await engine.run_ddl('ALTER TABLE "message" SET (fillfactor = 70)')

    async def reset_fillfactor():
        engine = engine_finder()
        if isinstance(engine, SQLiteEngine):
            return
        await engine.run_ddl('ALTER TABLE "message" RESET (fillfactor)')

    manager.add_raw(set_fillfactor)
    manager.add_raw_backwards(reset_fillfactor)
    return manager
