"""What a signed-in request resolves before its page (the session, the person, the grants,
the branding chain, the account switcher), kept per process while the database's
cache_version counter stands still.

Triggers bump the counter in the same transaction as any write to those tables (an
account's balance aside), so a request that reads the counter first and finds the value
its memo was filled under sees exactly what it would have read: one cheap statement
instead of six, with invalidation that holds across every `portal serve` process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from tenants.db import run_sql

T = TypeVar("T")
MAX_ENTRIES = 20_000

_memo: dict[Hashable, Any] = {}
_held: list[int] = [0]  # the counter the memo was filled under


async def read_version() -> int | None:
    """The counter now (None when its row is missing: nothing is then remembered)."""
    rows = await run_sql("SELECT n FROM cache_version WHERE id = 1")
    return int(rows[0]["n"]) if rows else None


async def remembered(version: int | None, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`load()`'s answer, from the memo when it was filled under `version`. A request that
    read an older counter than the memo's loads afresh and keeps nothing."""
    if version is None or version < _held[0]:
        return await load()
    if version > _held[0]:
        _memo.clear()
        _held[0] = version
    if key in _memo:
        return _memo[key]  # type: ignore[no-any-return]
    value = await load()
    if _held[0] == version:
        if len(_memo) >= MAX_ENTRIES:
            _memo.clear()
        _memo[key] = value
    return value


def forget() -> None:
    """Drop everything remembered (the test harness after wiping the database)."""
    _memo.clear()
    _held[0] = 0


async def renew(seen: int | None) -> None:
    """After the database went back to an older state (a test's snapshot restored): set
    the counter past `seen` (read before) and past itself, so no process answers from
    what it kept of another state, and drop this process's memo."""
    floor = seen or 0
    await run_sql(
        "UPDATE cache_version SET n = CASE WHEN n > {} THEN n ELSE {} END + 1 WHERE id = 1",
        floor,
        floor,
    )
    forget()
