"""Recurring sends and quiet hours with a controlled clock: wall-clock times across DST,
the last weekday of a month, holds released at the right moment in the recipient's zones,
each run released once by racing schedulers, and consent and credits decided at release."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tenants import clock as domain_clock
from tenants.accounts.tables import Account
from tenants.accounts.tree import get_account
from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.errors import PermissionDenied, ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging import outbox, quiet_hours, recurrence, recurring
from tenants.messaging.recurring import ScheduleInput
from tenants.messaging.tables import Batch, Message, RecurringRun
from tenants.templates import templates
from tests.factories import fund

SYDNEY = ZoneInfo("Australia/Sydney")
ORIGINAL_NOW = domain_clock.now


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the whole domain: every tenants module that took `now` from
    tenants.clock reads this one."""
    c = Clock(datetime(2026, 9, 20, 0, 0, tzinfo=UTC))
    for name, module in list(sys.modules.items()):
        if name.startswith("tenants") and getattr(module, "now", None) is ORIGINAL_NOW:
            monkeypatch.setattr(module, "now", c)
    return c


def weekly_rule(**kw) -> recurrence.Rule:
    return recurrence.Rule(
        frequency="weekly",
        local_time=time(9, 0),
        zone=SYDNEY,
        start=date(2026, 9, 21),
        weekdays=frozenset({0}),
        **kw,
    )


def test_a_weekly_run_keeps_its_wall_clock_time_across_daylight_saving():
    runs = list(
        recurrence.runs_from(
            weekly_rule(until=date(2026, 10, 12)), datetime(2026, 9, 1, tzinfo=UTC)
        )
    )
    # Sydney moves to AEDT (UTC+11) on Sunday 4 October 2026.
    assert runs == [
        datetime(2026, 9, 20, 23, 0, tzinfo=UTC),
        datetime(2026, 9, 27, 23, 0, tzinfo=UTC),
        datetime(2026, 10, 4, 22, 0, tzinfo=UTC),
        datetime(2026, 10, 11, 22, 0, tzinfo=UTC),
    ]
    assert {r.astimezone(SYDNEY).strftime("%a %H:%M") for r in runs} == {"Mon 09:00"}


def test_a_time_in_the_spring_gap_runs_just_after_it():
    rule = recurrence.Rule("daily", time(2, 30), SYDNEY, date(2026, 10, 4), until=date(2026, 10, 4))
    (run,) = recurrence.runs_from(rule, datetime(2026, 10, 1, tzinfo=UTC))
    assert run.astimezone(SYDNEY).strftime("%H:%M") == "03:30"


def test_monthly_on_the_last_weekday_and_on_a_day_a_month_lacks():
    rule = recurrence.Rule(
        "monthly", time(17, 0), SYDNEY, date(2026, 10, 1), month_day=recurrence.LAST_WEEKDAY
    )
    days = [r.astimezone(SYDNEY).date() for r in recurrence.upcoming(
        rule, recurrence.next_run(rule, datetime(2026, 10, 1, tzinfo=UTC)), 0, 5
    )]  # fmt: skip
    # 31 Oct 2026 is a Saturday, 31 Jan 2027 and 28 Feb 2027 Sundays.
    assert days == [
        date(2026, 10, 30),
        date(2026, 11, 30),
        date(2026, 12, 31),
        date(2027, 1, 29),
        date(2027, 2, 26),
    ]
    rule31 = recurrence.Rule("monthly", time(9, 0), SYDNEY, date(2027, 1, 1), month_day=31)
    first = recurrence.next_run(rule31, datetime(2027, 1, 1, tzinfo=UTC))
    days = [r.astimezone(SYDNEY).date() for r in recurrence.upcoming(rule31, first, 0, 3)]
    assert days == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]


def test_a_count_ends_the_schedule():
    rule = weekly_rule(max_runs=2)
    assert recurrence.next_run(rule, datetime(2026, 9, 1, tzinfo=UTC), runs_counted=2) is None
    assert len(recurrence.upcoming(rule, datetime(2026, 9, 20, 23, tzinfo=UTC), 1, 10)) == 1


WINDOW = quiet_hours.QuietWindow(True, time(9), time(20), frozenset({6}), 1)


@pytest.mark.parametrize(
    ("number", "at", "released"),
    [
        # Sydney landline, Tue 1 Dec 2026 06:00 AEDT (19:00 UTC the day before): 09:00 AEDT.
        ("+61293744000", "2026-11-30T19:00", "2026-11-30T22:00"),
        # Perth (+61 8 9): 09:00 AWST is 01:00 UTC; Adelaide (also listed) is open by then.
        ("+61892123456", "2026-11-30T19:00", "2026-12-01T01:00"),
        # An Australian mobile: any zone from Cocos (+6:30) to Lord Howe (+11): Cocos opens last.
        ("+61412345678", "2026-11-30T19:00", "2026-12-01T02:30"),
        # New York at 21:00 Monday local: the next morning 09:00 EST.
        ("+12125550123", "2026-12-01T02:00", "2026-12-01T14:00"),
        # Los Angeles, Saturday 21:00 PST: Sunday is closed, so Monday 09:00.
        ("+13105550123", "2026-12-06T05:00", "2026-12-07T17:00"),
        # A UK mobile on Sunday noon: Monday 09:00 GMT.
        ("+447400123456", "2026-12-06T12:00", "2026-12-07T09:00"),
    ],
)
def test_quiet_hours_release_at_the_first_moment_open_in_every_zone(number, at, released):
    instant = datetime.fromisoformat(at).replace(tzinfo=UTC)
    held = quiet_hours.hold_until(WINDOW, instant, [number], ZoneInfo("UTC"))
    assert held == {number: datetime.fromisoformat(released).replace(tzinfo=UTC)}
    zones = quiet_hours.zones_for_number(number, ZoneInfo("UTC"))
    assert all(WINDOW.allows(held[number], z) for z in zones)
    assert not all(WINDOW.allows(held[number] - timedelta(minutes=1), z) for z in zones)


def test_a_number_open_now_is_not_held_and_a_toll_free_one_still_gets_a_time():
    noon_sydney = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert quiet_hours.hold_until(WINDOW, noon_sydney, ["+61293744000"], ZoneInfo("UTC")) == {}
    # +1 800 spans Guam to Hawaii: no moment is open in all, its first zone decides.
    held = quiet_hours.hold_until(WINDOW, noon_sydney, ["+18005550123"], ZoneInfo("UTC"))
    assert all(v > noon_sydney for v in held.values())


OVERNIGHT = quiet_hours.QuietWindow(True, time(21), time(8), frozenset({6}), 1)
LONDON = ZoneInfo("Europe/London")
UK_MOBILE = "+447400123456"  # Europe/London only


@pytest.mark.parametrize(
    ("at", "released"),
    [
        # Monday 12:00 GMT: the window opens at 21:00 the same evening.
        ("2026-11-30T12:00", "2026-11-30T21:00"),
        # Monday 23:30 and Tuesday 07:59: inside the window across midnight.
        ("2026-11-30T23:30", None),
        ("2026-12-01T07:59", None),
        # Tuesday 08:00: closed (the end is not inside) until 21:00.
        ("2026-12-01T08:00", "2026-12-01T21:00"),
        # Saturday 23:00 is open; Sunday (no sends) is closed all day, also its early
        # hours; Monday opens at midnight.
        ("2026-12-05T23:00", None),
        ("2026-12-06T01:00", "2026-12-07T00:00"),
        ("2026-12-06T22:00", "2026-12-07T00:00"),
        # DST ends Sun 25 Oct 2026 (02:00 BST back to 01:00 GMT), Sundays open here: the
        # window still closes at 08:00 on the wall clock, 08:00 UTC, not 07:00.
        ("2026-10-25T07:30", None),
        ("2026-10-25T08:00", "2026-10-25T21:00"),
        # Sat 24 Oct 13:00 BST: opens 21:00 BST = 20:00 UTC.
        ("2026-10-24T12:00", "2026-10-24T20:00"),
        # DST starts Sun 29 Mar 2026 (01:00 GMT to 02:00 BST): closes 08:00 BST = 07:00 UTC.
        ("2026-03-29T06:59", None),
        ("2026-03-29T07:00", "2026-03-29T20:00"),
    ],
)
def test_an_overnight_window_holds_and_releases_across_midnight_and_dst(at, released):
    window = replace(
        OVERNIGHT, days=frozenset() if at[:7] in ("2026-10", "2026-03") else frozenset({6})
    )
    instant = datetime.fromisoformat(at).replace(tzinfo=UTC)
    held = quiet_hours.hold_until(window, instant, [UK_MOBILE], ZoneInfo("UTC"))
    if released is None:
        assert held == {} and window.allows(instant, LONDON)
        return
    opens = datetime.fromisoformat(released).replace(tzinfo=UTC)
    assert held == {UK_MOBILE: opens}
    assert window.allows(opens, LONDON)
    assert not window.allows(opens - timedelta(seconds=1), LONDON)


def test_a_window_opening_in_the_skipped_dst_hour_opens_when_the_clocks_jump():
    """01:30 does not exist in London on 29 Mar 2026 (01:00 GMT jumps to 02:00 BST): the
    window opens at the jump, 01:00 UTC, not an hour late."""
    window = quiet_hours.QuietWindow(True, time(1, 30), time(8), frozenset(), 1)
    instant = datetime(2026, 3, 29, 0, 10, tzinfo=UTC)
    assert window.next_in_zone(instant, LONDON) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    overnight = quiet_hours.QuietWindow(True, time(23), time(1, 30), frozenset(), 1)
    # Overnight to 01:30: on that night the clock never shows 01:00-02:00, the window
    # (23:00 to 01:30) closes at the jump, 01:00 UTC.
    assert overnight.allows(datetime(2026, 3, 29, 0, 59, tzinfo=UTC), LONDON)
    assert not overnight.allows(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), LONDON)


def test_an_overnight_window_is_described_and_a_zero_length_one_refused():
    assert OVERNIGHT.describe() == (
        "Sends go 21:00 to 08:00 (overnight) in the recipient's time, never on Sun"
    )
    assert quiet_hours.validate_window("21:00", "08:00", [6]) == (time(21), time(8), [6])
    with pytest.raises(ValidationFailed) as bad:
        quiet_hours.validate_window("08:00", "08:00", [])
    assert set(bad.value.errors) == {"end"}


async def _sydney(account_id: int) -> None:
    await Account.update({Account.timezone: "Australia/Sydney"}).where(Account.id == account_id)


async def test_a_send_in_quiet_hours_is_held_and_released_at_its_time(world, clock):
    account = world.accounts["alpha"]
    await fund(account)
    await quiet_hours.set_quiet_hours(
        SYSTEM, account, enabled=True, start="09:00", end="20:00", days=[6]
    )
    child = world.accounts["alpha-one"]
    assert (await quiet_hours.effective_quiet_hours(child)).from_account_id == account  # inherited
    clock.set(datetime(2026, 11, 30, 19, 0, tzinfo=UTC))  # 06:00 in Sydney
    req = sending.SendRequest(
        account_id=account,
        numbers=["+61293744000", "+61892123456"],
        body="Sale!",
        permissions=sending.PLATFORM_SEND,
    )
    preview = await sending.accept_send(req, actor=SYSTEM, dry_run=True)
    assert (preview.held, preview.held_until) == (2, datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    result = await sending.accept_send(req, actor=SYSTEM)
    assert result.chunks == []  # nothing goes now
    held = {
        r["to_number"]: r["held_until"]
        for r in await Message.select().where(Message.batch_id == result.batch_id)
    }
    assert held["+61293744000"] == datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    clock.set(datetime(2026, 11, 30, 21, 59, tzinfo=UTC))
    assert await outbox.release_held_messages() == []
    clock.set(datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    first, again = await asyncio.gather(
        outbox.release_held_messages(), outbox.release_held_messages()
    )
    assert sum(len(c) for c in first + again) == 1  # Sydney's, once
    clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    assert sum(len(c) for c in await outbox.release_held_messages()) == 1  # then Perth's


async def test_an_overnight_window_holds_a_midday_send_until_the_evening(world, clock):
    account = world.accounts["alpha"]
    await fund(account)
    await quiet_hours.set_quiet_hours(
        SYSTEM, account, enabled=True, start="21:00", end="08:00", days=[]
    )
    clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 12:00 in Sydney (AEDT, +11)
    req = sending.SendRequest(
        account_id=account,
        numbers=["+61293744000"],
        body="Night owls",
        permissions=sending.PLATFORM_SEND,
    )
    result = await sending.accept_send(req, actor=SYSTEM)
    assert (result.held, result.held_until) == (1, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 1, 9, 59, tzinfo=UTC))
    assert await outbox.release_held_messages() == []
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))  # 21:00 in Sydney
    assert sum(len(c) for c in await outbox.release_held_messages()) == 1
    clock.set(datetime(2026, 12, 1, 20, 0, tzinfo=UTC))  # 07:00 the next morning: open
    assert (await sending.accept_send(req, actor=SYSTEM, dry_run=True)).held == 0


async def test_an_exempt_template_and_an_account_override_go_at_once(world, clock):
    account = world.accounts["alpha"]
    await fund(account)
    await quiet_hours.set_quiet_hours(SYSTEM, account, enabled=True)
    await quiet_hours.set_quiet_hours(SYSTEM, world.accounts["alpha-one"], enabled=False)
    clock.set(datetime(2026, 11, 30, 19, 0, tzinfo=UTC))
    req = sending.SendRequest(
        account_id=world.accounts["alpha-one"],
        numbers=["+61293744000"],
        body="Code 1234",
        permissions=sending.PLATFORM_SEND,
    )
    await fund(world.accounts["alpha-one"])
    assert (await sending.accept_send(req, actor=SYSTEM, dry_run=True)).held == 0
    template = await templates.ensure_approved_template(
        actor=SYSTEM,
        account_id=account,
        name="Code",
        body="Your code is {{code}}",
        shared_down=False,
    )
    coded = sending.SendRequest(
        account_id=account, numbers=["+61293744000"], template_id=template.id,
        variables={"code": "1"}, permissions=sending.PLATFORM_SEND,
    )  # fmt: skip
    assert (await sending.accept_send(coded, actor=SYSTEM, dry_run=True)).held == 1
    await templates.set_quiet_exempt(
        actor=SYSTEM, account_id=account, template_id=template.id, exempt=True
    )
    assert (await sending.accept_send(coded, actor=SYSTEM, dry_run=True)).held == 0
    with pytest.raises(ValidationFailed) as bad:
        await quiet_hours.set_quiet_hours(
            SYSTEM, account, enabled=True, start="21:00", end="21:00", days=[9]
        )
    assert set(bad.value.errors) == {"end", "days"}


def schedule_input(**kw) -> ScheduleInput:
    values = {
        "name": "Monday specials",
        "body": "Specials this week",
        "numbers": ["+61293744000"],
        "frequency": "weekly",
        "weekdays": [0],
        "local_time": "09:00",
        "start_date": "2026-09-21",
    }
    values.update(kw)
    return ScheduleInput(**values)


async def _release_at(clock: Clock, at: datetime) -> recurring.ReleaseOutcome:
    clock.set(at)
    return await recurring.release_due_runs()


async def test_weekly_runs_across_dst_each_released_once_by_racing_schedulers(world, clock):
    account = world.accounts["alpha"]
    await _sydney(account)
    await fund(account)
    view = await recurring.create_schedule(
        SYSTEM, account, schedule_input(campaign=True, max_runs=3), sending.PLATFORM_SEND
    )
    assert view.upcoming[:3] == [
        datetime(2026, 9, 20, 23, 0, tzinfo=UTC),
        datetime(2026, 9, 27, 23, 0, tzinfo=UTC),
        datetime(2026, 10, 4, 22, 0, tzinfo=UTC),  # after the change: still 09:00 local
    ]
    assert (await _release_at(clock, datetime(2026, 9, 20, 22, 59, tzinfo=UTC))).released == 0
    for due in view.upcoming:
        clock.set(due)
        outcomes = await asyncio.gather(*(recurring.release_due_runs() for _ in range(3)))
        assert sum(o.released for o in outcomes) == 1
    done = await recurring.get_schedule(account, view.id)
    assert done.state == "ended" and done.runs_counted == 3
    runs = done.runs
    assert [r.state for r in runs] == ["released"] * 3
    assert len({r.batch_id for r in runs}) == 3
    batches = await Batch.select().where(Batch.id.is_in([r.batch_id for r in runs]))
    assert all(b["accepted"] == 1 and b["campaign_id"] for b in batches)
    assert await RecurringRun.count() == 3


async def test_a_run_whose_process_died_is_finished_once(world, clock):
    account = world.accounts["alpha"]
    await _sydney(account)
    await fund(account)
    view = await recurring.create_schedule(SYSTEM, account, schedule_input(), sending.PLATFORM_SEND)
    due = view.next_run_at
    assert due is not None
    clock.set(due)
    row = (
        await recurring.RecurringSchedule.select().where(recurring.RecurringSchedule.id == view.id)
    )[0]
    assert await recurring._claim_run(row, due) is not None  # the process dies here
    assert await recurring._claim_run(row, due) is None  # a second claim loses
    clock.set(due + recurring.STUCK_AFTER + timedelta(seconds=1))
    await asyncio.gather(recurring.release_due_runs(), recurring.release_due_runs())
    runs = (await recurring.get_schedule(account, view.id)).runs
    assert [r.state for r in runs] == ["released"]
    assert await Batch.count().where(Batch.account_id == account) == 1


async def test_credits_and_consent_are_decided_at_release(world, clock):
    account = world.accounts["alpha"]
    await _sydney(account)
    view = await recurring.create_schedule(
        SYSTEM,
        account,
        schedule_input(numbers=["+61293744000", "+61293744001"]),
        sending.PLATFORM_SEND,
    )  # no credits yet: creating costs nothing
    clock.set(view.upcoming[0])
    outcome = await recurring.release_due_runs()
    assert (outcome.released, outcome.failed) == (0, 1)
    (run,) = (await recurring.get_schedule(account, view.id)).runs
    assert run.state == "failed" and run.reason.startswith("insufficient_credits")
    await fund(account)
    await consent_events.record_opt_out(account, "+61293744001", "sms", source="manual")
    clock.set(view.upcoming[1])
    assert (await recurring.release_due_runs()).released == 1
    latest = (await recurring.get_schedule(account, view.id)).runs[0]
    assert (latest.state, latest.accepted, latest.skipped) == ("released", 1, 1)
    master = await get_account(account)
    counted = await recurring.count_runs(master, date(2026, 9, 1), date(2026, 10, 31))
    assert counted == {"failed": 1, "released": 1}  # what the usage report shows
    assert await recurring.count_runs(master, date(2026, 11, 1), date(2026, 11, 30)) == {}


async def test_pause_skip_edit_and_end(world, clock):
    account = world.accounts["alpha"]
    await _sydney(account)
    await fund(account)
    view = await recurring.create_schedule(SYSTEM, account, schedule_input(), sending.PLATFORM_SEND)
    first, second, third = view.upcoming[:3]
    skipped = await recurring.act(SYSTEM, account, view.id, "skip")
    assert skipped.next_run_at == second and skipped.runs[0].state == "skipped"
    paused = await recurring.act(SYSTEM, account, view.id, "pause")
    assert paused.next_run_at is None
    clock.set(second)
    assert (await recurring.release_due_runs()).released == 0
    resumed = await recurring.act(SYSTEM, account, view.id, "resume")
    assert resumed.next_run_at == third  # the run missed while paused is not sent
    edited = await recurring.update_schedule(
        SYSTEM,
        account,
        view.id,
        schedule_input(local_time="18:30", body="Evening"),
        sending.PLATFORM_SEND,
    )
    assert (
        edited.next_run_at is not None
        and edited.next_run_at.astimezone(SYDNEY).strftime("%H:%M") == "18:30"
    )
    clock.set(edited.next_run_at)
    await recurring.release_due_runs()
    batch_id = (await recurring.get_schedule(account, view.id)).runs[0].batch_id
    assert (await Batch.select(Batch.body).where(Batch.id == batch_id))[0]["body"] == "Evening"
    ended = await recurring.act(SYSTEM, account, view.id, "end")
    assert ended.state == "ended" and ended.upcoming == []
    with pytest.raises(ValidationFailed) as bad:
        await recurring.act(SYSTEM, account, view.id, "resume")
    assert "action" in bad.value.errors


async def test_bad_input_names_every_field_and_writes_nothing(world, clock):
    account = world.accounts["alpha"]
    with pytest.raises(ValidationFailed) as bad:
        await recurring.create_schedule(
            SYSTEM,
            account,
            schedule_input(
                name="",
                body=None,
                numbers=[],
                frequency="weekly",
                weekdays=[],
                local_time="25:00",
                until_date="2026-01-01",
            ),
            sending.PLATFORM_SEND,
        )
    assert set(bad.value.errors) == {"name", "body", "to", "weekdays", "local_time", "until_date"}
    with pytest.raises(PermissionDenied):
        await recurring.create_schedule(
            SYSTEM, account, schedule_input(), frozenset({"campaigns.manage"})
        )
    assert await recurring.RecurringSchedule.count() == 0
