"""The usage roll-ups: each status change of an outbound message moves its count, segments
and credits from the old status's row to the new one's, in the caller's transaction, in
usage_rollup (account, day, channel, status) and in usage_route_rollup (the same split
further by the recipient's country and the sender); usage_daily sums them per (account,
day) and usage_route_daily per (account, day, country, sender), so only an accept moves
those two.

A message belongs to the day it was accepted, in its account's time zone. Because a
change is recorded exactly when the status row moves (the UPDATE's own `WHERE status =`
decides it), a late, duplicate or reordered report that moves nothing moves no count,
and the roll-up always equals what a scan of the messages would say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime

from tenants.accounts.tree import timezones
from tenants.db import as_datetime, chunked, is_sqlite, placeholders, run_sql


@dataclass(frozen=True)
class StatusMove:
    """One outbound message entering `new` (from `old`, or just accepted when None); or
    `messages` of them made at one time, with their segments and cost summed."""

    account_id: int
    created_at: datetime
    channel: str
    segments: int
    cost: int
    old: str | None
    new: str
    messages: int = 1
    country: str = ""  # the recipient's ISO region (message.country)
    sender: str = ""  # the From number or sender ID recorded on the message
    batch_id: int | None = None  # moves the batch's progress counters too (batch_tally)


def moves_from_rows(rows: Iterable[dict], old: str, new: str) -> list[StatusMove]:
    """Moves of rows an UPDATE returned (account_id, created_at, channel, segments, cost)."""
    return [
        StatusMove(
            account_id=r["account_id"],
            created_at=as_datetime(r["created_at"]),  # type: ignore[arg-type]
            channel=r["channel"],
            segments=int(r["segments"]),
            cost=int(r["cost"]),
            old=old,
            new=new,
            country=r.get("country") or "",
            sender=r.get("from_number") or "",
            batch_id=r.get("batch_id"),
        )
        for r in rows
    ]


# The columns an UPDATE of message returns so its moves can be recorded.
RETURNING = "account_id, created_at, channel, segments, cost, country, from_number, batch_id"
# (account, day, channel, status, country, sender): the route roll-up's key; the first
# four are usage_rollup's.
_Key = tuple[int, date, str, str, str, str]
_COLUMNS = "key, account_id, day, channel, status, messages, segments, credits"
_DAILY_COLUMNS = "key, account_id, day, messages, segments, credits"
_ROUTE_DAILY_COLUMNS = "key, account_id, day, country, sender, messages, segments, credits"
_ROUTE_COLUMNS = (
    "key, account_id, day, channel, status, country, sender, messages, segments, credits"
)


# The moves of the open `at_end()` block, written when it ends (None: none is open).
_held: ContextVar[list[StatusMove] | None] = ContextVar("rollups_held", default=None)


@asynccontextmanager
async def at_end() -> AsyncIterator[None]:
    """The moves recorded in this block are written once, when it ends without an error:
    make it the last block of the transaction (and open no savepoint inside it).

    Every status change of a campaign adds to the same few roll-up and counter rows, so a
    transaction holds their locks from its upsert until it commits, and concurrent senders,
    report groups and accepted chunks queue behind it. Upserted last, they are held only
    for those statements and the COMMIT, and the moves of the block are merged into one
    upsert per table. A nested block leaves the writing to the outer one."""
    if _held.get() is not None:
        yield
        return
    token = _held.set([])
    try:
        yield
        moves = _held.get() or []
    finally:
        _held.reset(token)
    await record(moves)


async def record(moves: Sequence[StatusMove]) -> None:
    """Apply these moves to the four roll-ups, in the open transaction (at the end of the
    open `at_end()` block, when there is one).

    The rows are upserted in key order, one statement per 300 keys, one table after the
    other, so two transactions touching the same rows take their locks in the same order.
    """
    if not moves:
        return
    held = _held.get()
    if held is not None:
        held.extend(moves)
        return
    deltas = await _deltas(moves)
    coarse: dict[tuple[int, date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    daily: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    route_daily: dict[tuple[int, date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (a, d, c, s, country, sender), v in deltas.items():
        for total in (coarse[(a, d, c, s)], daily[(a, d)], route_daily[(a, d, country, sender)]):
            for n in range(3):
                total[n] += v[n]
    await _run_upserts(
        [
            *_upserts(
                "usage_daily",
                _DAILY_COLUMNS,
                [("|".join(map(str, k)), *k, *v) for k, v in daily.items() if any(v)],
            ),
            *_upserts(
                "usage_rollup",
                _COLUMNS,
                [("|".join(map(str, k)), *k, *v) for k, v in coarse.items() if any(v)],
            ),
            *_upserts(
                "usage_route_rollup",
                _ROUTE_COLUMNS,
                [("|".join(map(str, k)), *k, *v) for k, v in deltas.items() if any(v)],
            ),
            *_upserts(
                "usage_route_daily",
                _ROUTE_DAILY_COLUMNS,
                [("|".join(map(str, k)), *k, *v) for k, v in route_daily.items() if any(v)],
            ),
            *_tally_upserts(_batch_deltas(moves)),
        ]
    )


async def _deltas(moves: Sequence[StatusMove]) -> dict[_Key, list[int]]:
    """Messages, segments and credits each key gains (or loses) with these moves."""
    zones = await timezones([m.account_id for m in moves])
    deltas: dict[_Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for move in moves:
        day = move.created_at.astimezone(zones.get(move.account_id)).date()
        for status, sign in ((move.old, -1), (move.new, 1)):
            if status is None:
                continue
            delta = deltas[(move.account_id, day, move.channel, status, move.country, move.sender)]
            delta[0] += sign * move.messages
            delta[1] += sign * move.segments
            delta[2] += sign * move.cost
    return deltas


_Upsert = tuple[str, list[object]]  # one INSERT ... ON CONFLICT with its arguments
# Upserts of one transaction go to PostgreSQL as one statement while they take fewer
# arguments than this (the protocol allows 32,767).
ONE_STATEMENT_ARGUMENTS = 30_000


def _upserts(table: str, columns: str, rows: list[tuple[object, ...]]) -> list[_Upsert]:
    """Statements adding the rows' messages, segments and credits (their last three
    values) to `table`, 300 rows each, in ascending key order within a statement and
    the statements listed from the highest keys down: _run_upserts runs them in reverse,
    so the rows are taken in ascending key order whatever their number."""
    width = len(columns.split(","))
    out: list[_Upsert] = []
    for part in chunked(sorted(rows, key=lambda r: str(r[0])), 300):
        values = ", ".join(f"({placeholders(width)})" for _ in part)
        out.append(
            (
                f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608 (only constant names and placeholders are formatted in)
                "ON CONFLICT (key) DO UPDATE SET "
                f"messages = {table}.messages + excluded.messages, "
                f"segments = {table}.segments + excluded.segments, "
                f"credits = {table}.credits + excluded.credits",
                [value for row in part for value in row],
            )
        )
    return out[::-1]


async def _run_upserts(upserts: list[_Upsert]) -> None:
    """Run the upserts in order. On PostgreSQL they go as one statement (data-modifying
    WITH parts, the same order in every transaction): the rows they lock are the hottest
    of a campaign, and between two statements the lock waits for the client's next round
    trip (on a busy worker, its event loop), which every concurrent sender waits behind.

    Lock order: PostgreSQL runs such a statement's main part first, then its WITH parts
    from the last to the first (the unreferenced data-modifying parts are finished after
    the main query, in the reverse of the order they were planned in), so the tables are
    locked in the reverse of `upserts` (each table's statements are listed from its
    highest keys down, so its rows are taken in ascending key order). Upserts too many for
    one statement run one by one in that same reverse order, and on SQLite (one writer at
    a time) too, so no two transactions take the rows in opposite orders."""
    if (
        len(upserts) > 1
        and not is_sqlite()
        and (sum(len(args) for _, args in upserts) <= ONE_STATEMENT_ARGUMENTS)
    ):
        upserts = [_as_one(upserts)]
    else:
        upserts = upserts[::-1]
    for sql, args in upserts:
        await run_sql(sql, *args)


def _as_one(upserts: list[_Upsert]) -> _Upsert:
    *first, (last_sql, last_args) = upserts
    parts = ", ".join(f"u{n} AS ({sql})" for n, (sql, _) in enumerate(first))
    return f"WITH {parts} {last_sql}", [a for _, args in upserts for a in args]


async def record_batch_counts(moves: Sequence[StatusMove]) -> None:
    """Move the progress counters of the moves' batches (batch_tally `status:<s>`, with the
    messages' cost) in the open transaction; `enqueued` is derived, never stored. Keys are
    upserted in order, like the roll-up, so lock order is the same in every transaction."""
    await add_batch_counts(_batch_deltas(moves))


def _batch_deltas(moves: Sequence[StatusMove]) -> dict[tuple[int, str], tuple[int, int]]:
    deltas: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for move in moves:
        if move.batch_id is None:
            continue
        for status, sign in ((move.old, -1), (move.new, 1)):
            if status is None or status == "enqueued":
                continue
            delta = deltas[(move.batch_id, f"status:{status}")]
            delta[0] += sign * move.messages
            delta[1] += sign * move.cost
    return {key: (n, cost) for key, (n, cost) in deltas.items() if n or cost}


async def add_batch_counts(deltas: dict[tuple[int, str], tuple[int, int]]) -> None:
    """Add (messages, cost) to these (batch_id, counter name) rows of batch_tally."""
    await _run_upserts(_tally_upserts(deltas))


def _tally_upserts(deltas: dict[tuple[int, str], tuple[int, int]]) -> list[_Upsert]:
    rows = sorted((f"{b}|{name}", b, name, n, cost) for (b, name), (n, cost) in deltas.items())
    out: list[_Upsert] = []
    for part in chunked(rows, 300):
        values = ", ".join(f"({placeholders(5)})" for _ in part)
        out.append(
            (
                f"INSERT INTO batch_tally (key, batch_id, name, n, cost) VALUES {values} "  # noqa: S608 (only placeholders are formatted in)
                "ON CONFLICT (key) DO UPDATE SET n = batch_tally.n + excluded.n, "
                "cost = batch_tally.cost + excluded.cost",
                [value for row in part for value in row],
            )
        )
    return out[::-1]  # highest keys first, run last (see _upserts)
