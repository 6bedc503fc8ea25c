"""The usage roll-up: each status change of an outbound message moves its count, segments
and credits from the old status's row to the new one's, in the caller's transaction.

A message belongs to the day it was accepted, in its account's time zone. Because a
change is recorded exactly when the status row moves (the UPDATE's own `WHERE status =`
decides it), a late, duplicate or reordered report that moves nothing moves no count,
and the roll-up always equals what a scan of the messages would say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from tenants.accounts.tree import timezones
from tenants.db import as_datetime, chunked, placeholders, run_sql


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
            batch_id=r.get("batch_id"),
        )
        for r in rows
    ]


# The columns an UPDATE of message returns so its moves can be recorded.
RETURNING = "account_id, created_at, channel, segments, cost, batch_id"
_Key = tuple[int, date, str, str]
_COLUMNS = "key, account_id, day, channel, status, messages, segments, credits"


async def record(moves: Sequence[StatusMove]) -> None:
    """Apply these moves to the roll-up, in the open transaction.

    The rows are upserted in key order, one statement per 300 keys, so two transactions
    touching the same rows take their locks in the same order.
    """
    if not moves:
        return
    zones = await timezones([m.account_id for m in moves])
    deltas: dict[_Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for move in moves:
        zone = zones.get(move.account_id)
        day = move.created_at.astimezone(zone).date()
        for status, sign in ((move.old, -1), (move.new, 1)):
            if status is None:
                continue
            delta = deltas[(move.account_id, day, move.channel, status)]
            delta[0] += sign * move.messages
            delta[1] += sign * move.segments
            delta[2] += sign * move.cost
    rows = sorted(
        (f"{a}|{d.isoformat()}|{c}|{s}", a, d, c, s, *v)
        for (a, d, c, s), v in deltas.items()
        if any(v)
    )
    for part in chunked(rows, 300):
        values = ", ".join(f"({placeholders(8)})" for _ in part)
        await run_sql(
            f"INSERT INTO usage_rollup ({_COLUMNS}) VALUES {values} "  # noqa: S608 (only placeholders are formatted in)
            "ON CONFLICT (key) DO UPDATE SET "
            "messages = usage_rollup.messages + excluded.messages, "
            "segments = usage_rollup.segments + excluded.segments, "
            "credits = usage_rollup.credits + excluded.credits",
            *(value for row in part for value in row),
        )
    await record_batch_counts(moves)


async def record_batch_counts(moves: Sequence[StatusMove]) -> None:
    """Move the progress counters of the moves' batches (batch_tally `status:<s>`, with the
    messages' cost) in the open transaction; `enqueued` is derived, never stored. Keys are
    upserted in order, like the roll-up, so lock order is the same in every transaction."""
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
    await add_batch_counts({key: (n, cost) for key, (n, cost) in deltas.items() if n or cost})


async def add_batch_counts(deltas: dict[tuple[int, str], tuple[int, int]]) -> None:
    """Add (messages, cost) to these (batch_id, counter name) rows of batch_tally."""
    rows = sorted((f"{b}|{name}", b, name, n, cost) for (b, name), (n, cost) in deltas.items())
    for part in chunked(rows, 300):
        values = ", ".join(f"({placeholders(5)})" for _ in part)
        await run_sql(
            f"INSERT INTO batch_tally (key, batch_id, name, n, cost) VALUES {values} "  # noqa: S608 (only placeholders are formatted in)
            "ON CONFLICT (key) DO UPDATE SET n = batch_tally.n + excluded.n, "
            "cost = batch_tally.cost + excluded.cost",
            *(value for row in part for value in row),
        )
