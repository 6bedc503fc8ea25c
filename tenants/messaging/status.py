"""Group commit for delivery reports: concurrent callbacks share one transaction.

Providers post one report per request, thousands a second at volume. Each request on its
own would pay a transaction (on SQLite the one writer lock, on PostgreSQL a commit and its
fsync) for one row. Here the reports of concurrent callers are collected while the
previous group is being written (and for at most WINDOW_SECONDS when nothing is), written
by `messages.ingest_outcomes` in one transaction, and each caller is answered with the
outcome of its own reports only once that transaction has committed. The rules are those
of `ingest_status_reports` (duplicates by event id, `resolve`'s order-independent
result): a group is the same as the callers' reports in one call, in arrival order.

A group that fails is written again caller by caller, so one caller's failure never
becomes another's. A caller already inside a transaction joins it instead (its reports
must commit or roll back with it).
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenants.db import DB, retrying_deadlocks
from tenants.messaging.messages import (
    IngestResult,
    StatusReport,
    ingest_outcomes,
    ingest_status_reports,
    tally,
)

WINDOW_SECONDS = 0.002
MAX_REPORTS = 500


@dataclass
class _Waiting:
    reports: list[StatusReport]
    answer: asyncio.Future[IngestResult] = field(repr=False)


class ReportBatcher:
    """Collects the reports of concurrent callers on one event loop and writes each group
    in one transaction (at most `max_reports` reports, waiting at most `window_seconds`
    for company when the writer is idle)."""

    def __init__(
        self, *, window_seconds: float = WINDOW_SECONDS, max_reports: int = MAX_REPORTS
    ) -> None:
        self.window_seconds = window_seconds
        self.max_reports = max_reports
        self.groups_written = 0
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._full = asyncio.Event()

    async def ingest(self, reports: Sequence[StatusReport]) -> IngestResult:
        """Ingest these reports with those of concurrent callers; returns this caller's
        counts once they are durable."""
        if not reports or DB.current_transaction.get() is not None:
            return await ingest_status_reports(reports)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(list(reports), loop.create_future())
        self._waiting.append(waiting)
        if sum(len(w.reports) for w in self._waiting) >= self.max_reports:
            self._full.set()
        if self._writer is None:
            # The writer must not inherit this caller's context (its transaction, if any).
            self._writer = loop.create_task(self._write_all(), context=contextvars.Context())
        # The group commits whether or not this caller is still waiting for it.
        return await asyncio.shield(waiting.answer)

    async def _write_all(self) -> None:
        group: list[_Waiting] = []
        try:
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

    def _take_group(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        count = 0
        while self._waiting and (
            not group or count + len(self._waiting[0].reports) <= self.max_reports
        ):
            waiting = self._waiting.pop(0)
            group.append(waiting)
            count += len(waiting.reports)
        if sum(len(w.reports) for w in self._waiting) < self.max_reports:
            self._full.clear()
        return group

    async def _write(self, group: list[_Waiting]) -> None:
        reports = [report for waiting in group for report in waiting.reports]
        try:
            # Refunds lock accounts beside concurrent sends: a deadlock's victim was rolled
            # back whole and is written again.
            outcomes = await retrying_deadlocks(lambda: ingest_outcomes(reports))
        except Exception as exc:
            if len(group) == 1:
                _answer_error(group[0], exc)
                return
            # Alone, each caller succeeds or fails on its own reports only.
            for waiting in group:
                try:
                    _answer(waiting, await ingest_status_reports(waiting.reports))
                except Exception as own:
                    _answer_error(waiting, own)
            return
        self.groups_written += 1
        start = 0
        for waiting in group:
            end = start + len(waiting.reports)
            _answer(waiting, tally(outcomes[start:end]))
            start = end


def _answer(waiting: _Waiting, result: IngestResult) -> None:
    if not waiting.answer.done():
        waiting.answer.set_result(result)


def _answer_error(waiting: _Waiting, exc: Exception) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(exc)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReportBatcher] = (
    weakref.WeakKeyDictionary()
)


def report_batcher() -> ReportBatcher:
    """The running event loop's batcher (the web server and each worker have their own)."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = ReportBatcher()
    return batcher


async def ingest_grouped(reports: Sequence[StatusReport]) -> IngestResult:
    """`ingest_status_reports`, sharing its transaction with concurrent callers."""
    return await report_batcher().ingest(reports)
