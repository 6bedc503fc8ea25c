"""A per-process memo kept while the database's cache_version counter stands.

Triggers bump the counter in the same transaction as any write to the tables whose reads
are remembered here (who may do what, how a page looks, and the settings every send and
inbound message reads: accounts, numbers, keywords, sender IDs, prices, wallet settings,
channel choices, integrations, consent words and replies, webhook subscriptions, contact
lists; an account's balance aside). A unit of work that reads the counter first and finds
the value the memo was filled under sees exactly what it would have read, with
invalidation that holds across every `portal serve` and `portal worker` process.

This module imports nothing of the database layer (tenants.db uses it);
tenants.access.resolved reads and renews the counter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 20_000

_memo: dict[Hashable, Any] = {}
_held: list[int] = [0]  # the counter the memo was filled under


async def remembered(version: int | None, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`load()`'s answer, from the memo when it was filled under `version`. A caller that
    read an older counter than the memo's loads afresh and keeps nothing. What is kept is
    shared by every later caller: it must never be changed in place."""
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
