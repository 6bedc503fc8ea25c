"""Database engine selection (SQLite by default, PostgreSQL by URL) and transactions."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import json
import random
import re
import sqlite3
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import aiosqlite
import asyncpg
from piccolo.columns import Column
from piccolo.columns.combination import Combinable, WhereRaw
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
from piccolo.querystring import QueryString
from piccolo.table import Table

from tenants import memo
from tenants.errors import NotFound
from tenants.settings import get_settings

QUEUE_TIMEOUT_SECONDS = 30.0


def database_url() -> str:
    """The configured database URL (DATABASE_URL)."""
    return get_settings().database.url


def sqlite_path(url: str) -> str:
    """Absolute file path of a sqlite:/// URL (relative paths resolve against the cwd)."""
    raw = url.split("sqlite:///", 1)[1] if url.startswith("sqlite:///") else url[len("sqlite:") :]
    return str(Path(raw).expanduser().resolve())


_write_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _write_queue() -> asyncio.Lock:
    """One FIFO queue of writers per event loop. SQLite's busy handler is not fair: with
    dozens of writers in one process some starve past the busy timeout ("database is
    locked"); queueing them here first hands the write lock over in order."""
    loop = asyncio.get_running_loop()
    lock = _write_queues.get(loop)
    if lock is None:
        lock = _write_queues[loop] = asyncio.Lock()
    return lock


AfterCommit = Callable[[], Awaitable[object] | object]


async def _run_after_commit(transaction: object) -> None:
    """Work registered on an outermost transaction, run once it has committed."""
    pending: dict[str, AfterCommit] = getattr(transaction, "after_commit_work", None) or {}
    for work in pending.values():
        result = work()
        if inspect.isawaitable(result):
            await result


class _SafeSQLiteTransaction(SQLiteTransaction):
    """Closes its connection when BEGIN fails (Piccolo would leak it and hang at exit), and
    waits its turn in the process's writer queue before taking SQLite's write lock."""

    _queue: asyncio.Lock | None = None

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        # Connect before queueing: only BEGIN..COMMIT needs to wait its turn.
        self.connection = await self.get_connection()
        lock = _write_queue()
        acquired = False
        try:
            try:
                await asyncio.wait_for(lock.acquire(), timeout=QUEUE_TIMEOUT_SECONDS)
                acquired = True
            except TimeoutError:
                # Never wait forever (a writer waiting on another in the same task would):
                # fall back to SQLite's own busy timeout.
                pass
            await self.begin()
        except BaseException:
            if acquired:
                lock.release()
            await self.connection.close()
            raise
        self._queue = lock if acquired else None
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        broken = True
        try:
            # Piccolo's exit, except that the connection goes back to the engine's idle
            # ones instead of being closed.
            if exception is not None and not self._rolled_back:
                await self.rollback()
            elif exception is None and not self._committed and not self._rolled_back:
                await self.commit()
            broken = False
        finally:
            await self.engine.release_connection(self.connection, broken=broken)  # type: ignore[attr-defined]
            self.engine.current_transaction.reset(self.context)
            if self._queue is not None:
                self._queue.release()
                self._queue = None
        if exception is None:
            await _run_after_commit(self)
        return exception is None


class _PortalPostgresTransaction(PostgresTransaction):
    """Runs the work registered with after_commit() once the outermost one commits."""

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        committed = await super().__aexit__(exception_type, exception, traceback)
        if committed and self._parent is None:
            await _run_after_commit(self)
        return committed


class PortalSQLiteEngine(SQLiteEngine):
    """SQLite tuned for concurrent writers: WAL, 30 s busy timeout, IMMEDIATE transactions,
    and long-lived connections.

    Deferred read-then-write transactions fail with "database is locked" whatever the
    timeout, so every transaction takes the write lock up front. Piccolo opens a connection
    (and its thread) for every query and transaction, ~2 ms each: idle connections are kept
    and handed out again instead (`MAX_IDLE` of them; more are opened when all are busy).
    """

    MAX_IDLE = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A plain list, not an asyncio queue: connections are not bound to one event loop
        # (aiosqlite answers each call on the loop that made it), and list.pop/append
        # are atomic across the web and worker threads.
        self._idle: list[Any] = []

    async def get_connection(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        connection = aiosqlite.Connection(
            partial(sqlite3.connect, **self.connection_kwargs), iter_chunk_size=64
        )
        # A daemon thread: an idle connection kept here never holds the process at exit
        # (it holds no transaction; WAL keeps the file whole whatever happens).
        connection._thread.daemon = True
        await connection
        connection.row_factory = dict_factory  # type: ignore[assignment]
        await connection.execute("PRAGMA foreign_keys = 1")
        await connection.execute("PRAGMA busy_timeout = 30000")
        await connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    async def release_connection(self, connection: Any, *, broken: bool = False) -> None:
        """Keep a connection for the next query, unless it is broken or enough are idle."""
        if broken or connection.in_transaction or len(self._idle) >= self.MAX_IDLE:
            await connection.close()
        else:
            self._idle.append(connection)

    async def close_idle_connections(self) -> None:
        """Close every kept connection (before the database file is replaced or removed)."""
        while self._idle:
            await self._idle.pop().close()

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: type[Table] | None = None,
    ) -> Any:
        connection = await self.get_connection()
        broken = True
        try:
            # One round trip to the connection's thread for the statement and its rows
            # (execute, fetchall and close would be three).
            rows = await connection.execute_fetchall(query, args or [])
            # A read opened no transaction: nothing to commit (and no thread hop).
            if connection.in_transaction:
                await connection.commit()
            broken = False
            return rows
        finally:
            if broken and connection.in_transaction:
                await connection.rollback()
            await self.release_connection(connection, broken=broken)

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: type[Table] | None = None,
    ) -> Any:
        # Piccolo sends "PRAGMA foreign_keys = 1" before every statement of a transaction
        # (a round trip to the connection's thread each); ours set it once, at connect.
        # The statement and its rows in one round trip (not execute, fetchall and close).
        return await connection.execute_fetchall(query, args or [])

    def transaction(  # type: ignore[override]
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ) -> SQLiteTransaction:
        return _SafeSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )


class PortalPostgresEngine(PostgresEngine):
    """PostgreSQL with one asyncpg pool per event loop.

    An asyncpg pool belongs to the loop that made it; the web server and each Dramatiq
    worker run their own loops, so each gets its own pool and never borrows another's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pools: dict[asyncio.AbstractEventLoop, Any] = {}
        super().__init__(*args, **kwargs)

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return _PortalPostgresTransaction(engine=self, allow_nested=allow_nested)

    @property  # type: ignore[override]
    def pool(self) -> Any:
        try:
            return self._pools.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    @pool.setter
    def pool(self, value: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if value is None:
                return
            raise
        if value is None:
            self._pools.pop(loop, None)
        else:
            self._pools[loop] = value


def make_engine(url: str) -> Engine:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = sqlite_path(url)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return PortalSQLiteEngine(path=path, timeout=30)
    if scheme in ("postgres", "postgresql"):
        dsn = url.replace("postgres://", "postgresql://", 1)
        return PortalPostgresEngine(config={"dsn": dsn})
    raise ValueError(
        f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)"
    )


# Read at import, the one exception to "settings at call time": Piccolo finds its engine as
# the module attribute tenants.piccolo_conf.DB, so the engine object must exist when the
# tables are imported (tests set DATABASE_URL before importing anything of tenants).
DB: Engine = make_engine(database_url())
T = TypeVar("T")


def is_sqlite() -> bool:
    return isinstance(DB, SQLiteEngine)


def transaction() -> Any:
    """One user action = one transaction (IMMEDIATE on SQLite); nests into an open one."""
    return DB.transaction()


# Text that may be stored: PostgreSQL cannot store a NUL at all, and the other C0 control
# characters (and DEL) only hide what a text says; line breaks and tabs are text.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

DEADLOCK_ATTEMPTS = 3


def is_deadlock(exc: BaseException) -> bool:
    """PostgreSQL aborted this transaction to break a deadlock (or a serialization clash)."""
    return isinstance(
        exc, asyncpg.exceptions.DeadlockDetectedError | asyncpg.exceptions.SerializationError
    )


async def retrying_deadlocks(work: Callable[[], Awaitable[T]]) -> T:
    """Run a transaction again when PostgreSQL chose it as a deadlock's victim: it was
    rolled back whole (its after-commit work dropped with it), so running it again is
    safe. Inside an open transaction the outer one decides, so nothing is retried there."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return await work()
        except Exception as exc:
            if attempt == DEADLOCK_ATTEMPTS or not is_deadlock(exc):
                raise
            if DB.current_transaction.get() is not None:
                raise
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


async def after_commit(key: str, work: AfterCommit) -> None:
    """Run `work` once the open transaction commits, or now when none is open; a rollback
    drops it. Work under one key runs once per transaction (the last registered wins)."""
    current = DB.current_transaction.get()
    if current is None:
        result = work()
        if inspect.isawaitable(result):
            await result
        return
    pending: dict[str, AfterCommit] | None = getattr(current, "after_commit_work", None)
    if pending is None:
        pending = {}
        current.after_commit_work = pending  # type: ignore[union-attr]
    pending[key] = work


async def enable_wal() -> None:
    """WAL lets readers run beside the one writer; the mode is stored in the file."""
    if is_sqlite():
        await DB.run_ddl("PRAGMA journal_mode = WAL")


async def _keep_session(connection: Any) -> None:
    """A pooled connection's reset on release: nothing beyond asyncpg's own rollback of an
    open transaction. Its default runs one more statement per query (advisory unlock,
    CLOSE ALL, UNLISTEN, RESET ALL: a second round trip) to undo session state the portal
    never leaves behind: no session advisory locks, LISTEN, cursors outside a transaction
    or session-level SET (settings are SET LOCAL, inside a transaction)."""


async def start_pool() -> None:
    """Open a connection pool for the running event loop (PostgreSQL only)."""
    if isinstance(DB, PostgresEngine) and DB.pool is None:
        await DB.start_connection_pool(
            min_size=1, max_size=get_settings().database.pool_size, reset=_keep_session
        )


async def close_pool() -> None:
    if isinstance(DB, PostgresEngine) and DB.pool is not None:
        await DB.close_connection_pool()


@asynccontextmanager
async def pool():  # type: ignore[no-untyped-def]
    """Run a block with a connection pool (PostgreSQL only; per event loop)."""
    if isinstance(DB, PostgresEngine) and DB.pool is None:
        await DB.start_connection_pool()
        try:
            yield
        finally:
            await DB.close_connection_pool()
    else:
        yield


@lru_cache(maxsize=512)
def _native_sql(template: str, postgres: bool) -> str:
    pieces = template.split("{}")
    if postgres:
        return "".join(f"{piece}${n}" for n, piece in enumerate(pieces[:-1], start=1)) + pieces[-1]
    return "?".join(pieces)


async def run_sql(template: str, *args: Any) -> list[dict[str, Any]]:
    """Run SQL with `{}` placeholders (never f-strings of input); joins the open transaction.

    The outbox runs these statements with hundreds of arguments for every chunk, so they
    go to the driver directly: Piccolo's QueryString costs more CPU than the query.
    """
    current = DB.current_transaction.get()
    if isinstance(DB, PostgresEngine):
        sql = _native_sql(template, True)
        if current is not None:
            return [dict(r) for r in await current.connection.fetch(sql, *args)]
        if DB.pool is not None:
            async with DB.pool.acquire() as connection:
                return [dict(r) for r in await connection.fetch(sql, *args)]
    elif current is not None:
        # One round trip to the connection's thread (not execute, fetchall and close).
        rows = await current.connection.execute_fetchall(_native_sql(template, False), args)
        return [dict(r) for r in rows]
    return await DB.run_querystring(QueryString(template, *args))  # type: ignore[no-any-return]


async def next_ids(table: str, count: int) -> list[int]:
    """`count` fresh ids for rows of `table` written by copy_rows() in the open transaction:
    drawn from the PostgreSQL sequence in one statement; on SQLite the ones after the
    highest given so far, safe because the (IMMEDIATE) transaction holds the write lock."""
    if count <= 0:
        return []
    current = DB.current_transaction.get()
    if current is None:
        raise RuntimeError("next_ids needs an open transaction")
    if is_sqlite():
        rows = await run_sql(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = {}), 0), "  # noqa: S608 (a table name of the code, never input)
            f"COALESCE((SELECT MAX(id) FROM {table}), 0)) AS top",
            table,
        )
        top = int(rows[0]["top"])
        return list(range(top + 1, top + 1 + count))
    # The sequence is named once per table: pg_get_serial_sequence() in the statement would
    # be evaluated for every row drawn (a catalogue look-up each, ~15 µs). The ids come back
    # as one array, not one record per id.
    sequence = _sequences.get(table)
    if sequence is None:
        found = await run_sql("SELECT pg_get_serial_sequence({}, 'id') AS name", table)
        sequence = _sequences[table] = str(found[0]["name"])
    rows = await run_sql(
        "SELECT array_agg(nextval({}::regclass)) AS ids FROM generate_series(1, {})",
        sequence,
        count,
    )
    return list(rows[0]["ids"])


_sequences: dict[str, str] = {}  # table -> its id sequence (they never change while running)


def bulk_value(value: Any) -> Any:
    """`value` as copy_rows() writes it, converted once: on SQLite the text Piccolo's adapter
    would make of a datetime (so a value shared by every row is not adapted per row)."""
    if is_sqlite() and isinstance(value, datetime):
        adapter = sqlite3.adapters.get((datetime, sqlite3.PrepareProtocol))
        return adapter(value) if adapter else value
    return value


SMALL_COPY = 64  # copy_rows on PostgreSQL: up to this many rows as an executemany, then COPY


async def copy_rows(table: str, columns: Sequence[str], records: Sequence[Sequence[Any]]) -> None:
    """Write many rows in the open transaction at the driver's bulk speed: COPY (binary, values
    of the columns' own types) on PostgreSQL, executemany of one prepared INSERT on SQLite."""
    current = DB.current_transaction.get()
    if current is None:
        raise RuntimeError("copy_rows needs an open transaction")
    if is_sqlite():
        await current.connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (names of the code, never input)
            f"VALUES ({', '.join('?' * len(columns))})",
            records,
        )
        return
    if len(records) <= SMALL_COPY:
        # A few rows: one prepared INSERT bound per row in one round trip costs less than
        # COPY's start and finish.
        await current.connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (names of the code, never input)
            f"VALUES ({', '.join(f'${n}' for n in range(1, len(columns) + 1))})",
            records,
        )
        return
    await current.connection.copy_records_to_table(
        table, records=list(records), columns=list(columns)
    )


def join_array(column: str) -> str:
    """A join of `column` with one array argument of values (array_argument): unnest on
    PostgreSQL, a JSON array through json_each on SQLite. One statement however many
    values, no long IN list to build, send and plan."""
    if is_sqlite():
        return f"JOIN json_each({{}}) AS wanted ON wanted.value = {column}"
    return f"JOIN unnest({{}}::text[]) AS wanted(value) ON wanted.value = {column}"


def array_argument(values: Sequence[str]) -> object:
    """The one argument join_array() takes for these values."""
    return json.dumps(list(values)) if is_sqlite() else list(values)


def like_escape(text: str) -> str:
    """`text` as a literal inside a LIKE pattern with ESCAPE '\\': its % and _ match
    themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(column: Any, text: str) -> Any:
    """`column` contains `text` literally (a % or _ in it is no wildcard), ignoring case:
    ILIKE on PostgreSQL, LIKE on SQLite (whose LIKE already ignores ASCII case)."""
    operator = "LIKE" if is_sqlite() else "ILIKE"
    name = column._meta.db_column_name
    return WhereRaw(f"\"{name}\" {operator} {{}} ESCAPE '\\'", f"%{like_escape(text)}%")


def placeholders(count: int) -> str:
    return ", ".join(["{}"] * count)


def filter_only(condition: str) -> str:
    """`condition` as a filter no index answers, for statements that find their rows by
    primary key (`id IN (...)`) and only check something else of them (a status).

    Without current statistics (a campaign just wrote a million rows; autovacuum not there
    yet, or off) PostgreSQL takes `status = 'enqueued'` as rare and ANDs a bitmap of the
    whole status index with the ids': 100-200 ms for 100 rows, growing with the table, where
    the primary key alone takes 1 ms. `(...) IS TRUE` keeps the rows the condition keeps (a
    NULL is not TRUE) and is no index condition, on SQLite either."""
    return f"({condition}) IS TRUE"


def as_datetime(value: Any) -> datetime | None:
    """Timestamps from raw queries: datetimes on PostgreSQL, text on SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive slices of at most `size` items (statements with bounded argument lists)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def is_unique_violation(exc: BaseException) -> bool:
    """A unique index refused the row (SQLite or PostgreSQL), told by the exception's type."""
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return True
    # sqlite3 has one IntegrityError for every constraint; its error name says which.
    return isinstance(exc, sqlite3.IntegrityError) and (
        getattr(exc, "sqlite_errorname", "")
        in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    )


V = TypeVar("V")


def view_of(cls: type[V], row: Mapping[str, Any], **computed: Any) -> V:
    """A view dataclass from a selected row: each field from the row's column of the same
    name, unless `computed` gives it (a field with a default may be absent from the row)."""
    values = {
        f.name: row[f.name]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in computed
        and (
            f.name in row
            or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        )
    }
    return cls(**values, **computed)


async def flag(column: Column, where: Combinable) -> bool:
    """One yes/no setting: `column` of the row matching `where`, False when there is none."""
    row = await column._meta.table.select(column).where(where).first()
    return bool(row and row[column._meta.name])


async def first_or_404(query: Any, message: str) -> dict[str, Any]:
    """The first row `query` selects; NotFound(`message`) when it selects none."""
    row: dict[str, Any] | None = await query.first()
    if row is None:
        raise NotFound(message)
    return row


@asynccontextmanager
async def savepoint() -> AsyncIterator[None]:
    """A part of the open transaction that an exception undoes alone (its after-commit work
    with it) before it propagates; without an open transaction, a transaction of its own."""
    current = DB.current_transaction.get()
    if current is None:
        async with transaction():
            yield
        return
    kept = dict(getattr(current, "after_commit_work", None) or {})
    point = await current.savepoint()
    try:
        yield
    except BaseException:
        await point.rollback_to()
        current.after_commit_work = kept
        raise
    await point.release()


# Reads that a unit of work (an inbound group's transaction) makes again and again and
# never changes itself: the platform's accounts, time zones, channel choices.
@dataclasses.dataclass
class _SharedReads:
    memo: dict[Hashable, Any]
    version: int | None  # the cache_version counter the block read first, if it did


_shared: contextvars.ContextVar[_SharedReads | None] = contextvars.ContextVar(
    "shared_reads", default=None
)


@contextmanager
def reads_shared(version: int | None = None) -> Iterator[None]:
    """Within the block, each read made through shared_read() is made once. Only for work
    that writes none of what those reads read (an inbound group: messages, routes,
    consent, contacts, credits, never an account's kind or time zone or its channel
    choices). With `version` (the cache_version counter, read at the block's start),
    settled reads are also kept across blocks in this process while the counter stands
    (tenants.memo)."""
    token = _shared.set(_SharedReads({}, version))
    try:
        yield
    finally:
        _shared.reset(token)


def reads_settled() -> bool:
    """Whether settled reads are kept across blocks here (a reads_shared() block that read
    the cache_version counter): a read may then load a whole small set once (a number's
    keyword registry) rather than the one row it needs each time."""
    block = _shared.get()
    return block is not None and block.version is not None


async def shared_read(
    key: Hashable, load: Callable[[], Awaitable[T]], *, settled: bool = False
) -> T:
    """`load()`'s answer, once per reads_shared() block (every time outside one).
    `settled`: every table the read reads is watched by the cache_version triggers (and
    the answer is never changed in place), so a block that read the counter keeps it
    across blocks while the counter stands."""
    block = _shared.get()
    if block is None:
        return await load()
    if key not in block.memo:
        if settled and block.version is not None:
            block.memo[key] = await memo.remembered(block.version, ("shared", key), load)
        else:
            block.memo[key] = await load()
    return block.memo[key]  # type: ignore[no-any-return]
