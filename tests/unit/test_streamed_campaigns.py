"""Campaigns to lists streamed from the database a chunk at a time (tiny chunks here):
every consented contact accepted once, opt-outs skipped with their reason, credits exact,
a crash between or inside chunks resumed without duplicates, the credit limit respected,
and the progress counters equal to a count of the messages."""

from __future__ import annotations

import asyncio

import pytest

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.credits.tables import Reservation
from tenants.db import run_sql, transaction
from tenants.errors import ValidationFailed
from tenants.messaging import messages, streamed
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.tables import Batch, BatchSkip, Message
from tests.factories import fund

CHUNK = 4


@pytest.fixture(autouse=True)
def _tiny_chunks(settings_env):
    settings_env(LIST_CHUNK_SIZE=CHUNK)


async def _list_of(account: int, count: int, *, first: int = 1, name: str = "Club") -> int:
    lst = await contacts.create_list(actor=SYSTEM, account_id=account, name=name)
    ids = []
    for n in range(first, first + count):
        contact = await contacts.create_contact(
            actor=SYSTEM, account_id=account, phone=f"+614000{n:05d}", first_name=f"P{n}"
        )
        ids.append(contact.id)
    await contacts.add_to_list(actor=SYSTEM, account_id=account, list_id=lst.id, contact_ids=ids)
    return lst.id


def _request(account: int, **kw: object) -> SendRequest:
    fields: dict[str, object] = {
        "account_id": account,
        "body": "Hi {{first_name}}",
        "campaign_name": "Spring",
        "permissions": PLATFORM_SEND,
    }
    fields.update(kw)
    return SendRequest(**fields)  # type: ignore[arg-type]


async def _run_to_end(batch_id: int) -> streamed.RunOutcome:
    total = streamed.RunOutcome()
    for _ in range(100):
        outcome = await streamed.run(batch_id)
        total.chunks += outcome.chunks
        total.accepted += outcome.accepted
        total.skipped += outcome.skipped
        if outcome.finished:
            total.finished = True
            return total
    raise AssertionError("the campaign never finished accepting")


async def _numbers_of(batch_id: int) -> list[str]:
    rows = await run_sql("SELECT to_number FROM message WHERE batch_id = {}", batch_id)
    return sorted(r["to_number"] for r in rows)


async def _reserved(batch_id: int) -> int:
    rows = await Reservation.select(Reservation.amount).where(
        Reservation.reference == f"batch:{batch_id}"
    )
    return sum(r["amount"] for r in rows)


async def test_a_list_bigger_than_a_chunk_accepts_each_consented_contact_once(world):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _list_of(account, 11)
    # A tagged contact outside the list and one inside it: each is sent once.
    await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400099999", tags=["vip"]
    )
    member = await contacts.find_contact_by_phone(account, "+61400000003")
    assert member is not None
    await contacts.update_contact(
        actor=SYSTEM,
        account_id=account,
        contact_id=member.id,
        phone=member.phone,
        first_name=member.first_name,
        tags=["vip"],
    )
    await consent_events.record_opt_out(account, "+61400000005", "sms", source="manual")
    await consent_events.record_opt_out(account, "+61400000010", "sms", source="manual")
    started = await streamed.start_list_campaign(
        _request(account, list_ids=[list_id], tags=["VIP"]), actor=SYSTEM
    )
    assert started.state == "accepting"
    assert await Message.count() == 0  # nothing accepted in the request
    outcome = await _run_to_end(started.batch_id)
    expected = sorted(
        [f"+614000{n:05d}" for n in range(1, 12) if n not in (5, 10)] + ["+61400099999"]
    )
    assert await _numbers_of(started.batch_id) == expected
    assert outcome.chunks == 3 and outcome.accepted == 10 and outcome.skipped == 2
    skips = await BatchSkip.select(BatchSkip.recipient, BatchSkip.reason).where(
        BatchSkip.batch_id == started.batch_id
    )
    assert sorted((s["recipient"], s["reason"]) for s in skips) == [
        ("+61400000005", "opted_out"),
        ("+61400000010", "opted_out"),
    ]
    progress = await messages.batch_progress(account, started.batch_id)
    assert (progress.accepted, progress.batch.skipped, progress.state) == (10, 2, "active")
    assert progress.skipped_by_reason() == {"opted_out": 2}
    assert progress.by_status == {"enqueued": 10}
    assert progress.batch.total_cost == 10 == await _reserved(started.batch_id)
    assert await ledger.balance(account) == 90
    bodies = await run_sql(
        "SELECT body FROM message WHERE to_number = '+61400000001' AND batch_id = {}",
        started.batch_id,
    )
    assert [r["body"] for r in bodies] == ["Hi P1"]


async def test_a_crash_inside_or_between_chunks_resumes_without_duplicates(world, monkeypatch):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _list_of(account, 10)
    started = await streamed.start_list_campaign(
        _request(account, list_ids=[list_id]), actor=SYSTEM
    )
    real_add = streamed._add_to_batch
    calls = 0

    async def crash_in_second_chunk(*args: object) -> None:
        nonlocal calls
        calls += 1
        await real_add(*args)  # type: ignore[arg-type]
        if calls == 2:  # after its messages and reservation were written: all roll back
            raise RuntimeError("worker killed")

    monkeypatch.setattr(streamed, "_add_to_batch", crash_in_second_chunk)
    with pytest.raises(RuntimeError, match="worker killed"):
        await streamed.run(started.batch_id)
    monkeypatch.setattr(streamed, "_add_to_batch", real_add)
    batch = await Batch.select().where(Batch.id == started.batch_id).first()
    assert (batch["state"], batch["accepted"]) == ("accepting", CHUNK)
    assert len(await _numbers_of(started.batch_id)) == CHUNK
    assert await _reserved(started.batch_id) == CHUNK
    # The sweep finds it once the grace is over, and two runs racing write each chunk once.
    from datetime import timedelta

    assert await streamed.stalled(timedelta(seconds=0)) == [started.batch_id]
    await asyncio.gather(streamed.run(started.batch_id), streamed.run(started.batch_id))
    await _run_to_end(started.batch_id)
    numbers = await _numbers_of(started.batch_id)
    assert numbers == sorted(f"+614000{n:05d}" for n in range(1, 11))
    assert await _reserved(started.batch_id) == 10
    assert await ledger.balance(account) == 90
    progress = await messages.batch_progress(account, started.batch_id)
    assert (progress.accepted, progress.batch.total_cost, progress.state) == (10, 10, "active")
    assert await streamed.stalled(timedelta(seconds=0)) == []


async def test_accepting_stops_at_the_credit_limit_and_skips_the_rest(world):
    account = world.accounts["alpha"]
    await fund(account, 6)  # one chunk of 4 is paid, the second (4 more) is not
    list_id = await _list_of(account, 10)
    started = await streamed.start_list_campaign(
        _request(account, list_ids=[list_id]), actor=SYSTEM
    )
    outcome = await _run_to_end(started.batch_id)
    assert outcome.accepted == CHUNK and outcome.skipped == 10 - CHUNK
    assert await ledger.balance(account) == 2  # never overdrawn
    assert await _reserved(started.batch_id) == CHUNK
    progress = await messages.batch_progress(account, started.batch_id)
    assert progress.batch.stop_reason == "insufficient_credits"
    assert progress.skipped_by_reason() == {"insufficient_credits": 6}
    assert (progress.accepted, progress.batch.skipped, progress.state) == (4, 6, "active")
    assert await BatchSkip.count().where(BatchSkip.reason == "insufficient_credits") == 6


async def test_progress_counters_equal_a_count_of_the_messages(world):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _list_of(account, 9)
    started = await streamed.start_list_campaign(
        _request(account, list_ids=[list_id]), actor=SYSTEM
    )
    await _run_to_end(started.batch_id)
    rows = await run_sql("SELECT id FROM message WHERE batch_id = {} ORDER BY id", started.batch_id)
    ids = [r["id"] for r in rows]
    async with transaction():
        await messages.set_status(ids[:6], "sent", None, allowed_from=["enqueued"])
        await messages.set_status(ids[:3], "delivered", None, allowed_from=["sent"])
        await messages.set_status(ids[3:5], "rejected", "SPAM", allowed_from=["sent"])
        await messages.set_status(ids[8:], "enqueued_failed", "X", allowed_from=["enqueued"])
    progress = await messages.batch_progress(account, started.batch_id)
    scan = await run_sql(
        "SELECT status, COUNT(*) AS n FROM message WHERE batch_id = {} GROUP BY status",
        started.batch_id,
    )
    assert progress.by_status == {r["status"]: int(r["n"]) for r in scan}
    assert progress.by_status == {
        "delivered": 3, "rejected": 2, "sent": 1, "enqueued": 2, "enqueued_failed": 1,
    }  # fmt: skip
    assert (progress.refunded, progress.spent) == (3, 6)
    assert await ledger.balance(account) == 100 - 6


async def test_a_cancelled_campaign_stops_accepting(world):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _list_of(account, 6)
    started = await streamed.start_list_campaign(
        _request(account, list_ids=[list_id]), actor=SYSTEM
    )
    await messages.set_batch_state(
        SYSTEM, account_id=account, batch_id=started.batch_id, action="cancel"
    )
    outcome = await streamed.run(started.batch_id)
    assert outcome.finished and outcome.accepted == 0
    assert await Message.count() == 0 and await ledger.balance(account) == 100


async def test_a_bad_request_or_a_siblings_list_is_refused_at_once(world):
    account = world.accounts["alpha"]
    sibling_list = await _list_of(world.accounts["beta"], 2)
    with pytest.raises(ValidationFailed) as exc:
        await streamed.start_list_campaign(_request(account, list_ids=[sibling_list]), actor=SYSTEM)
    assert "list_ids" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        await streamed.start_list_campaign(
            _request(account, list_ids=[sibling_list], body=" "), actor=SYSTEM
        )
    assert "body" in exc.value.errors
    assert await Batch.count() == 0


async def test_an_idempotency_key_starts_one_campaign(world):
    account = world.accounts["alpha"]
    list_id = await _list_of(account, 2)
    req = _request(account, list_ids=[list_id], idempotency_key="spring-1")
    first = await streamed.start_list_campaign(req, actor=SYSTEM)
    again = await streamed.start_list_campaign(req, actor=SYSTEM)
    assert again.replayed and again.batch_id == first.batch_id
    assert await Batch.count() == 1


def test_only_named_campaigns_to_lists_sent_now_are_streamed():
    assert streamed.is_streamed(_request(1, list_ids=[1]))
    assert streamed.is_streamed(_request(1, tags=["vip"]))
    assert not streamed.is_streamed(_request(1, list_ids=[1], campaign_name=None))
    assert not streamed.is_streamed(_request(1, list_ids=[1], numbers=["+61400000001"]))
    assert not streamed.is_streamed(_request(1, numbers=["+61400000001"]))


async def test_the_preview_counts_what_the_campaign_then_accepts_and_writes_nothing(
    world, monkeypatch
):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _list_of(account, 11)
    for n in (2, 5, 10):
        await consent_events.record_opt_out(account, f"+614000{n:05d}", "sms", source="manual")
    monkeypatch.setattr(streamed, "PREVIEW_SHOWN", 2)
    before = await ledger.balance(account)
    req = _request(account, list_ids=[list_id], body="Hello {{first_name}}, " + "x" * 160)
    shown = await streamed.preview(req)
    assert shown.dry_run
    assert (shown.accepted_count, shown.skipped_count) == (8, 3)
    assert shown.skipped_by_reason() == {"opted_out": 3}
    # Every skipped one counted, only the first PREVIEW_SHOWN of them kept in memory.
    assert shown.skipped == [("+61400000002", "opted_out"), ("+61400000005", "opted_out")]
    assert shown.accepted_phones(10) == ["+61400000001", "+61400000003"]
    assert shown.segments == 16  # two segments each (over 160 characters)
    assert await Message.count() == 0 and await Batch.count() == 0
    assert await ledger.balance(account) == before
    started = await streamed.start_list_campaign(req, actor=SYSTEM)
    await _run_to_end(started.batch_id)
    batch = await Batch.select().where(Batch.id == started.batch_id).first()
    assert (batch["accepted"], batch["skipped"]) == (8, 3)
    assert (batch["segments"], batch["total_cost"]) == (shown.segments, shown.total_cost)


async def test_the_preview_refuses_what_the_send_would(world):
    account = world.accounts["alpha"]
    with pytest.raises(ValidationFailed) as refused:
        await streamed.preview(_request(account, list_ids=[987654]))
    assert "list_ids" in refused.value.errors


async def test_the_preview_of_a_list_past_its_bound_says_the_list_goes_on(world, monkeypatch):
    account = world.accounts["alpha"]
    list_id = await _list_of(account, 11)
    monkeypatch.setattr(streamed, "PREVIEW_CONTACTS", 6)  # two chunks of CHUNK (4)
    shown = await streamed.preview(_request(account, list_ids=[list_id]))
    assert (shown.contacts_planned, shown.accepted_count, shown.more) == (8, 8, True)
    monkeypatch.setattr(streamed, "PREVIEW_CONTACTS", 11)
    whole = await streamed.preview(_request(account, list_ids=[list_id]))
    assert (whole.contacts_planned, whole.accepted_count, whole.more) == (11, 11, False)
