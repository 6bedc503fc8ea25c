"""The usage roll-up equals what the messages say after any mix of reports: late,
duplicated, reordered, refunded, cancelled, concluded by the platform; and each message
counts on the day it was accepted in its account's time zone."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.accounts.tables import Account
from tenants.accounts.tree import create_root_account, get_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import is_sqlite, run_sql, transaction
from tenants.messaging import accept as sending
from tenants.messaging import messages
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.messages import PROVIDER_STATUSES, StatusReport
from tenants.messaging.outbox import StaleOutcome, _settle_stale
from tenants.reports import rollups, usage
from tenants.schema import wipe_all_data

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
WIDE = usage.Period(date(2026, 1, 1), date(2026, 12, 31))


async def send(account_id: int, numbers: list[str], body: str = "Hello there") -> list[int]:
    result = await sending.accept_send(
        SendRequest(account_id=account_id, numbers=numbers, body=body, permissions=PLATFORM_SEND),
        actor=SYSTEM,
    )
    return [a.message_id for a in result.accepted]


async def scan_by_status(account_id: int) -> dict[str, tuple[int, int, int]]:
    """What the roll-up must say, counted from the messages themselves."""
    rows = await run_sql(
        "SELECT status, COUNT(*) AS n, SUM(segments) AS s, SUM(cost) AS c FROM message "
        "WHERE account_id = {} AND direction = 'out' GROUP BY status",
        account_id,
    )
    return {r["status"]: (int(r["n"]), int(r["s"]), int(r["c"])) for r in rows}


async def rollup_by_status(account_id: int) -> dict[str, tuple[int, int, int]]:
    account = await get_account(account_id)
    report = await usage.usage_report(account, WIDE, ("status",))
    return {
        r.status or "": (r.counts.messages, r.counts.segments, r.counts.credits)
        for r in report.rows
    }


def report(message_id: int, status: str, second: int, n: int = 0) -> StatusReport:
    return StatusReport(
        message_id,
        status,
        T0 + timedelta(seconds=second),
        "EXPIRED" if status == "failed" else None,
        f"ref-{message_id}",
        f"evt-{message_id}-{status}-{second}-{n}",
    )


async def test_late_duplicate_and_reordered_reports_keep_the_rollup_exact(world, monkeypatch):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    monkeypatch.setattr(sending, "now", lambda: T0)
    ids = await send(account, [f"+6140000{n:04d}" for n in range(8)], body="Hi " + "x" * 200)
    assert await rollup_by_status(account) == {"enqueued": (8, 16, 16)}
    a, b, c, d, e, f, g, h = ids
    # the worker's own moves, then the provider's reports in a mixed order
    await messages.apply_statuses([(i, "sent", None) for i in ids[:6]])
    await messages.apply_statuses([(g, "enqueued_failed", "SUBMIT_FAILED")])  # refunded
    batches = [
        [report(a, "delivered", 5), report(a, "sent", 1)],  # a late sent after delivered
        [report(a, "delivered", 5)],  # the same event again: a duplicate
        [report(b, "failed", 9), report(b, "delivered", 3)],  # reordered: the later wins
        [report(c, "read", 7)],
        [report(c, "delivered", 4)],  # late: read already proves delivery
        [report(d, "rejected", 2)],  # refunded
        [report(d, "delivered", 8)],  # nothing moves a refund
        [report(e, "delivered", 3)],
        [report(e, "failed", 6)],  # later in provider time: failed wins
        [report(h, "delivered", 4)],  # straight from enqueued
    ]
    for batch in batches:
        await messages.ingest_status_reports(batch)
    # f stays `sent`; the platform concludes it, then a late delivered report still wins
    await run_sql("UPDATE message SET updated_at = {} WHERE id = {}", T0, f)
    await _settle_stale(None, [{"id": f}], StaleOutcome())
    await messages.ingest_status_reports([report(f, "delivered", 30)])

    expected = await scan_by_status(account)
    assert await rollup_by_status(account) == expected
    assert {s: n for s, (n, _, _) in expected.items()} == {
        "delivered": 3,  # a, f, h
        "failed": 2,  # b, e
        "read": 1,
        "rejected": 1,
        "enqueued_failed": 1,
    }
    # every message is counted once: what was sent
    total = (await usage.usage_report(await get_account(account), WIDE, ())).totals
    assert (total.messages, total.segments, total.credits) == (8, 16, 16)
    # what was spent is what the ledger says was spent less what it refunded
    rows = await ledger.ledger(account, limit=100, offset=0)
    spent = -sum(r.delta for r in rows[0] if r.kind == "spend")
    refunded = sum(r.delta for r in rows[0] if r.kind == "refund")
    kept = sum(c for s, (_, _, c) in expected.items() if s not in usage.REFUNDED_STATUSES)
    assert (spent, refunded, spent - refunded) == (16, 4, kept)


async def test_a_cancelled_send_moves_its_messages_to_enqueued_failed(world, monkeypatch):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["+61400000001", "+61400000002"],
            body="Later",
            send_at=datetime.now(UTC) + timedelta(days=1),
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    await messages.set_batch_state(
        SYSTEM, account_id=account, batch_id=result.batch_id, action="cancel"
    )
    assert await rollup_by_status(account) == {"enqueued_failed": (2, 2, 2)}
    assert await scan_by_status(account) == {"enqueued_failed": (2, 2, 2)}


async def test_a_message_counts_on_its_accounts_local_day(world, monkeypatch):
    account = world.accounts["alpha-one"]
    await Account.update({Account.timezone: "Australia/Sydney"}).where(Account.id == account)
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    # 14:30 UTC on 1 March is 01:30 on 2 March in Sydney (UTC+11 in March)
    monkeypatch.setattr(sending, "now", lambda: datetime(2026, 3, 1, 14, 30, tzinfo=UTC))
    (message_id,) = await send(account, ["+61400000009"])
    await messages.ingest_status_reports([report(message_id, "delivered", 1)])
    report_rows = (
        await usage.usage_report(await get_account(account), WIDE, ("day", "status"))
    ).rows
    assert [(r.day, r.status, r.counts.messages) for r in report_rows] == [
        (date(2026, 3, 2), "delivered", 1)
    ]


async def _any_reports(items: list[tuple[int, str, int]], rnd: random.Random) -> None:
    await wipe_all_data()
    root = await create_root_account(name="Prop", slug="prop")
    await ledger.adjust(root.id, 100, reason="test credits", actor=SYSTEM)
    ids = await send(root.id, ["+61400000101", "+61400000102", "+61400000103"])
    reports = [report(ids[m], s, t, n) for n, (m, s, t) in enumerate(items)]
    reports += rnd.sample(reports, k=len(reports) // 3)  # redelivered callbacks
    rnd.shuffle(reports)
    while reports:
        take = rnd.randint(1, 3)
        await messages.ingest_status_reports(reports[:take])
        reports = reports[take:]
    assert await rollup_by_status(root.id) == await scan_by_status(root.id)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(sorted(PROVIDER_STATUSES)), st.integers(0, 5)),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_any_reports_in_any_batches_leave_rollup_and_messages_agreeing(items, rnd):
    asyncio.run(_any_reports(items, rnd))


async def test_moves_recorded_in_an_at_end_block_are_written_when_it_ends(world, monkeypatch):
    """The hottest rows of a campaign are upserted last: inside the block nothing is
    written yet; at its end the block's moves are written once, merged."""
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    monkeypatch.setattr(sending, "now", lambda: T0)
    ids = await send(account, [f"+6140000{n:04d}" for n in range(4)])
    upserts: list[str] = []
    real_run_sql = rollups.run_sql

    async def counting(template: str, *args: object) -> list[dict[str, object]]:
        if "ON CONFLICT (key)" in template:
            upserts.append(template)
        return await real_run_sql(template, *args)

    monkeypatch.setattr(rollups, "run_sql", counting)
    async with transaction(), rollups.at_end():
        await messages.apply_statuses([(i, "sent", None) for i in ids[:2]])
        await messages.apply_statuses([(ids[2], "enqueued_failed", "SUBMIT_FAILED")])
        assert upserts == []
        assert await rollup_by_status(account) == {"enqueued": (4, 4, 4)}
    # Both moves in one upsert per table (usage_daily: nothing moves there), one statement
    # on PostgreSQL.
    tables = ["usage_rollup", "usage_route_rollup", "batch_tally"]
    if is_sqlite():
        # In the order PostgreSQL runs its one statement: the last table first.
        assert [t for sql in upserts for t in tables if f"INSERT INTO {t} " in sql] == tables[::-1]
    else:
        assert len(upserts) == 1
        assert all(f"INSERT INTO {t} " in upserts[0] for t in tables)
        assert "usage_daily" not in upserts[0]
    assert await rollup_by_status(account) == await scan_by_status(account)
    assert await rollup_by_status(account) == {
        "enqueued": (1, 1, 1), "sent": (2, 2, 2), "enqueued_failed": (1, 1, 1),
    }  # fmt: skip


async def test_an_at_end_block_that_fails_writes_none_of_its_moves(world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    ids = await send(account, [f"+6140000{n:04d}" for n in range(2)])
    before = await rollup_by_status(account)
    with pytest.raises(RuntimeError):
        async with transaction(), rollups.at_end():
            await messages.apply_statuses([(i, "sent", None) for i in ids])
            raise RuntimeError("stop")
    assert await rollup_by_status(account) == before == await scan_by_status(account)
    async with transaction(), rollups.at_end():
        async with rollups.at_end():  # nested: the outer block writes
            await messages.apply_statuses([(i, "delivered", None) for i in ids])
        assert await rollup_by_status(account) == before
    assert await rollup_by_status(account) == await scan_by_status(account)
    assert (await rollup_by_status(account)).get("delivered") == (2, 2, 2)


async def test_upserts_too_many_for_one_statement_lock_in_the_combined_statements_order(
    world, monkeypatch
):
    """On PostgreSQL the combined upsert runs its main part, then its WITH parts from the
    last to the first; split upserts (too many for one statement, or on SQLite) run in that
    same order: the tables one after the other, each table's rows in ascending key order
    however many statements they take, so two transactions never lock rows in opposite
    orders. The sums are the same."""
    account = world.accounts["alpha"]
    await ledger.adjust(account, 10, reason="test credits", actor=SYSTEM)
    (sent,) = await send(account, ["+61400000001"])
    batch = (await run_sql("SELECT batch_id FROM message WHERE id = {}", sent))[0]["batch_id"]
    before = await rollups_tally(batch, "status:sent")
    # 320 days: usage_daily takes two statements of at most 300 keys.
    moves = [
        rollups.StatusMove(
            account, T0 + timedelta(days=d), "sms", 1, 1, None, "enqueued", country="AU"
        )
        for d in range(320)
    ]
    moves.append(rollups.StatusMove(account, T0, "sms", 1, 1, "enqueued", "sent", country="AU", batch_id=batch))  # fmt: skip
    statements: list[tuple[str, tuple[object, ...]]] = []
    real = rollups.run_sql

    async def watched(sql: str, *args: object) -> object:
        statements.append((sql, args))
        return await real(sql, *args)

    monkeypatch.setattr(rollups, "run_sql", watched)
    monkeypatch.setattr(rollups, "ONE_STATEMENT_ARGUMENTS", 0)
    async with transaction():
        await rollups.record(moves)
    tables = [sql.split()[2] for sql, _ in statements if sql.startswith("INSERT INTO")]
    order = [t for n, t in enumerate(tables) if n == 0 or tables[n - 1] != t]
    assert order == [
        "batch_tally",
        "usage_route_daily",
        "usage_route_rollup",
        "usage_rollup",
        "usage_daily",
    ]
    assert tables.count("usage_daily") == 2
    for table, width in (("usage_daily", 6), ("usage_route_daily", 8), ("usage_rollup", 8)):
        chunks = [args for sql, args in statements if sql.startswith(f"INSERT INTO {table} ")]
        keys = [str(args[i]) for args in chunks for i in range(0, len(args), width)]
        assert keys == sorted(keys) and len(keys) >= 320, table
    assert await rollups_tally(batch, "status:sent") == before + 1
    two_years = usage.Period(date(2026, 1, 1), date(2027, 12, 31))
    report = await usage.usage_report(await get_account(account), two_years, ())
    assert report.totals.messages == 321  # the send and the 320 moves


async def rollups_tally(batch_id: int, name: str) -> int:
    rows = await run_sql("SELECT n FROM batch_tally WHERE key = {}", f"{batch_id}|{name}")
    return int(rows[0]["n"]) if rows else 0
