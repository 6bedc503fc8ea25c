"""Conflicting status reports resolve by the provider's event time, not by arrival order:
the same reports end in the same state for any order, and the money rules hold (a refund
only for a refunded status, never twice, never taken back)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.audit.record import SYSTEM
from tenants.credits import ledger as credits
from tenants.messaging import messages
from tenants.messaging.messages import (
    PROVIDER_STATUSES,
    REFUNDED_STATUSES,
    StatusReport,
    resolve,
)
from tenants.messaging.tables import Message
from tests.unit.test_delivery import make_outbox, status_of

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def report(message_id: int, status: str, second: int, n: int = 0) -> StatusReport:
    return StatusReport(
        message_id,
        status,
        T0 + timedelta(seconds=second),
        "EXPIRED" if status == "failed" else None,
        "ref-1",
        f"evt-{message_id}-{status}-{second}-{n}",
    )


reports_strategy = st.lists(
    st.tuples(st.sampled_from(sorted(PROVIDER_STATUSES)), st.integers(0, 4)),
    min_size=1,
    max_size=7,
)


def one_by_one(start: str, reports: list[StatusReport]) -> tuple[str, int]:
    """Apply reports as separate callbacks; returns the end status and refunds made."""
    status, at, refunds = start, None, 0
    for r in reports:
        state = resolve(status, at, [r])
        if state.status != status and state.status in REFUNDED_STATUSES:
            refunds += 1
        status, at = state.status, state.at
    return status, refunds


@settings(max_examples=300, deadline=None)
@given(reports_strategy, st.sampled_from(["enqueued", "sent"]), st.randoms())
def test_any_arrival_order_ends_in_the_same_state(items, start, rnd):
    reports = [report(1, s, t, n) for n, (s, t) in enumerate(items)]
    expected = resolve(start, None, reports).status
    shuffled = list(reports)
    rnd.shuffle(shuffled)
    status, refunds = one_by_one(start, shuffled)
    assert status == expected
    # a refund only when a refunded status is reached, and at most once
    assert refunds == (1 if expected in REFUNDED_STATUSES else 0)
    # the state never moves to a lower rank, and the latest delivered/failed wins
    timed = [r for r in reports if r.status in ("delivered", "failed")]
    if timed and not {r.status for r in reports} & {"read", "rejected"}:
        latest = max(r.at for r in timed)
        winners = {r.status for r in timed if r.at == latest}
        assert expected == ("failed" if "failed" in winners else "delivered")


def test_the_issues_example_and_the_named_rules():
    sent, delivered, failed = (
        report(1, s, t) for s, t in (("sent", 0), ("delivered", 1), ("failed", 2))
    )
    for order in itertools.permutations([sent, delivered, failed]):
        assert one_by_one("enqueued", list(order)) == ("failed", 0)
    # read proves delivery whatever the time; rejected is refunded and never left
    assert one_by_one("sent", [report(1, "read", 1), report(1, "failed", 5)])[0] == "read"
    assert one_by_one("sent", [report(1, "rejected", 1), report(1, "delivered", 5)]) == (
        "rejected",
        1,
    )
    # a platform conclusion (no provider time) gives way to a later report
    assert resolve("failed", None, [report(1, "delivered", 0)]).status == "delivered"


async def test_six_shuffled_orders_give_one_final_state_in_the_database(world):
    account = world.accounts["alpha"]
    await credits.adjust(account, 100, reason="test", actor=SYSTEM)
    _, ids = await make_outbox(account, [f"+6140000010{n}" for n in range(6)], cost=1)
    base = [("sent", 0), ("delivered", 1), ("failed", 2)]
    orders = list(itertools.permutations(base))
    assert len(orders) == 6
    for message_id, order in zip(ids, orders, strict=True):
        for status, second in order:
            await messages.ingest_status_reports([report(message_id, status, second)])
    assert [await status_of(i) for i in ids] == ["failed"] * 6
    # the same reports in shuffled batches (several per callback) end the same way
    _, more = await make_outbox(account, [f"+6140000020{n}" for n in range(6)], cost=1)
    rnd = random.Random(20)
    for message_id in more:
        batch = [report(message_id, s, t) for s, t in base]
        rnd.shuffle(batch)
        await messages.ingest_status_reports(batch[:2])
        await messages.ingest_status_reports(batch[2:])
    assert [await status_of(i) for i in more] == ["failed"] * 6
    view = await messages.get_message(account, ids[0])
    assert view.error_code == "EXPIRED"
    # failed is not refunded: nothing came back
    assert await Message.count().where(Message.refunded == True) == 0  # noqa: E712


async def test_a_rejection_is_refunded_once_whatever_comes_after(world, monkeypatch):
    account = world.accounts["alpha"]
    _, (message_id,) = await make_outbox(account, ["+61400000301"], cost=3)
    refunded: list[int] = []
    real_refund = messages.refund_messages

    async def counting_refund(rows):
        rows = list(rows)
        refunded.extend(r["id"] for r in rows)
        return await real_refund(rows)

    monkeypatch.setattr(messages, "refund_messages", counting_refund)
    for status, second in (("delivered", 1), ("rejected", 0), ("read", 3), ("delivered", 4)):
        await messages.ingest_status_reports([report(message_id, status, second)])
    await messages.ingest_status_reports([report(message_id, "rejected", 5, n=1)])
    assert await status_of(message_id) == "rejected"
    assert refunded == [message_id]
    row = await Message.select(Message.refunded).where(Message.id == message_id).first()
    assert row["refunded"] in (True, 1)
