"""Saved database states for the test fixtures: the `world` and `demo` data are built once
per session, saved, and put back before every test that asks for them.

SQLite: the whole file is copied with the backup API (into memory when saved, back into the
test file when restored; it writes through SQLite, so WAL and sqlite_sequence come along).
PostgreSQL: the non-empty tables are copied into a schema of their own; a restore deletes
every row of every table and copies the saved rows back, in one transaction with foreign-key
triggers off (as the data wipe does). Sequences keep counting up, so a test's new rows never
take a saved row's id.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.table import sort_table_classes

from tenants.access import resolved
from tenants.db import DB, database_url, is_sqlite, sqlite_path
from tenants.schema import all_tables

SCHEMA = "test_snapshots"


def _tablenames() -> list[str]:
    # Parents before children: the TRUNCATE fallback inserts with foreign-key checks on.
    return [t._meta.tablename for t in sort_table_classes(all_tables())]


class Snapshot:
    """One saved state of every domain table."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sqlite: sqlite3.Connection | None = None
        self._tables: list[str] = []  # PostgreSQL: the tables with rows

    async def save(self) -> None:
        if is_sqlite():
            memory = sqlite3.connect(":memory:")
            source = sqlite3.connect(sqlite_path(database_url()), timeout=30)
            try:
                source.backup(memory)
            finally:
                source.close()
            self._sqlite = memory
            return
        assert isinstance(DB, PostgresEngine)
        connection = await DB.get_new_connection()
        try:
            await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            names = _tablenames()
            # Table names come from our own table classes, never from input.
            probe = " UNION ALL ".join(
                f"SELECT '{n}' AS name WHERE EXISTS (SELECT 1 FROM {n})"  # noqa: S608
                for n in names
            )
            filled = {r["name"] for r in await connection.fetch(probe)}
            self._tables = [n for n in names if n in filled]
            for n in self._tables:
                copy = f"{SCHEMA}.{self.name}__{n}"
                await connection.execute(
                    f"DROP TABLE IF EXISTS {copy}; CREATE TABLE {copy} AS SELECT * FROM {n}"  # noqa: S608
                )
        finally:
            await connection.close()

    async def restore(self) -> None:
        seen = await resolved.read_version()
        await self._restore()
        await resolved.renew(seen)

    async def _restore(self) -> None:
        if self._sqlite is not None:
            target = sqlite3.connect(sqlite_path(database_url()), timeout=30)
            try:
                self._sqlite.backup(target)
            finally:
                target.close()
            return
        assert isinstance(DB, PostgresEngine)
        names = _tablenames()
        deletes = " ".join(f"DELETE FROM {n};" for n in names)  # noqa: S608
        inserts = " ".join(
            f"INSERT INTO {n} SELECT * FROM {SCHEMA}.{self.name}__{n};"  # noqa: S608
            for n in self._tables
        )
        connection: Any = await DB.get_new_connection()
        try:
            try:
                await connection.execute(
                    "BEGIN; SET LOCAL session_replication_role = replica; "
                    + deletes
                    + inserts
                    + " COMMIT;"
                )
            except Exception:
                # Turning the triggers off needs a superuser (see wipe_all_data); TRUNCATE
                # keeps the sequences, and parents go in before children.
                await connection.execute("ROLLBACK")
                await connection.execute(
                    f"BEGIN; TRUNCATE {', '.join(names)} CASCADE; {inserts} COMMIT;"
                )
        finally:
            await connection.close()


async def drop_saved() -> None:
    """Forget every snapshot kept in the database (PostgreSQL)."""
    if not is_sqlite():
        await DB.run_ddl(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
