"""batch_tally backfill: the counters of the batches written before it existed.

Data migration: one INSERT ... SELECT through the migration's engine, no tenants imports.
Every message of a batch not in `enqueued` counts in `status:<status>` with its cost
(`enqueued` is what the batch accepted less the others). Skipped recipients of those
batches stay in their batch row's skipped_json, where the pages read them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-02T00:59:07:000000"
VERSION = "1.38.0"
DESCRIPTION = "batch_tally: count the messages of the batches written before it existed"


async def backfill():
    await engine_finder().run_querystring(
        QueryString(
            "INSERT INTO batch_tally (key, batch_id, name, n, cost) "
            "SELECT CAST(batch_id AS VARCHAR) || '|status:' || status, batch_id, "
            "'status:' || status, COUNT(*), COALESCE(SUM(cost), 0) FROM message "
            "WHERE batch_id IS NOT NULL AND direction = 'out' AND status != 'enqueued' "
            "GROUP BY batch_id, status"
        )
    )


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)
    manager.add_raw(backfill)
    return manager
