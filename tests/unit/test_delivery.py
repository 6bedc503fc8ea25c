"""The outbox after acceptance: submission through the simulator, status callbacks that are
duplicated and reordered, the state machine that never moves backwards, the sweeper."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tasks.gateways import gateway_for
from tenants.consent import events as consent_events
from tenants.messaging import messages
from tenants.messaging import outbox as dispatch
from tenants.messaging.messages import StatusReport, can_apply
from tenants.messaging.tables import Batch, InboundReply, Message, MessageEvent
from tests.factories import wait_until


async def make_outbox(account_id: int, numbers: list[str], *, cost: int = 0, state: str = "active"):
    """Messages as accept_send leaves them (enqueued), without credits or consent."""
    rows = await Batch.insert(
        Batch(
            account_id=account_id,
            state=state,
            accepted=len(numbers),
            total_cost=cost * len(numbers),
        )
    ).returning(Batch.id)
    batch_id = rows[0]["id"]
    ids = []
    for number in numbers:
        inserted = await Message.insert(
            Message(
                account_id=account_id,
                batch_id=batch_id,
                to_number=number,
                from_number="Alpha",
                body="Hello",
                cost=cost,
            )
        ).returning(Message.id)
        ids.append(inserted[0]["id"])
    return batch_id, ids


async def status_of(message_id: int) -> str:
    row = await Message.select(Message.status).where(Message.id == message_id).first()
    return row["status"]


async def settle(simulator, ids: list[int], status: str) -> list[str]:
    """Post every pending callback and wait (bounded) until the messages reach `status`;
    the simulator's own background flusher may be posting some of them already."""

    async def reached() -> list[str] | None:
        await simulator.flush(everything=True)
        statuses = [await status_of(i) for i in ids]
        return statuses if all(s == status for s in statuses) else None

    return await wait_until(reached, 5, what=f"messages {ids} to be {status}")


def test_state_machine_only_moves_forward():
    assert can_apply("enqueued", "sent")
    assert can_apply("sent", "delivered")
    assert can_apply("delivered", "read")
    assert can_apply("enqueued", "delivered")  # a callback may overtake our own `sent`
    assert not can_apply("delivered", "sent")
    assert not can_apply("read", "delivered")
    assert not can_apply("failed", "delivered")
    assert not can_apply("rejected", "sent")
    assert not can_apply("enqueued_failed", "sent")


def _report(message_id: int, status: str, n: int, code: str | None = None) -> StatusReport:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return StatusReport(message_id, status, at, code, "ref-1", f"evt-{message_id}-{status}")


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["sent", "delivered", "read", "delivered"]))[::3]
)
async def test_callbacks_in_any_order_with_duplicates_end_on_the_same_state(world, order):
    _, (message_id,) = await make_outbox(world.accounts["alpha"], ["+61400000001"])
    for n, status in enumerate(order):
        await messages.ingest_status_reports([_report(message_id, status, n)])
    assert await status_of(message_id) == "read"
    view = await messages.get_message(world.accounts["alpha"], message_id)
    recorded = [e.status for e in view.events]
    # enqueued (creation) + three distinct provider events; the duplicate is stored once
    assert sorted(recorded) == sorted(["enqueued", "sent", "delivered", "read"])


async def test_a_late_sent_after_delivered_is_recorded_not_applied(world):
    account = world.accounts["alpha"]
    _, (message_id,) = await make_outbox(account, ["+61400000001"])
    result = await messages.ingest_status_reports([_report(message_id, "delivered", 1)])
    assert result.applied == 1
    result = await messages.ingest_status_reports([_report(message_id, "sent", 2)])
    assert result.late == 1 and result.applied == 0
    view = await messages.get_message(account, message_id)
    assert view.status == "delivered"
    late = [e for e in view.events if e.status == "sent"]
    assert len(late) == 1 and late[0].applied is False


async def test_the_provider_ref_is_written_with_the_sent_move_or_alone_when_none_moves(
    world, monkeypatch
):
    """The worker's `sent` carries the provider's reference in the same UPDATE (one row
    version, not two); a message a callback already moved on takes its reference alone,
    and a reference already known is kept."""
    account = world.accounts["alpha"]
    _, (moving, ahead, known) = await make_outbox(
        account, ["+61400000001", "+61400000002", "+61400000003"]
    )
    await messages.apply_statuses([(ahead, "delivered", None)])  # moved on, no reference
    await Message.update({Message.provider_ref: "first"}).where(Message.id == known)
    statements: list[str] = []
    real_run_sql = messages.run_sql

    async def recording(template: str, *args: object) -> list[dict[str, object]]:
        if template.startswith("UPDATE message"):
            statements.append(template)
        return await real_run_sql(template, *args)

    monkeypatch.setattr(messages, "run_sql", recording)
    applied = await messages.apply_statuses(
        [(m, "sent", None) for m in (moving, ahead, known)],
        provider_ref={moving: "ref-moving", ahead: "ref-ahead", known: "second"},
    )
    assert applied == {(moving, "sent"), (known, "sent")}
    rows = await Message.select(Message.id, Message.status, Message.provider_ref)
    assert {r["id"]: (r["status"], r["provider_ref"]) for r in rows} == {
        moving: ("sent", "ref-moving"),
        ahead: ("delivered", "ref-ahead"),
        known: ("sent", "first"),
    }
    # One UPDATE moved the two with their references; the one left took its own.
    assert len(statements) == 2
    assert "provider_ref = COALESCE(provider_ref" in statements[0]
    assert statements[1].startswith("UPDATE message SET provider_ref = CASE id")


async def test_failed_is_final_and_explained_in_words(world):
    account = world.accounts["alpha"]
    _, (message_id,) = await make_outbox(account, ["+61400000001"])
    # The provider timed the failure after the delivery report (the latest wins).
    await messages.ingest_status_reports(
        [
            _report(message_id, "failed", 2, "RECIPIENT_NOT_REACHABLE"),
            _report(message_id, "delivered", 1),
        ]
    )
    view = await messages.get_message(account, message_id)
    assert view.status == "failed"
    assert "out of coverage" in view.error_explanation


async def test_callbacks_for_unknown_messages_change_nothing(world):
    result = await messages.ingest_status_reports([_report(999_999, "delivered", 1)])
    assert result.unknown == 1
    assert await MessageEvent.count() == 0


async def test_submission_through_the_simulator_reaches_delivered(world, simulator):
    # Callbacks wait for the explicit flush below, so `sent` is observed before `delivered`
    # (with no delay the simulator's background flusher races the first assertion).
    simulator.configure({"callback_delay_ms": 60_000})
    account = world.accounts["alpha"]
    _, ids = await make_outbox(account, ["+61400000001", "+61400000002"])
    outcome = await dispatch.submit_chunk(ids, gateway_for)
    assert outcome.sent == 2
    # the simulator may already have reported delivery: the status is at least sent
    assert {await status_of(i) for i in ids} <= {"sent", "delivered"}
    assert await settle(simulator, ids, "delivered") == ["delivered", "delivered"]
    # a second run of the same chunk (a redelivered broker message) submits nothing
    again = await dispatch.submit_chunk(ids, gateway_for)
    assert again.claimed == 0
    assert {r["message_id"]: r["submissions"] for r in simulator.outbox()} == {i: 1 for i in ids}


async def test_consent_is_checked_again_at_submission_except_for_a_confirmation(world, simulator):
    """Opted out after the send was accepted: failed OPTED_OUT, not submitted; the reply
    confirming that opt-out (a compliance confirmation) is submitted all the same."""
    simulator.configure({"callback_delay_ms": 60_000})
    account = world.accounts["alpha"]
    _, (kept, stopped, confirming) = await make_outbox(
        account, ["+61400000001", "+61400000002", "+61400000002"]
    )
    await consent_events.record_opt_out(account, "+61400000002", "sms", source="manual")
    await InboundReply.insert(InboundReply(route_id=1, message_id=confirming, kind="confirmation"))
    outcome = await dispatch.submit_chunk([kept, stopped, confirming], gateway_for)
    assert (outcome.sent, outcome.skipped_consent) == (2, 1)
    assert await status_of(stopped) == "enqueued_failed"
    row = await Message.select(Message.error_code).where(Message.id == stopped).first()
    assert row["error_code"] == "OPTED_OUT"
    assert {r["message_id"] for r in simulator.outbox()} == {kept, confirming}


async def test_a_worker_killed_after_the_provider_answered_does_not_submit_twice(world, simulator):
    account = world.accounts["alpha"]
    _, ids = await make_outbox(account, ["+61400000001"])
    await dispatch.submit_chunk(ids, gateway_for)
    assert await settle(simulator, ids, "delivered") == ["delivered"]
    # Simulate the crash: the provider has it, but our `sent` was never written and the
    # claim is left behind by a dead worker.
    await Message.update(
        {
            Message.status: "enqueued",
            Message.claimed_at: datetime.now(UTC) - timedelta(hours=1),
            Message.claim_token: "dead",
        }
    ).where(Message.id == ids[0])
    await MessageEvent.delete(force=True)
    outcome = await dispatch.submit_chunk(ids, gateway_for)
    assert outcome.reconciled == 1
    assert await status_of(ids[0]) == "sent"
    assert simulator.outbox()[0]["submissions"] == 1


async def test_paused_batches_are_held_and_resume_later(world, simulator):
    account = world.accounts["alpha"]
    batch_id, ids = await make_outbox(account, ["+61400000001"], state="paused")
    outcome = await dispatch.submit_chunk(ids, gateway_for)
    assert outcome.claimed == 0 and await status_of(ids[0]) == "enqueued"
    from tenants.audit.record import SYSTEM

    await messages.set_batch_state(SYSTEM, account_id=account, batch_id=batch_id, action="resume")
    outcome = await dispatch.submit_chunk(ids, gateway_for)
    assert outcome.sent == 1


async def test_sweeper_redispatches_lost_work_once(world):
    account = world.accounts["alpha"]
    _, ids = await make_outbox(account, ["+61400000001", "+61400000002"])
    assert await dispatch.lost_work() == []  # just dispatched: not lost yet
    old = datetime.now(UTC) - timedelta(hours=1)
    await Message.update({Message.dispatched_at: old}).where(Message.id.is_in(ids))
    assert await dispatch.lost_work() == [sorted(ids)]
    assert await dispatch.lost_work() == []  # taken: a second sweeper finds nothing


async def test_scheduled_batches_are_released_on_time(world):
    account = world.accounts["alpha"]
    batch_id, ids = await make_outbox(account, ["+61400000001"], state="scheduled")
    future = datetime.now(UTC) + timedelta(hours=1)
    await Batch.update({Batch.send_at: future}).where(Batch.id == batch_id)
    assert await dispatch.release_due_batches() == []
    past = datetime.now(UTC) - timedelta(seconds=1)
    await Batch.update({Batch.send_at: past}).where(Batch.id == batch_id)
    assert await dispatch.release_due_batches() == [ids]
    assert await dispatch.release_due_batches() == []


async def test_rate_limiter_is_shared_and_refuses_long_waits(world):
    wait = await dispatch.take_tokens("sender:test", 10, 10, max_wait=2)
    assert wait == 0.0
    wait = await dispatch.take_tokens("sender:test", 10, 10, max_wait=2)
    assert wait is not None and 0.5 < wait <= 1.0
    # a big chunk may start once its turn comes, and pushes everyone after it back
    assert await dispatch.take_tokens("sender:test", 100, 10, max_wait=2) is not None
    assert await dispatch.take_tokens("sender:test", 1, 10, max_wait=2) is None


def serving(gateway):
    """A gateway_for that always answers with this gateway."""

    async def gateway_for(provider):
        return gateway

    return gateway_for


class FlakyGateway:
    """A provider that times out once after receiving the batch, then answers."""

    name = "simulator"
    channels = frozenset({"sms"})

    def __init__(self) -> None:
        self.received: list[int] = []
        self.fail_next = True

    async def submit(self, batch):
        self.received.extend(m.message_id for m in batch)
        if self.fail_next:
            self.fail_next = False
            raise dispatch.TransientProviderError("timeout after the request went out")
        return [dispatch.SubmitResult(m.message_id, True, f"ref-{m.message_id}") for m in batch]

    async def lookup(self, batch):
        # It did receive the first attempt: the retry must find it instead of resending.
        return {m.message_id: f"ref-{m.message_id}" for m in batch if m.message_id in self.received}


async def test_a_timeout_is_retried_by_lookup_not_by_sending_again(world):
    account = world.accounts["alpha"]
    _, ids = await make_outbox(account, ["+61400000001", "+61400000002"])
    gateway = FlakyGateway()
    first = await dispatch.submit_chunk(ids, serving(gateway))
    assert first.transient and sorted(first.remaining) == sorted(ids)
    assert [await status_of(i) for i in ids] == ["enqueued", "enqueued"]
    second = await dispatch.submit_chunk(ids, serving(gateway))
    assert second.reconciled == 2
    assert [await status_of(i) for i in ids] == ["sent", "sent"]
    assert sorted(gateway.received) == sorted(ids)  # each handed over once


async def test_a_provider_down_for_good_fails_the_message_after_the_last_attempt(
    world, settings_env
):
    settings_env(MAX_SUBMIT_ATTEMPTS="2")
    account = world.accounts["alpha"]
    _, ids = await make_outbox(account, ["+61400000001"])

    class Down(FlakyGateway):
        async def submit(self, batch):
            raise dispatch.TransientProviderError("connection refused")

        async def lookup(self, batch):
            return {}

    gateway = Down()
    for _ in range(2):
        assert (await dispatch.submit_chunk(ids, serving(gateway))).transient
    last = await dispatch.submit_chunk(ids, serving(gateway))
    assert last.failed == 1
    view = await messages.get_message(account, ids[0])
    assert view.status == "enqueued_failed" and view.error_code == "PROVIDER_UNAVAILABLE"


async def test_an_unexpected_error_lets_go_of_the_chunk_for_the_retry(world):
    account = world.accounts["alpha"]
    _, ids = await make_outbox(account, ["+61400000001"])

    class Broken(FlakyGateway):
        async def submit(self, batch):
            self.received.extend(m.message_id for m in batch)
            raise RuntimeError("a bug or a dropped database connection")

    with pytest.raises(RuntimeError):
        await dispatch.submit_chunk(ids, serving(Broken()))
    gateway = FlakyGateway()
    gateway.fail_next = False
    retry = await dispatch.submit_chunk(ids, serving(gateway))
    assert retry.claimed == 1 and retry.sent == 1
