"""Schema lifecycle: apply the migrations in ../migrations, and wipe data (demo --reset, tests)."""

from __future__ import annotations

import contextlib
import io

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from tenants.access import resolved
from tenants.access.tables import CacheVersion
from tenants.db import DB, enable_wal, is_sqlite, transaction
from tenants.piccolo_app import APP_CONFIG


async def migrate(*, quiet: bool = True) -> None:
    await enable_wal()
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        result = await run_forwards(app_name="tenants")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}\n{out.getvalue()}")


BUMP = "UPDATE cache_version SET n = n + 1 WHERE id = 1"


def all_tables() -> list[type[Table]]:
    return list(APP_CONFIG.table_classes)


async def wipe_all_data() -> None:
    """Delete every row of every domain table in one transaction (keeps the schema). The
    cache_version counter is kept and bumped, so no process answers from its memo."""
    tables = [t for t in all_tables() if t is not CacheVersion]
    names = ", ".join(t._meta.tablename for t in tables)
    if is_sqlite():
        async with transaction():
            await DB.run_ddl("PRAGMA defer_foreign_keys = ON")
            for table in tables:
                # Table names come from our own table classes, never from input.
                await DB.run_ddl(f"DELETE FROM {table._meta.tablename}")  # noqa: S608
            with contextlib.suppress(Exception):
                await DB.run_ddl("DELETE FROM sqlite_sequence WHERE name != 'cache_version'")
            await DB.run_ddl(BUMP)
    elif isinstance(DB, PostgresEngine):
        # DELETE with foreign-key triggers off takes milliseconds where TRUNCATE of ~60
        # tables takes a second or more (it matters per test); it needs a superuser, so
        # anyone else gets the TRUNCATE.
        connection = await DB.get_new_connection()
        try:
            deletes = " ".join(f"DELETE FROM {t._meta.tablename};" for t in tables)  # noqa: S608
            await connection.execute(
                "BEGIN; SET LOCAL session_replication_role = replica; "
                + deletes
                + f" {BUMP}; COMMIT;"
            )
        except Exception:
            await connection.execute("ROLLBACK")
            await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            await connection.execute(BUMP)
        finally:
            await connection.close()
    resolved.forget()
