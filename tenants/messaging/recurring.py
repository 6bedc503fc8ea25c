"""Recurring sends: a send or campaign that repeats (tenants.messaging.recurrence), its
pause / resume / skip-next / end, edits that apply to the runs still to come, and the
release of due runs by the periodic scheduler.

Releasing a run is exactly-once: the schedule's `next_run_at` moves on with one conditional
UPDATE (one process wins) in the same transaction that writes the run row, whose key
`<schedule>|<run_at>` is unique; the batch is then accepted with the run's key as its
Idempotency-Key, so a process that died in between is finished by the next tick without a
second batch. Consent, credits and quiet hours are applied when the run is released (the
batch is accepted then), never when the schedule is made."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tenants import clock
from tenants.accounts import tree as accounts_tree
from tenants.audit import record as audit
from tenants.db import first_or_404, is_unique_violation, run_sql, transaction
from tenants.errors import DomainError, PermissionDenied, ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging import recurrence
from tenants.messaging.messages import CHANNELS
from tenants.messaging.tables import RecurringRun, RecurringSchedule

ACTIONS = ("pause", "resume", "skip", "end")
STATES = ("active", "paused", "ended")
# A run more than this late (every scheduler was down) is recorded `missed`, not sent.
MISSED_AFTER = timedelta(hours=6)
# A run claimed but not finished this long ago (its process died) is finished again.
STUCK_AFTER = timedelta(minutes=2)
RELEASE_LIMIT = 200
MAX_RECIPIENT_NUMBERS = 10_000


@dataclass(frozen=True)
class ScheduleInput:
    """What a person or key asks for (plain values; checked by `validate`)."""

    name: str = ""
    campaign: bool = False
    body: str | None = None
    template_id: int | None = None
    variables: dict[str, str] = field(default_factory=dict)
    numbers: Sequence[str] = ()
    list_ids: Sequence[int] = ()
    sender: str = ""
    channel: str = "sms"
    frequency: str = "daily"
    weekdays: Sequence[int] = ()
    month_day: int = 1
    local_time: str = "09:00"
    start_date: str = ""
    until_date: str | None = None
    max_runs: int | None = None


def _check_content(data: ScheduleInput, errors: dict[str, str]) -> None:
    if not (0 < len(data.name.strip()) <= 120):
        errors["name"] = "A name has 1 to 120 characters."
    if (data.body is None) == (data.template_id is None):
        errors["body"] = "Write a message or choose a template (one of them)."
    elif data.body is not None and not data.body.strip():
        errors["body"] = "The message is empty."
    elif data.body is not None and len(data.body) > sending.MAX_BODY:
        errors["body"] = f"The message is longer than {sending.MAX_BODY} characters."
    if not (data.numbers or data.list_ids):
        errors["to"] = "Add at least one number or contact list."
    if len(data.numbers) > MAX_RECIPIENT_NUMBERS:
        errors["to"] = f"At most {MAX_RECIPIENT_NUMBERS:,} numbers; use a contact list."
    if data.channel not in CHANNELS:
        errors["channel"] = f"Choose one of {', '.join(CHANNELS)}."
    if problem := sending.validate_sender(data.sender):
        errors["sender"] = problem


def _check_rule(data: ScheduleInput, errors: dict[str, str]) -> None:
    if data.frequency not in recurrence.FREQUENCIES:
        errors["frequency"] = "Choose daily, weekly or monthly."
    if data.frequency == "weekly" and (
        not data.weekdays or any(d not in range(7) for d in data.weekdays)
    ):
        errors["weekdays"] = "Choose at least one weekday (0 Monday to 6 Sunday)."
    if data.frequency == "monthly" and data.month_day not in range(32):
        errors["month_day"] = "A day of the month is 1 to 31 (0: the last weekday)."
    try:
        time.fromisoformat(data.local_time)
    except ValueError:
        errors["local_time"] = "Write the time as HH:MM."
    for name, value in (("start_date", data.start_date), ("until_date", data.until_date)):
        if value is None or (name == "until_date" and value == ""):
            continue
        try:
            date.fromisoformat(value)
        except ValueError:
            errors[name] = "Write the date as YYYY-MM-DD."
    if data.until_date and "until_date" not in errors and "start_date" not in errors:
        if date.fromisoformat(data.until_date) < date.fromisoformat(data.start_date):
            errors["until_date"] = "The end date is before the start date."
    if data.max_runs is not None and not (0 < data.max_runs <= 10_000):
        errors["max_runs"] = "The number of runs is 1 to 10,000."


def validate(data: ScheduleInput, permissions: frozenset[str]) -> None:
    """Every bad field at once (ValidationFailed), then the permissions the send needs."""
    errors: dict[str, str] = {}
    _check_content(data, errors)
    _check_rule(data, errors)
    if errors:
        raise ValidationFailed(errors)
    if data.body is not None and "messages.send" not in permissions:
        raise PermissionDenied("free text needs messages.send; choose an approved template")


def _rule(row: dict[str, Any]) -> recurrence.Rule:
    return recurrence.Rule(
        frequency=row["frequency"],
        local_time=time.fromisoformat(row["local_time"]),
        zone=accounts_tree.zone_named(row["timezone"]),
        start=date.fromisoformat(row["start_date"]),
        weekdays=frozenset(int(d) for d in row["weekdays"].split(",") if d.strip()),
        month_day=row["month_day"],
        until=date.fromisoformat(row["until_date"]) if row["until_date"] else None,
        max_runs=row["max_runs"],
    )


def _columns(data: ScheduleInput) -> dict[str, Any]:
    return {
        "name": data.name.strip(),
        "campaign": data.campaign,
        "body": data.body,
        "template_id": data.template_id,
        "variables_json": json.dumps(data.variables, sort_keys=True),
        "numbers_json": json.dumps([n.strip() for n in data.numbers if n.strip()]),
        "list_ids_json": json.dumps(sorted(set(data.list_ids))),
        "sender": data.sender.strip(),
        "channel": data.channel,
        "frequency": data.frequency,
        "weekdays": ",".join(str(d) for d in sorted(set(data.weekdays))),
        "month_day": data.month_day if data.frequency == "monthly" else 1,
        "local_time": time.fromisoformat(data.local_time).strftime("%H:%M"),
        "start_date": data.start_date,
        "until_date": data.until_date or None,
        "max_runs": data.max_runs,
    }


async def _check_references(account_id: int, data: ScheduleInput) -> None:
    """The template and lists exist for this account now (checked again at each run)."""
    probe = sending.SendRequest(
        account_id=account_id,
        numbers=list(data.numbers),
        list_ids=list(data.list_ids),
        body=data.body,
        template_id=data.template_id,
        variables=data.variables,
        sender=data.sender,
        channel=data.channel,
        permissions=sending.PLATFORM_SEND,
    )
    # A dry run checks them as a send would, writing nothing.
    await sending.accept_send(probe, actor=audit.SYSTEM, dry_run=True)


async def create_schedule(
    actor: audit.Actor, account_id: int, data: ScheduleInput, permissions: frozenset[str]
) -> ScheduleView:
    if not data.start_date:
        zone = await sending.account_timezone(account_id)
        data = replace(data, start_date=clock.now().astimezone(zone).date().isoformat())
    validate(data, permissions)
    await _check_references(account_id, data)
    zone = await sending.account_timezone(account_id)
    values = {**_columns(data), "timezone": zone.key}
    first = recurrence.next_run(_rule(values), clock.now())
    async with transaction():
        rows = await RecurringSchedule.insert(
            RecurringSchedule(
                account_id=account_id,
                state="active" if first else "ended",
                next_run_at=first,
                created_by=actor.label,
                **values,
            )
        ).returning(RecurringSchedule.id)
        schedule_id = int(rows[0]["id"])
        await audit.record(
            actor,
            account_id=account_id,
            action="recurring.create",
            target_type="recurring_schedule",
            target_id=schedule_id,
            after=values,
        )
    return await get_schedule(account_id, schedule_id)


async def _own_row(account_id: int, schedule_id: int) -> dict[str, Any]:
    return await first_or_404(
        RecurringSchedule.select().where(
            (RecurringSchedule.id == schedule_id) & (RecurringSchedule.account_id == account_id)
        ),
        f"recurring send {schedule_id} not found",
    )


async def _last_run_at(schedule_id: int) -> datetime | None:
    rows = await run_sql(
        "SELECT MAX(run_at) AS last FROM recurring_run WHERE schedule_id = {}", schedule_id
    )
    value = rows[0]["last"] if rows else None
    return _aware(value) if value is not None else None


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _following(row: dict[str, Any], schedule_id: int) -> datetime | None:
    """The next run after now and after the last run (an edit never repeats one)."""
    last = await _last_run_at(schedule_id)
    after = max(clock.now(), last) if last else clock.now()
    return recurrence.next_run(_rule(row), after, row["runs_counted"])


async def update_schedule(
    actor: audit.Actor,
    account_id: int,
    schedule_id: int,
    data: ScheduleInput,
    permissions: frozenset[str],
) -> ScheduleView:
    """Replace what future runs send, to whom and when; past runs keep their batches."""
    before = await _own_row(account_id, schedule_id)
    if before["state"] == "ended":
        raise ValidationFailed({"state": "This recurring send has ended."})
    if not data.start_date:
        data = replace(data, start_date=before["start_date"])
    validate(data, permissions)
    await _check_references(account_id, data)
    values = _columns(data)
    merged = {**before, **values}
    following = await _following(merged, schedule_id)
    async with transaction():
        await RecurringSchedule.update(
            {
                **{getattr(RecurringSchedule, k): v for k, v in values.items()},
                RecurringSchedule.next_run_at: following,
                RecurringSchedule.state: before["state"] if following else "ended",
                RecurringSchedule.updated_at: clock.now(),
            }
        ).where(RecurringSchedule.id == schedule_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="recurring.update",
            target_type="recurring_schedule",
            target_id=schedule_id,
            before={k: before[k] for k in values},
            after=values,
        )
    return await get_schedule(account_id, schedule_id)


async def act(actor: audit.Actor, account_id: int, schedule_id: int, action: str) -> ScheduleView:
    """pause, resume (from now on: runs missed while paused are not sent), skip (the next
    run is recorded skipped and the one after comes next), end."""
    if action not in ACTIONS:
        raise ValidationFailed({"action": f"Choose one of {', '.join(ACTIONS)}."})
    row = await _own_row(account_id, schedule_id)
    state, due = row["state"], row["next_run_at"]
    if state == "ended" or (action == "pause" and state != "active"):
        raise ValidationFailed({"action": f"A {state} recurring send cannot {action}."})
    if action == "resume" and state != "paused":
        raise ValidationFailed({"action": "Only a paused recurring send can resume."})
    if action == "skip" and due is None:
        raise ValidationFailed({"action": "There is no next run to skip."})
    async with transaction():
        if action == "skip":
            following = recurrence.next_run(_rule(row), _aware(due), row["runs_counted"])
            await _record_run(row, _aware(due), "skipped", f"skipped by {actor.label}")
            changes: dict[Any, Any] = {RecurringSchedule.next_run_at: following}
            if following is None:
                changes[RecurringSchedule.state] = "ended"
        elif action == "resume":
            following = await _following(row, schedule_id)
            changes = {
                RecurringSchedule.state: "active" if following else "ended",
                RecurringSchedule.next_run_at: following,
            }
        else:
            new_state = "paused" if action == "pause" else "ended"
            changes = {RecurringSchedule.state: new_state}
            if action == "end":
                changes[RecurringSchedule.next_run_at] = None
        await RecurringSchedule.update(
            {**changes, RecurringSchedule.updated_at: clock.now()}
        ).where(RecurringSchedule.id == schedule_id)
        await audit.record(
            actor,
            account_id=account_id,
            action=f"recurring.{action}",
            target_type="recurring_schedule",
            target_id=schedule_id,
            before={"state": state, "next_run_at": str(due)},
        )
    return await get_schedule(account_id, schedule_id)


def run_key(schedule_id: int, run_at: datetime) -> str:
    return f"{schedule_id}|{run_at.astimezone(UTC).isoformat()}"


async def _record_run(row: dict[str, Any], run_at: datetime, state: str, reason: str = "") -> int:
    rows = await RecurringRun.insert(
        RecurringRun(
            schedule_id=row["id"],
            account_id=row["account_id"],
            key=run_key(row["id"], run_at),
            run_at=run_at,
            state=state,
            reason=reason,
            created_at=clock.now(),
        )
    ).returning(RecurringRun.id)
    return int(rows[0]["id"])


# --- views -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    id: int
    run_at: datetime
    state: str  # releasing | released | failed | skipped | missed
    reason: str
    batch_id: int | None
    accepted: int = 0
    skipped: int = 0
    total_cost: int = 0


@dataclass(frozen=True)
class ScheduleView:
    id: int
    account_id: int
    name: str
    campaign: bool
    state: str
    body: str | None
    template_id: int | None
    variables: dict[str, str]
    numbers: list[str]
    list_ids: list[int]
    sender: str
    channel: str
    frequency: str
    weekdays: list[int]
    month_day: int
    local_time: str
    timezone: str
    start_date: str
    until_date: str | None
    max_runs: int | None
    runs_counted: int
    next_run_at: datetime | None
    description: str
    upcoming: list[datetime] = field(default_factory=list)
    runs: list[RunView] = field(default_factory=list)

    def local(self, instant: datetime) -> str:
        """A run's time as the account reads it (its wall clock)."""
        return instant.astimezone(accounts_tree.zone_named(self.timezone)).strftime(
            "%a %Y-%m-%d %H:%M"
        )


def _schedule_view(row: dict[str, Any], upcoming_count: int = 0) -> ScheduleView:
    rule = _rule(row)
    due = _aware(row["next_run_at"]) if row["next_run_at"] is not None else None
    active = row["state"] == "active"
    return ScheduleView(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        campaign=bool(row["campaign"]),
        state=row["state"],
        body=row["body"],
        template_id=row["template_id"],
        variables=json.loads(row["variables_json"] or "{}"),
        numbers=json.loads(row["numbers_json"] or "[]"),
        list_ids=json.loads(row["list_ids_json"] or "[]"),
        sender=row["sender"],
        channel=row["channel"],
        frequency=row["frequency"],
        weekdays=sorted(rule.weekdays),
        month_day=row["month_day"],
        local_time=row["local_time"],
        timezone=row["timezone"],
        start_date=row["start_date"],
        until_date=row["until_date"],
        max_runs=row["max_runs"],
        runs_counted=row["runs_counted"],
        next_run_at=due if active else None,
        description=rule.describe(),
        upcoming=recurrence.upcoming(rule, due, row["runs_counted"], upcoming_count)
        if active
        else [],
    )


async def list_schedules(account_id: int) -> list[ScheduleView]:
    rows = (
        await RecurringSchedule.select()
        .where(RecurringSchedule.account_id == account_id)
        .order_by(RecurringSchedule.id, ascending=False)
        .limit(500)
    )
    return [_schedule_view(r, 1) for r in rows]


async def runs_of(schedule_id: int, limit: int = 100) -> list[RunView]:
    rows = await run_sql(
        "SELECT r.id, r.run_at, r.state, r.reason, r.batch_id, b.accepted, b.skipped, "
        "b.total_cost FROM recurring_run r LEFT JOIN message_batch b ON b.id = r.batch_id "
        "WHERE r.schedule_id = {} ORDER BY r.run_at DESC LIMIT {}",
        schedule_id,
        limit,
    )
    return [
        RunView(
            r["id"], _aware(r["run_at"]), r["state"], r["reason"], r["batch_id"],
            r["accepted"] or 0, r["skipped"] or 0, r["total_cost"] or 0,
        )
        for r in rows
    ]  # fmt: skip


async def get_schedule(account_id: int, schedule_id: int, *, upcoming: int = 5) -> ScheduleView:
    row = await _own_row(account_id, schedule_id)
    view = _schedule_view(row, upcoming)
    return ScheduleView(**{**view.__dict__, "runs": await runs_of(schedule_id)})


async def count_runs(account: accounts_tree.AccountView, start: date, end: date) -> dict[str, int]:
    """Runs of recurring sends in the account's subtree from `start` to `end` (both
    included, the account's local days), by state: counts only, for reports."""
    zone = await sending.account_timezone(account.id)
    rows = await run_sql(
        "SELECT r.state, COUNT(*) AS n FROM recurring_run r JOIN account a "
        "ON a.id = r.account_id WHERE a.path LIKE {} AND r.run_at >= {} AND r.run_at < {} "
        "GROUP BY r.state",
        account.path + "%",
        recurrence.local_instant(start, time(0), zone),
        recurrence.local_instant(end + timedelta(days=1), time(0), zone),
    )
    return {r["state"]: int(r["n"]) for r in rows}


# --- releasing runs (the periodic scheduler) ----------------------------------------------


@dataclass
class ReleaseOutcome:
    released: int = 0
    failed: int = 0
    missed: int = 0


async def _claim_run(row: dict[str, Any], stamp: datetime) -> tuple[int, str] | None:
    """Move the schedule past its due run and write the run row, in one transaction; None
    when another process did it first (its conditional UPDATE or the run's key won)."""
    due = _aware(row["next_run_at"])
    missed = stamp - due > MISSED_AFTER
    counted = row["runs_counted"] + (0 if missed else 1)
    following = recurrence.next_run(_rule(row), due, counted)
    try:
        async with transaction():
            moved = await run_sql(
                "UPDATE recurring_schedule SET next_run_at = {}, runs_counted = {}, "
                "state = {}, updated_at = {} WHERE id = {} AND state = 'active' "
                "AND next_run_at = {} RETURNING id",
                following,
                counted,
                "active" if following else "ended",
                stamp,
                row["id"],
                row["next_run_at"],
            )
            if not moved:
                return None
            state = "missed" if missed else "releasing"
            reason = "every scheduler was down at the time" if missed else ""
            return await _record_run(row, due, state, reason), state
    except Exception as exc:
        if is_unique_violation(exc):
            return None
        raise


def _send_request(row: dict[str, Any], run_at: datetime) -> sending.SendRequest:
    local = run_at.astimezone(accounts_tree.zone_named(row["timezone"]))
    return sending.SendRequest(
        account_id=row["account_id"],
        numbers=json.loads(row["numbers_json"] or "[]"),
        list_ids=json.loads(row["list_ids_json"] or "[]"),
        body=row["body"],
        template_id=row["template_id"],
        variables=json.loads(row["variables_json"] or "{}"),
        sender=row["sender"],
        channel=row["channel"],
        campaign_name=f"{row['name'][:100]} {local:%Y-%m-%d %H:%M}" if row["campaign"] else None,
        idempotency_key="recurring:" + run_key(row["id"], run_at),
        permissions=sending.PLATFORM_SEND,
    )


async def _accept_run(row: dict[str, Any], run_id: int, run_at: datetime) -> bool:
    """Accept the run's batch now (consent, prices, credits, quiet hours as of now) and
    mark the run released; a refusal is recorded on the run with its reason."""
    actor = audit.Actor(label=f"recurring send {row['id']} ({row['created_by']})"[:200])
    try:
        async with transaction():
            result = await sending.accept_send(_send_request(row, run_at), actor=actor)
            await RecurringRun.update(
                {RecurringRun.state: "released", RecurringRun.batch_id: result.batch_id}
            ).where(RecurringRun.id == run_id)
    except DomainError as exc:
        code = getattr(exc, "code", "refused")
        await RecurringRun.update(
            {RecurringRun.state: "failed", RecurringRun.reason: f"{code}: {exc}"[:500]}
        ).where(RecurringRun.id == run_id)
        return False
    return True


async def _due_rows(stamp: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await (
        RecurringSchedule.select()
        .where((RecurringSchedule.state == "active") & (RecurringSchedule.next_run_at <= stamp))
        .order_by(RecurringSchedule.next_run_at)
        .limit(RELEASE_LIMIT)
    )
    return rows


async def _finish_stuck(stamp: datetime, outcome: ReleaseOutcome) -> None:
    """Runs claimed by a process that died before accepting them: accept them now (the
    run's Idempotency-Key answers the batch it may have written)."""
    # Taken with a conditional UPDATE (a fresh lease), so two ticks finish it once.
    stuck = await run_sql(
        "UPDATE recurring_run SET created_at = {} WHERE state = 'releasing' "
        "AND created_at < {} RETURNING id, schedule_id, run_at",
        stamp,
        stamp - STUCK_AFTER,
    )
    for run in stuck:
        row = (
            await RecurringSchedule.select()
            .where(RecurringSchedule.id == run["schedule_id"])
            .first()
        )
        if row is not None:
            await _accept_run(row, run["id"], _aware(run["run_at"]))


async def release_due_runs() -> ReleaseOutcome:
    """Release every run whose time has come (each once, whichever process asks)."""
    stamp = clock.now()
    outcome = ReleaseOutcome()
    await _finish_stuck(stamp, outcome)
    for row in await _due_rows(stamp):
        claimed = await _claim_run(row, stamp)
        if claimed is None:
            continue
        run_id, state = claimed
        if state == "missed":
            outcome.missed += 1
            continue
        released = await _accept_run(row, run_id, _aware(row["next_run_at"]))
        outcome.released += int(released)
        outcome.failed += int(not released)
    return outcome
