"""Group commit: the work of concurrent callers on one event loop written in one transaction.

Callbacks arrive one per request, thousands a second at volume; each on its own would pay
a transaction (on SQLite the one writer lock, on PostgreSQL a commit and its fsync) for a
row or two. A `GroupCommit` collects the items of concurrent callers while the previous
group is being written (and for at most `window_seconds` when nothing is), writes them with
`write_group` in one transaction, and answers each caller with the outcome of its own items
only once that transaction has committed.

A group that fails is written again caller by caller (`write_alone`), so one caller's
failure never becomes another's. A caller already inside a transaction joins it instead
(its items must commit or roll back with it). Delivery reports (tenants.messaging.status)
and inbound messages (tenants.messaging.inbound) are grouped this way.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tenants.db import DB

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass
class _Waiting(Generic[Item, Answer]):
    items: list[Item]
    answer: asyncio.Future[Answer] = field(repr=False)


class GroupCommit(ABC, Generic[Item, Answer]):
    """Collects the items of concurrent callers on one event loop and writes each group in
    one transaction (at most `max_items` items, waiting at most `window_seconds` for company
    when the writer is idle). Subclasses say how a group is written and answered."""

    def __init__(self, *, window_seconds: float, max_items: int) -> None:
        self.window_seconds = window_seconds
        self.max_items = max_items
        self.groups_written = 0
        # Callers in the last group written: a lone caller (no concurrency seen) is written
        # at once rather than waiting the window for company that is not coming.
        self._last_callers = 0
        self._waiting: list[_Waiting[Item, Answer]] = []
        self._writer: asyncio.Task[None] | None = None
        self._full = asyncio.Event()

    @abstractmethod
    async def write_group(self, items: list[Item]) -> list[Any]:
        """The outcome of each item, in order, all written in one transaction."""

    @abstractmethod
    def answer_of(self, outcomes: list[Any]) -> Answer:
        """One caller's answer from the outcomes of its own items."""

    @abstractmethod
    async def write_alone(self, items: Sequence[Item]) -> Answer:
        """One caller's items written on their own (inside a caller's transaction, or
        after its group failed)."""

    async def submit(self, items: Sequence[Item]) -> Answer:
        """Write these items with those of concurrent callers; returns this caller's
        answer once they are durable."""
        if not items or DB.current_transaction.get() is not None:
            return await self.write_alone(items)
        loop = asyncio.get_running_loop()
        waiting: _Waiting[Item, Answer] = _Waiting(list(items), loop.create_future())
        self._waiting.append(waiting)
        if sum(len(w.items) for w in self._waiting) >= self.max_items:
            self._full.set()
        if self._writer is None:
            # The writer must not inherit this caller's context (its transaction, if any).
            self._writer = loop.create_task(self._write_all(), context=contextvars.Context())
        # The group commits whether or not this caller is still waiting for it.
        return await asyncio.shield(waiting.answer)

    async def _write_all(self) -> None:
        group: list[_Waiting[Item, Answer]] = []
        try:
            if self._last_callers > 1:
                try:
                    await asyncio.wait_for(self._full.wait(), timeout=self.window_seconds)
                except TimeoutError:
                    pass
            while self._waiting:
                group = self._take_group()
                await self._write(group)
        except BaseException:
            # Stopped (the loop is closing): nobody may wait for a write that will not come.
            for waiting in [*group, *self._waiting]:
                waiting.answer.cancel()
            self._waiting.clear()
            raise
        finally:
            self._writer = None

    def _take_group(self) -> list[_Waiting[Item, Answer]]:
        group: list[_Waiting[Item, Answer]] = []
        count = 0
        while self._waiting and (
            not group or count + len(self._waiting[0].items) <= self.max_items
        ):
            waiting = self._waiting.pop(0)
            group.append(waiting)
            count += len(waiting.items)
        if sum(len(w.items) for w in self._waiting) < self.max_items:
            self._full.clear()
        return group

    async def _write(self, group: list[_Waiting[Item, Answer]]) -> None:
        items = [item for waiting in group for item in waiting.items]
        self._last_callers = len(group)
        try:
            outcomes = await self.write_group(items)
        except Exception:
            # Alone, each caller succeeds or fails on its own items only; a group of one
            # is written alone too, on the path that settles races (an inbound copy routed
            # by another process meanwhile is answered as a duplicate there).
            for waiting in group:
                try:
                    _answer(waiting, await self.write_alone(waiting.items))
                except Exception as own:
                    _answer_error(waiting, own)
            return
        self.groups_written += 1
        start = 0
        for waiting in group:
            end = start + len(waiting.items)
            _answer(waiting, self.answer_of(outcomes[start:end]))
            start = end


def _answer(waiting: _Waiting[Any, Answer], result: Answer) -> None:
    if not waiting.answer.done():
        waiting.answer.set_result(result)


def _answer_error(waiting: _Waiting[Any, Any], exc: Exception) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(exc)


Grouper = TypeVar("Grouper", bound=GroupCommit[Any, Any])


class PerLoop(Generic[Grouper]):
    """One grouper per running event loop (the web server and each worker have their own)."""

    def __init__(self, make: Callable[[], Grouper]) -> None:
        self._make = make
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Grouper] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> Grouper:
        loop = asyncio.get_running_loop()
        grouper = self._by_loop.get(loop)
        if grouper is None:
            grouper = self._by_loop[loop] = self._make()
        return grouper
