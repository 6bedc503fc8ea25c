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
must commit or roll back with it). The machinery is tenants.group_commit's.
"""

from __future__ import annotations

from collections.abc import Sequence

from tenants.db import retrying_deadlocks
from tenants.group_commit import GroupCommit, PerLoop
from tenants.messaging.messages import (
    IngestResult,
    StatusReport,
    ingest_outcomes,
    ingest_status_reports,
    tally,
)

WINDOW_SECONDS = 0.002
MAX_REPORTS = 500


class ReportBatcher(GroupCommit[StatusReport, IngestResult]):
    """Collects the reports of concurrent callers on one event loop and writes each group
    in one transaction (at most `max_reports` reports, waiting at most `window_seconds`
    for company when the writer is idle)."""

    def __init__(
        self, *, window_seconds: float = WINDOW_SECONDS, max_reports: int = MAX_REPORTS
    ) -> None:
        super().__init__(window_seconds=window_seconds, max_items=max_reports)

    async def ingest(self, reports: Sequence[StatusReport]) -> IngestResult:
        """Ingest these reports with those of concurrent callers; returns this caller's
        counts once they are durable."""
        return await self.submit(reports)

    async def write_group(self, items: list[StatusReport]) -> list[str]:
        # Refunds lock accounts beside concurrent sends: a deadlock's victim was rolled
        # back whole and is written again.
        return list(await retrying_deadlocks(lambda: ingest_outcomes(items)))

    def answer_of(self, outcomes: list[str]) -> IngestResult:
        return tally(outcomes)

    async def write_alone(self, items: Sequence[StatusReport]) -> IngestResult:
        return await ingest_status_reports(items)


_batchers = PerLoop(ReportBatcher)


def report_batcher() -> ReportBatcher:
    """The running event loop's batcher (the web server and each worker have their own)."""
    return _batchers.get()


async def ingest_grouped(reports: Sequence[StatusReport]) -> IngestResult:
    """`ingest_status_reports`, sharing its transaction with concurrent callers."""
    return await report_batcher().ingest(reports)
