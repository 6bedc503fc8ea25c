"""Group commit of delivery reports (tenants.messaging.status): concurrent callers share one
transaction, each gets the counts of its own reports, and the result is the one the same
reports would give ingested one call at a time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tenants.db import transaction
from tenants.messaging import messages, status
from tenants.messaging.messages import StatusReport
from tenants.messaging.tables import Message, MessageEvent
from tenants.providers import callbacks
from tests.unit.test_delivery import make_outbox, status_of


def report(message_id: int, state: str, n: int, event: str | None = None) -> StatusReport:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return StatusReport(message_id, state, at, None, f"ref-{message_id}", event or f"e-{n}")


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each group written (one transaction each)."""
    sizes: list[int] = []
    real = status.ingest_outcomes

    async def counted(reports):  # type: ignore[no-untyped-def]
        sizes.append(len(reports))
        return await real(reports)

    monkeypatch.setattr(status, "ingest_outcomes", counted)
    return sizes


async def test_concurrent_callers_share_one_transaction_and_get_their_own_counts(world, writes):
    _, ids = await make_outbox(world.accounts["alpha"], [f"+6140000000{i}" for i in range(6)])
    batcher = status.ReportBatcher(window_seconds=0.2)
    results = await asyncio.gather(
        *(batcher.ingest([report(m, "delivered", 1, f"d-{m}")]) for m in ids[:4]),
        batcher.ingest([report(ids[4], "delivered", 2, "d-x"), report(ids[5], "read", 3, "r-y")]),
        batcher.ingest([report(999_999, "delivered", 1, "nobody")]),
    )
    assert writes == [7]
    assert batcher.groups_written == 1
    assert [(r.received, r.applied, r.unknown) for r in results] == [
        *[(1, 1, 0)] * 4,
        (2, 2, 0),
        (1, 0, 1),
    ]
    assert [await status_of(m) for m in ids] == ["delivered"] * 5 + ["read"]
    assert await MessageEvent.count().where(MessageEvent.source == "provider") == 6


async def test_a_group_applies_the_rules_of_one_call(world, writes):
    """Duplicates between callers of one group count once; late reports stay late; the
    message ends where the reports resolve whatever the callers' order."""
    _, (message_id,) = await make_outbox(world.accounts["alpha"], ["+61400000001"])
    batcher = status.ReportBatcher(window_seconds=0.2)
    results = await asyncio.gather(
        batcher.ingest([report(message_id, "read", 3, "read")]),
        batcher.ingest([report(message_id, "delivered", 2, "delivered")]),
        batcher.ingest([report(message_id, "delivered", 2, "delivered")]),
        batcher.ingest([report(message_id, "sent", 1, "sent")]),
    )
    assert writes == [4]
    assert [(r.applied, r.duplicates) for r in results] == [(1, 0), (1, 0), (0, 1), (1, 0)]
    assert await status_of(message_id) == "read"
    # A later group sees the same event ids as duplicates, and a lower rank as late.
    again = await batcher.ingest([report(message_id, "delivered", 2, "delivered")])
    assert (again.duplicates, again.applied) == (1, 0)
    late = await batcher.ingest([report(message_id, "delivered", 4, "delivered-again")])
    assert (late.late, late.applied) == (1, 0)


async def test_a_full_group_is_written_without_waiting_for_the_window(world, writes):
    _, ids = await make_outbox(world.accounts["alpha"], [f"+6140000001{i}" for i in range(5)])
    batcher = status.ReportBatcher(window_seconds=30, max_reports=2)
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.ingest([report(m, "sent", 1, f"s-{m}")]) for m in ids)),
        timeout=10,
    )
    assert sum(r.applied for r in results) == 5
    assert sorted(writes, reverse=True) == [2, 2, 1]


async def test_a_failing_group_is_written_caller_by_caller(world, monkeypatch):
    """When the shared transaction fails, each caller's reports are written on their own:
    one caller's failure is not another's."""
    _, ids = await make_outbox(world.accounts["alpha"], ["+61400000001", "+61400000002"])
    real = messages.ingest_status_reports

    async def grouped_fails(reports):  # type: ignore[no-untyped-def]
        raise RuntimeError("the group's transaction failed")

    async def second_fails(reports):  # type: ignore[no-untyped-def]
        if reports[0].message_id == ids[1]:
            raise RuntimeError("this caller's own write failed")
        return await real(reports)

    monkeypatch.setattr(status, "ingest_outcomes", grouped_fails)
    monkeypatch.setattr(status, "ingest_status_reports", second_fails)
    batcher = status.ReportBatcher(window_seconds=0.2)
    first, second = await asyncio.gather(
        batcher.ingest([report(ids[0], "delivered", 1, "a")]),
        batcher.ingest([report(ids[1], "delivered", 1, "b")]),
        return_exceptions=True,
    )
    assert isinstance(first, messages.IngestResult) and first.applied == 1
    assert isinstance(second, RuntimeError) and "own write" in str(second)
    assert [await status_of(m) for m in ids] == ["delivered", "enqueued"]


async def test_a_caller_inside_a_transaction_joins_it(world, writes):
    _, (message_id,) = await make_outbox(world.accounts["alpha"], ["+61400000001"])
    with pytest.raises(RuntimeError):
        async with transaction():
            result = await status.ingest_grouped([report(message_id, "delivered", 1)])
            assert result.applied == 1
            raise RuntimeError("roll back")
    assert writes == []  # never handed to the shared writer
    row = await Message.select(Message.status).where(Message.id == message_id).first()
    assert row["status"] == "enqueued"
    assert await MessageEvent.count().where(MessageEvent.source == "provider") == 0


async def test_each_event_loop_has_its_own_batcher(world):
    here = status.report_batcher()
    assert status.report_batcher() is here

    def other_loop() -> status.ReportBatcher:
        async def get() -> status.ReportBatcher:
            return status.report_batcher()

        return asyncio.run(get())

    assert await asyncio.to_thread(other_loop) is not here


async def test_a_report_for_another_carriers_message_is_unknown_and_changes_nothing(world):
    """The carrier check made inside the group's own read: a report that names one of our
    ids counts only when that message went out through the reporting provider."""
    _, (ours, theirs) = await make_outbox(world.accounts["alpha"], ["+61400000001", "+61400000002"])
    await Message.update({Message.provider: "integration:1"}).where(Message.id == ours)
    await Message.update({Message.provider: "integration:2"}).where(Message.id == theirs)
    batcher = status.ReportBatcher(window_seconds=0.05)
    mine, other = await asyncio.gather(
        batcher.ingest([replace(report(ours, "delivered", 1), carrier="integration:1")]),
        batcher.ingest([replace(report(theirs, "delivered", 2), carrier="integration:1")]),
    )
    assert (mine.applied, mine.unknown) == (1, 0)
    assert (other.received, other.applied, other.unknown) == (1, 0, 1)
    assert await status_of(theirs) == "enqueued"
    assert await MessageEvent.count().where(MessageEvent.message_id == theirs) == 0


async def test_a_callback_naming_another_carriers_id_is_tied_by_the_providers_reference(world):
    """callbacks.ingest_events keeps resolve_events' order: our id when the message is the
    provider's, else the provider's reference."""
    _, (ours, theirs) = await make_outbox(world.accounts["alpha"], ["+61400000001", "+61400000002"])
    await Message.update(
        {Message.provider: "integration:1", Message.provider_ref: "SM-ours"}
    ).where(Message.id == ours)
    await Message.update({Message.provider: "integration:2"}).where(Message.id == theirs)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    event = callbacks.ProviderEvent("delivered", at, message_id=theirs, provider_ref="SM-ours")
    result = await callbacks.ingest_events("integration:1", [event])
    assert (result.received, result.applied, result.unknown) == (1, 1, 0)
    assert [await status_of(ours), await status_of(theirs)] == ["delivered", "enqueued"]
    lost = callbacks.ProviderEvent("delivered", at, message_id=theirs, event_id="x-1")
    assert (await callbacks.ingest_events("integration:1", [lost])).unknown == 1
    assert await status_of(theirs) == "enqueued"
