"""Messages: the outbox and inbox rows, their status events, batches and campaigns, and the
status state machine.

The state machine resolves conflicting reports by what happened, not by arrival order:

- Statuses have a rank: `enqueued` < `sent` < `delivered` = `failed` < `read` < `rejected`.
  A report of a higher rank moves the message; one of a lower rank is recorded, not applied.
- `delivered` and `failed` share a rank: the one the provider timed latest wins (at the
  same instant `failed` wins). A `failed` the platform concluded itself (no report came,
  `NO_DELIVERY_REPORT`) has no provider time and gives way to any report that comes later.
- `read` proves delivery: it beats `delivered` and `failed` whatever their times.
- `rejected` and `enqueued_failed` are the refunded statuses: a message that reaches one
  has its credits back (once, keyed by the message), so nothing moves it afterwards.
  `rejected` outranks every other provider status, so a refund is never taken back.

The final status is therefore the maximum of its reports by (rank, provider time), the same
for any order of arrival (`resolve` is that fold; tests check it over shuffled sequences).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tenants.accounts.tree import default_region
from tenants.audit import record as audit
from tenants.clock import now
from tenants.consent import events as consent_events
from tenants.contacts.contacts import phone_query_digits
from tenants.credits import spending
from tenants.db import (
    as_datetime,
    chunked,
    contains_text,
    filter_only,
    is_sqlite,
    placeholders,
    run_sql,
    transaction,
)
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.messaging.tables import (
    Batch,
    BatchTally,
    Campaign,
    InboundReply,
    InboundRoute,
    Message,
    MessageEvent,
)
from tenants.phones import normalize_phone
from tenants.providers.codes import explain_error, means_opted_out
from tenants.reports import rollups
from tenants.settings import get_settings
from tenants.webhooks.deliveries import queue_status_events

STATUSES = (
    "enqueued",
    "enqueued_failed",
    "sent",
    "delivered",
    "failed",
    "rejected",
    "read",
    "incoming_message",
)
RANK: dict[str, int] = {
    "enqueued": 0,
    "sent": 1,
    "delivered": 2,
    "failed": 2,
    "read": 3,
    "rejected": 4,
    "enqueued_failed": 4,
}
# Statuses of the same rank ordered by the provider's time; at the same instant, the higher
# tie value wins.
TIMED_TIE: dict[str, int] = {"delivered": 0, "failed": 1}
PROVIDER_STATUSES = frozenset({"sent", "delivered", "failed", "read", "rejected"})
# Where each status may come from by rank alone (the platform's own moves; reports of the
# same rank are settled by time in `supersedes`).
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "sent": frozenset({"enqueued"}),
    "enqueued_failed": frozenset({"enqueued"}),
    "delivered": frozenset({"enqueued", "sent"}),
    "failed": frozenset({"enqueued", "sent"}),
    "read": frozenset({"enqueued", "sent", "delivered", "failed"}),
    "rejected": frozenset({"enqueued", "sent", "delivered", "failed", "read"}),
}
# Applying in this order lets one batch of moves carry sent, delivered and read of the
# same message in any order and still end on read.
APPLY_ORDER = ("sent", "enqueued_failed", "failed", "delivered", "read", "rejected")
FINAL_STATUSES = frozenset({"enqueued_failed", "delivered", "failed", "rejected", "read"})
# Statuses the platform or the provider will still move on their own (pages showing one
# keep polling); an inbound message and every final status never change again.
SETTLING_STATUSES = frozenset({"enqueued", "sent"})
# The platform returns the credits of a message it could not submit or the provider refused.
REFUNDED_STATUSES = frozenset({"enqueued_failed", "rejected"})
BATCH_STATES = ("accepting", "scheduled", "active", "paused", "cancelled")
CHANNELS = ("sms", "mms", "rcs", "whatsapp")


# --- raw SQL -------------------------------------------------------------------------


# --- the state machine ------------------------------------------------------------------


def can_apply(current: str, new: str) -> bool:
    """Whether `new` moves a message in `current` by rank alone."""
    return current in ALLOWED_FROM.get(new, frozenset())


def supersedes(current: str, current_at: datetime | None, new: str, new_at: datetime) -> bool:
    """Whether a report of `new` at provider time `new_at` moves a message in `current`,
    whose latest provider report of that status was at `current_at` (None: the platform
    set it). The rule is the module docstring's."""
    if new == current or current in REFUNDED_STATUSES or new not in RANK:
        return False
    if RANK[new] != RANK[current]:
        return can_apply(current, new)
    if current_at is None:
        return True
    return (new_at, TIMED_TIE[new]) > (current_at, TIMED_TIE[current])


@dataclass(frozen=True)
class StatusReport:
    """One status a provider reported for one of our messages."""

    message_id: int
    status: str
    at: datetime
    error_code: str | None = None
    provider_ref: str | None = None
    event_id: str | None = None
    # When set, the report counts only for a message submitted through this provider
    # (else it is unknown): checked in the ingest's own read, not by a read of its own.
    carrier: str | None = None


@dataclass
class IngestResult:
    received: int = 0
    duplicates: int = 0
    applied: int = 0
    late: int = 0
    unknown: int = 0
    refunded: list[int] = field(default_factory=list)


@dataclass
class Resolution:
    """Where a message's reports leave it: its status, the provider time of its latest
    report of that status (None: set by the platform), and the reports that moved it."""

    status: str
    at: datetime | None
    applied: list[StatusReport] = field(default_factory=list)


def _report_order(report: StatusReport) -> tuple[int, datetime, int]:
    return RANK[report.status], report.at, TIMED_TIE.get(report.status, 0)


def resolve(status: str, at: datetime | None, reports: Iterable[StatusReport]) -> Resolution:
    """Fold reports onto a message's state: the result is the maximum by (rank, provider
    time), whatever the order the reports came in."""
    state = Resolution(status, at)
    for report in sorted(reports, key=_report_order):
        if supersedes(state.status, state.at, report.status, report.at):
            state.status, state.at = report.status, report.at
            state.applied.append(report)
        elif report.status == state.status and (state.at is None or report.at > state.at):
            state.at = report.at
    return state


async def refund_messages(rows: Iterable[dict[str, Any]]) -> list[int]:
    """Return the credits of messages that reached a refunded status, once each.

    The ledger's idempotency key (one per message) makes a second call a no-op, and the
    `refunded` flag keeps the campaign figures honest.
    """
    done: list[int] = []
    for row in rows:
        if row.get("cost", 0) > 0:
            # The refund names the batch's reservation, which caps what can come back.
            await spending.refund(
                row["account_id"],
                row["cost"],
                reference=f"batch:{row['batch_id']}",
                idempotency_key=f"refund:message:{row['id']}",
            )
        done.append(row["id"])
    if done:
        await run_sql(
            f"UPDATE message SET refunded = {{}} WHERE id IN ({placeholders(len(done))})",  # noqa: S608 (only placeholders are formatted in)
            True,
            *done,
        )
    return done


async def set_status(
    ids: Sequence[int],
    target: str,
    error_code: str | None,
    *,
    allowed_from: Iterable[str],
    keep_code: bool = True,
    provider_ref: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Move these messages to `target` where their status is one of `allowed_from`; refunds
    what reached a refunded status and records the opt-outs a provider code reports
    (providers.codes.OPT_OUT_CODES). The moved ones also take their `provider_ref` when they
    have none yet (in the same row version: each UPDATE of a message writes every one of
    its indexes). Runs in the caller's transaction; returns the rows moved."""
    code_sql = "COALESCE({}, error_code)" if keep_code else "{}"
    moved: list[dict[str, Any]] = []
    changes: list[rollups.StatusMove] = []
    # One statement per status left, so the roll-up knows where each message came from.
    for source in sorted(allowed_from):
        for part in chunked(list(ids), 500):
            refs = [(i, provider_ref[i]) for i in part if i in provider_ref] if provider_ref else []
            ref_sql = (
                "provider_ref = COALESCE(provider_ref, CASE id "
                + " ".join("WHEN {} THEN {}" for _ in refs)
                + " END), "
                if refs
                else ""
            )
            rows = await run_sql(
                f"UPDATE message SET status = {{}}, error_code = {code_sql}, {ref_sql}"  # noqa: S608 (only placeholders are formatted in)
                "claimed_at = NULL, claim_token = NULL, "
                f"updated_at = {{}} WHERE id IN ({placeholders(len(part))}) "
                f"AND {filter_only('status = {}')} "
                f"RETURNING id, batch_id, to_number, {rollups.RETURNING}",
                target,
                error_code,
                *[value for pair in refs for value in pair],
                now(),
                *part,
                source,
            )
            moved.extend(rows)
            changes.extend(rollups.moves_from_rows(rows, source, target))
    if error_code is not None and means_opted_out(error_code) and moved:
        await consent_events.record_provider_opt_outs(moved, error_code)
    if target in REFUNDED_STATUSES and moved:
        await refund_messages(moved)
    # The roll-up's rows last, as an accept takes them after its reservation: every
    # transaction locks the account's credits before the shared counters.
    await rollups.record(changes)
    return moved


async def store_provider_refs(provider_ref: dict[int, str]) -> None:
    """The provider's reference is stored whatever the status did: callbacks may come back
    before the worker has recorded `sent`."""
    items = sorted(provider_ref.items())
    for pairs in chunked(items, 250):
        cases = " ".join("WHEN {} THEN {}" for _ in pairs)
        await run_sql(
            f"UPDATE message SET provider_ref = CASE id {cases} END "  # noqa: S608 (only placeholders are formatted in)
            f"WHERE id IN ({placeholders(len(pairs))}) AND provider_ref IS NULL",
            *[value for pair in pairs for value in pair],
            *[message_id for message_id, _ in pairs],
        )


async def apply_statuses(
    moves: Sequence[tuple[int, str, str | None]],
    *,
    provider_ref: dict[int, str] | None = None,
) -> set[tuple[int, str]]:
    """The platform's own moves (id, status, error code), each by rank only from a state
    it may leave; returns the (id, status) pairs that were applied. Runs in the caller's
    transaction; refunds what reached a refunded status."""
    by_target: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for message_id, status, error_code in moves:
        by_target[(status, error_code)].append(message_id)
    applied: set[tuple[int, str]] = set()
    for status in APPLY_ORDER:
        for (target, error_code), ids in by_target.items():
            if target == status:
                rows = await set_status(
                    ids,
                    target,
                    error_code,
                    allowed_from=ALLOWED_FROM[target],
                    provider_ref=provider_ref,
                )
                applied.update((r["id"], target) for r in rows)
    if provider_ref:
        # Those that did not move (a callback came first) take theirs on their own.
        moved = {message_id for message_id, _ in applied}
        await store_provider_refs({m: r for m, r in provider_ref.items() if m not in moved})
    if applied:
        await _notify_customers(applied, moves)
    return applied


async def _notify_customers(
    applied: set[tuple[int, str]], moves: Sequence[tuple[int, str, str | None]]
) -> None:
    """Queue the accounts' status webhooks in the same transaction as the change."""
    codes = {(m, s): c for m, s, c in moves}
    ordered = sorted(applied, key=lambda pair: (APPLY_ORDER.index(pair[1]), pair[0]))
    await queue_status_events([(m, s, codes.get((m, s))) for m, s in ordered])


async def ingest_status_reports(reports: Sequence[StatusReport]) -> IngestResult:
    """Status callbacks, in one transaction: duplicates (same provider event id) are
    dropped, every new event is recorded, and each message ends where `resolve` puts it,
    so any order of delivery ends in the same state."""
    return tally(await ingest_outcomes(reports))


def tally(outcomes: Sequence[str]) -> IngestResult:
    """The counts of a list of per-report outcomes (see `ingest_outcomes`)."""
    result = IngestResult(received=len(outcomes))
    for outcome in outcomes:
        if outcome in ("applied", "late", "duplicates", "unknown"):
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result


async def ingest_outcomes(reports: Sequence[StatusReport]) -> list[str]:
    """`ingest_status_reports` telling what became of each report, in order: "applied",
    "late" (recorded, the message stays), "duplicates" (event id seen before, here or
    earlier in the list), "unknown" (no such outbound message) or "ignored" (not a
    provider status)."""
    outcomes = ["ignored" if r.status not in PROVIDER_STATUSES else "" for r in reports]
    valid = [r for r, outcome in zip(reports, outcomes, strict=True) if not outcome]
    if not valid:
        return outcomes
    async with transaction(), rollups.at_end():
        carried = await _outbound_accounts(sorted({r.message_id for r in valid}))
        known = {
            i: carried[r.message_id][0]
            for i, r in enumerate(reports)
            if not outcomes[i]
            and r.message_id in carried
            and r.carrier in (None, carried[r.message_id][1])
        }
        fresh = _fresh_indices(
            [(i, reports[i]) for i in known],
            await _seen_event_ids([reports[i] for i in known]),
        )
        new_reports = [reports[i] for i in fresh]
        applied = await _resolve_and_apply(new_reports) if new_reports else set()
        if new_reports:
            await store_provider_refs(
                {r.message_id: r.provider_ref for r in new_reports if r.provider_ref}
            )
            await insert_events(
                [
                    (
                        r.message_id,
                        carried[r.message_id][0],
                        r.status,
                        r.error_code,
                        id(r) in applied,
                        "provider",
                        r.event_id,
                        r.at,
                    )
                    for r in new_reports
                ]
            )
    for index, report in enumerate(reports):
        if outcomes[index]:
            continue
        if index not in known:
            outcomes[index] = "unknown"
        elif index not in fresh:
            outcomes[index] = "duplicates"
        else:
            outcomes[index] = "applied" if id(report) in applied else "late"
    return outcomes


async def _outbound_accounts(ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """id -> (account, provider key) of those of these ids that are outbound messages."""
    known: dict[int, tuple[int, str]] = {}
    for part in chunked(list(ids), 500):
        rows = await run_sql(
            f"SELECT id, account_id, provider FROM message WHERE id IN ({placeholders(len(part))}) "  # noqa: S608 (only placeholders are formatted in)
            "AND direction = 'out'",
            *part,
        )
        known.update({r["id"]: (r["account_id"], r["provider"] or "") for r in rows})
    return known


async def _seen_event_ids(reports: Sequence[StatusReport]) -> set[str]:
    """The provider event ids of these reports (of known messages) already recorded."""
    keys = sorted({r.event_id for r in reports if r.event_id})
    seen: set[str] = set()
    for part in chunked(keys, 500):
        rows = await run_sql(
            "SELECT dedupe_key FROM message_event "  # noqa: S608 (only placeholders are formatted in)
            f"WHERE dedupe_key IN ({placeholders(len(part))})",
            *part,
        )
        seen.update(r["dedupe_key"] for r in rows)
    return seen


def _fresh_indices(reports: Sequence[tuple[int, StatusReport]], seen: set[str]) -> dict[int, None]:
    """The (ordered) indices of the reports whose provider event id was not seen before,
    nor earlier in the list."""
    seen = set(seen)
    fresh: dict[int, None] = {}
    for index, report in reports:
        if report.event_id and report.event_id in seen:
            continue
        if report.event_id:
            seen.add(report.event_id)
        fresh[index] = None
    return fresh


async def _current_states(ids: Sequence[int]) -> dict[int, tuple[str, datetime | None]]:
    """id -> (status, provider time of its latest report of that status), the rows locked
    for this transaction (SQLite's write transaction already excludes other writers)."""
    lock = "" if is_sqlite() else " ORDER BY id FOR UPDATE"
    states: dict[int, tuple[str, datetime | None]] = {}
    for part in chunked(list(ids), 500):
        rows = await run_sql(
            f"SELECT id, status FROM message WHERE id IN ({placeholders(len(part))}){lock}",  # noqa: S608 (only placeholders are formatted in)
            *part,
        )
        timed = [r["id"] for r in rows if r["status"] in TIMED_TIE]
        latest: dict[tuple[int, str], datetime | None] = {}
        if timed:
            found = await run_sql(
                "SELECT message_id, status, MAX(at) AS at FROM message_event "  # noqa: S608 (only placeholders are formatted in)
                f"WHERE message_id IN ({placeholders(len(timed))}) AND source = 'provider' "
                "AND status IN ('delivered', 'failed') GROUP BY message_id, status",
                *timed,
            )
            latest = {(r["message_id"], r["status"]): as_datetime(r["at"]) for r in found}
        states.update({r["id"]: (r["status"], latest.get((r["id"], r["status"]))) for r in rows})
    return states


async def _resolve_and_apply(reports: Sequence[StatusReport]) -> set[int]:
    """Resolve each message's new reports against its state and write where it ends;
    returns the `id()` of the reports that moved a message."""
    by_message: dict[int, list[StatusReport]] = defaultdict(list)
    for report in reports:
        by_message[report.message_id].append(report)
    states = await _current_states(sorted(by_message))
    moves: dict[tuple[str, str, str | None], list[int]] = defaultdict(list)
    applied: list[StatusReport] = []
    for message_id, group in by_message.items():
        status, at = states[message_id]
        resolution = resolve(status, at, group)
        if resolution.applied:
            last = resolution.applied[-1]
            moves[(status, last.status, last.error_code)].append(message_id)
            applied.extend(resolution.applied)
    for (start, target, code), ids in moves.items():
        await set_status(ids, target, code, allowed_from=[start], keep_code=False)
    if applied:
        await _notify_customers(
            {(r.message_id, r.status) for r in applied},
            [(r.message_id, r.status, r.error_code) for r in applied],
        )
    return {id(r) for r in applied}


async def insert_events(
    events: Sequence[tuple[int, int, str, str | None, bool, str, str | None, datetime]],
) -> None:
    """(message_id, account_id, status, error_code, applied, source, dedupe_key, at) rows."""
    columns = "message_id, account_id, status, error_code, applied, source, dedupe_key, at"
    for start in range(0, len(events), 500):
        part = events[start : start + 500]
        values = ", ".join(f"({placeholders(8)})" for _ in part)
        args = [value for event in part for value in event]
        await run_sql(
            f"INSERT INTO message_event ({columns}) VALUES {values} "  # noqa: S608 (only placeholders are formatted in)
            "ON CONFLICT (dedupe_key) DO NOTHING",
            *args,
        )


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventView:
    status: str
    at: datetime
    error_code: str | None
    applied: bool
    source: str

    @property
    def explanation(self) -> str:
        return explain_error(self.error_code)


@dataclass(frozen=True)
class MessageView:
    id: int
    account_id: int
    batch_id: int | None
    campaign_id: int | None
    direction: str
    to: str
    sender: str
    body: str
    channel: str
    status: str
    segments: int
    encoding: str
    cost: int
    country: str
    provider_ref: str | None
    error_code: str | None
    refunded: bool
    created_at: datetime
    updated_at: datetime
    release_at: datetime | None = None
    events: tuple[EventView, ...] = ()
    # An inbound compliance word: "opt_out" (STOP...) or "opt_in" (START...), else None.
    consent_action: str | None = None

    @property
    def error_explanation(self) -> str:
        return explain_error(self.error_code)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_settling(self) -> bool:
        """Its status will still change soon: not final, and not held for a later release."""
        held = self.release_at is not None and (as_datetime(self.release_at) or now()) > now()
        return self.status in SETTLING_STATUSES and not held


MESSAGE_COLUMNS = (
    Message.id,
    Message.account_id,
    Message.batch_id,
    Message.campaign_id,
    Message.direction,
    Message.to_number,
    Message.from_number,
    Message.body,
    Message.channel,
    Message.status,
    Message.segments,
    Message.encoding,
    Message.cost,
    Message.country,
    Message.provider_ref,
    Message.error_code,
    Message.refunded,
    Message.created_at,
    Message.updated_at,
    Message.release_at,
)


def _message_view(row: dict[str, Any], events: tuple[EventView, ...] = ()) -> MessageView:
    return MessageView(
        id=row["id"],
        account_id=row["account_id"],
        batch_id=row["batch_id"],
        campaign_id=row["campaign_id"],
        direction=row["direction"],
        to=row["to_number"],
        sender=row["from_number"],
        body=row["body"],
        channel=row["channel"],
        status=row["status"],
        segments=row["segments"],
        encoding=row["encoding"],
        cost=row["cost"],
        country=row["country"],
        provider_ref=row["provider_ref"],
        error_code=row["error_code"],
        refunded=row["refunded"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        release_at=row.get("release_at"),
        events=events,
    )


async def get_message(account_id: int, message_id: int) -> MessageView:
    """A message of this account with its timeline; another account's is NotFound."""
    row = (
        await Message.select(*MESSAGE_COLUMNS)
        .where((Message.id == message_id) & (Message.account_id == account_id))
        .first()
    )
    if row is None:
        raise NotFound(f"message {message_id} not found")
    rows = (
        await MessageEvent.select(
            MessageEvent.status,
            MessageEvent.at,
            MessageEvent.error_code,
            MessageEvent.applied,
            MessageEvent.source,
        )
        .where(MessageEvent.message_id == message_id)
        .order_by(MessageEvent.at)
        .order_by(MessageEvent.id)
    )
    # Creating the outbox row is the `enqueued` event; it is not stored twice.
    first = EventView(
        status="enqueued" if row["direction"] == "out" else "incoming_message",
        at=row["created_at"],
        error_code=None,
        applied=True,
        source="platform",
    )
    events = (first,) + tuple(
        EventView(
            status=r["status"],
            at=r["at"],
            error_code=r["error_code"],
            applied=r["applied"],
            source=r["source"],
        )
        for r in rows
    )
    view = _message_view(row, events)
    if view.direction == "in":
        view = (await with_consent_actions([view]))[0]
    return view


async def with_consent_actions(views: list[MessageView]) -> list[MessageView]:
    """The inbound messages among `views` marked with the consent change they made (an
    opt-out or opt-in word, as inbound routing recorded it); one query for the lot."""
    inbound = [v.id for v in views if v.direction == "in"]
    if not inbound:
        return views
    rows = await InboundRoute.select(InboundRoute.message_id, InboundRoute.rule).where(
        InboundRoute.message_id.is_in(inbound) & InboundRoute.rule.is_in(["opt_out", "opt_in"])
    )
    rules = {r["message_id"]: r["rule"] for r in rows}
    return [replace(v, consent_action=rules[v.id]) if v.id in rules else v for v in views]


@dataclass(frozen=True)
class MessageFilter:
    status: str | None = None
    number: str | None = None
    batch_id: int | None = None
    campaign_id: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    direction: str | None = None
    text: str | None = None  # the body contains it (case ignored)
    # How the list's total is counted: exactly (None), or up to this many and then "N+"
    # (the messages log, keyset-paged over the (account_id, id) index: PAGE_COUNT_CAP).
    count_up_to: int | None = None


@dataclass(frozen=True)
class MessagePage:
    items: list[MessageView]
    next_before_id: int | None
    total: int = 0  # messages matching the filter, over every page (at most cap + 1)
    cap: int | None = None  # the count stopped past this many (None: counted exactly)

    @property
    def total_is_capped(self) -> bool:
        return self.cap is not None and self.total > self.cap

    @property
    def total_text(self) -> str:
        """The total as the page says it: "10,000+" once the count stopped at its cap."""
        return f"{self.cap:,}+" if self.total_is_capped else str(self.total)

    @property
    def settling(self) -> bool:
        """Some message shown will still change status (the page keeps polling)."""
        return any(m.is_settling for m in self.items)


def validate_filter(flt: MessageFilter) -> None:
    if flt.status and flt.status not in STATUSES:
        raise ValidationFailed({"status": f"Unknown status; choose one of {', '.join(STATUSES)}."})


@dataclass(frozen=True)
class _Match:
    """The account's messages matching a filter: the union of `sides`, each a WHERE clause
    read from an index of the account's messages in id order; `overlap` (with two sides)
    is what both match, counted once. An OR of the sides would be read as a scan of every
    message of the account (SQLite reads an OR from indexes only when each of its terms
    alone fits one)."""

    sides: list[Any]
    overlap: Any | None = None


async def _number_sides(account_id: int, number: str) -> tuple[list[Any], Any | None]:
    """Conditions on messages to or from `number` (their union is the match) and the
    overlap of the two: a whole valid number (E.164, or national read in the account's
    region: "0413 000 006" is +61413000006) is matched exactly, To it and From it, each
    from its own index, newest first; anything else, a part of a number or a sender ID,
    as one condition on its digits ("413 000") or its text anywhere in either."""
    if e164 := normalize_phone(number, await default_region(account_id)):
        to, sent_from = Message.to_number == e164, Message.from_number == e164
        return [to, sent_from], to & sent_from
    cond: Any = contains_text(Message.to_number, number) | contains_text(
        Message.from_number, number
    )
    if digits := phone_query_digits(number):
        cond = cond | Message.to_number.like(f"%{digits}%")
        cond = cond | Message.from_number.like(f"%{digits}%")
    return [cond], None


async def _filtered(account_id: int, flt: MessageFilter) -> _Match:
    """The account's messages matching `flt` (see _Match and _number_sides)."""
    validate_filter(flt)
    where: Any = Message.account_id == account_id
    if flt.status:
        where = where & (Message.status == flt.status)
    text = (flt.text or "").strip()
    if text:
        where = where & contains_text(Message.body, text)
    if flt.batch_id is not None:
        where = where & (Message.batch_id == flt.batch_id)
    if flt.campaign_id is not None:
        where = where & (Message.campaign_id == flt.campaign_id)
    if flt.direction:
        where = where & (Message.direction == flt.direction)
    if flt.date_from is not None:
        where = where & (Message.created_at >= flt.date_from)
    if flt.date_to is not None:
        where = where & (Message.created_at < flt.date_to)
    number = (flt.number or "").strip()
    if not number:
        return _Match([where])
    sides, overlap = await _number_sides(account_id, number)
    return _Match([where & side for side in sides], None if overlap is None else where & overlap)


# The messages log counts its matches up to this many ("10,000+"): never a full count of
# an account's millions of messages per page view. The API's X-Total-Count stays exact.
PAGE_COUNT_CAP = 10_000


async def _count(where: Any, cap: int | None) -> int:
    """How many messages match `where`; with a cap, counting stops after cap + 1 of them
    (an index range of bounded length, whatever the account holds)."""
    if cap is None:
        return int(await Message.count().where(where))
    capped = Message.select(Message.id).where(where).limit(cap + 1)
    rows = await Message.raw("SELECT COUNT(*) AS n FROM ({}) AS capped", capped.querystrings[0])
    return int(rows[0]["n"])


async def _total(match: _Match, cap: int | None, known: int | None) -> tuple[int, int | None]:
    """The total of a page and the cap it was counted under: `known` when the page itself
    holds every match (no count at all), else counted exactly or up to `cap` + 1: each
    side, less the overlap (each count at most cap + 1: past the cap when any side is)."""
    if known is not None:
        return known, None
    total = sum([await _count(where, cap) for where in match.sides])
    if match.overlap is not None:
        total -= await _count(match.overlap, cap)
    return (total if cap is None else min(total, cap + 1)), cap


async def _newest(match: _Match, before_id: int | None, size: int) -> list[dict[str, Any]]:
    """The newest `size` messages (MESSAGE_COLUMNS) of `match`, older than
    `before_id` if given. Their ids are chosen by selects of ids alone, so each reads an
    index (message_search on SQLite, see the migration *reports_indexes*; the number
    indexes of *message_number_indexes*) rather than every row of the account."""

    def ids(where: Any) -> Any:
        query = Message.select(Message.id).where(where)
        if before_id is not None:
            query = query.where(Message.id < before_id)
        return query.order_by(Message.id, ascending=False).limit(size)

    if len(match.sides) == 1:
        chosen: Any = ids(match.sides[0])
    else:
        found = {r["id"] for where in match.sides for r in await ids(where)}
        chosen = sorted(found, reverse=True)[:size]
        if not chosen:
            return []
    return list(
        await Message.select(*MESSAGE_COLUMNS)
        .where(Message.id.is_in(chosen))
        .order_by(Message.id, ascending=False)
    )


async def list_messages(
    account_id: int, flt: MessageFilter, *, before_id: int | None = None, limit: int = 50
) -> MessagePage:
    """Newest first; pages by id (`before_id`), which stays stable while messages arrive;
    `total` counts every page."""
    limit = max(1, min(limit, 500))
    match = await _filtered(account_id, flt)
    rows = await _newest(match, before_id, limit + 1)
    items = await with_consent_actions([_message_view(r) for r in rows[:limit]])
    whole = len(items) if before_id is None and len(rows) <= limit else None
    total, cap = await _total(match, flt.count_up_to, whole)
    return MessagePage(
        items=items,
        next_before_id=items[-1].id if len(rows) > limit else None,
        total=total,
        cap=cap,
    )


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "direction",
    "to",
    "from",
    "status",
    "segments",
    "cost",
    "channel",
    "body",
)
EXPORT_PAGE = 1000


async def export_rows(account_id: int, flt: MessageFilter) -> AsyncIterator[list[list[Any]]]:
    """The account's messages matching `flt` as CSV rows (EXPORT_COLUMNS), newest first,
    a page at a time (keyset on id) so an export of any size is streamed. The filter is
    checked here, before the first row: a bad one raises before any response has begun."""
    match = await _filtered(account_id, flt)
    return _export_pages(match)


async def _export_pages(match: _Match) -> AsyncIterator[list[list[Any]]]:
    before: int | None = None
    while True:
        rows = await _newest(match, before, EXPORT_PAGE)
        if not rows:
            return
        yield [
            [
                r["id"],
                (as_datetime(r["created_at"]) or now()).isoformat(),
                r["direction"],
                _csv_cell(r["to_number"] or ""),
                _csv_cell(r["from_number"] or ""),
                r["status"],
                r["segments"],
                r["cost"],
                r["channel"],
                _csv_cell(r["body"] or ""),
            ]
            for r in rows
        ]
        before = rows[-1]["id"]


# --- batches, campaigns and their progress ---------------------------------------------


@dataclass(frozen=True)
class BatchView:
    id: int
    account_id: int
    campaign_id: int | None
    channel: str
    sender: str
    body: str
    template_id: int | None
    state: str
    send_at: datetime | None
    accepted: int
    skipped: int
    segments: int
    total_cost: int
    skipped_list: list[dict[str, str]]
    created_by: str
    created_at: datetime
    request_hash: str = ""
    # A campaign to lists (tenants.messaging.streamed): its skipped recipients are rows of
    # batch_skip, and why accepting stopped before the end (insufficient_credits, ...).
    streamed: bool = False
    stop_reason: str = ""

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for item in self.skipped_list:
            counts[item["reason"]] += 1
        return dict(sorted(counts.items()))

    @property
    def skipped_pairs(self) -> list[tuple[str, str]]:
        """(number as given, reason) of each recipient the send left out."""
        return [(item["to"], item["reason"]) for item in self.skipped_list]


def _csv_cell(value: str) -> str:
    # A cell starting with = + - @ runs as a formula in a spreadsheet (CSV injection); a
    # plain phone number ("+61 4...") cannot, and keeps its plus sign.
    if re.fullmatch(r"\+?[0-9 ]+", value):
        return value
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


csv_cell = _csv_cell  # the skipped list of a list campaign is written the same way


def skipped_rows(batch: BatchView) -> list[tuple[str, str]]:
    """The recipients a send skipped as CSV rows: the number as given (made safe for a
    spreadsheet) and why."""
    return [(_csv_cell(to), reason) for to, reason in batch.skipped_pairs]


def _batch_view(row: dict[str, Any]) -> BatchView:
    return BatchView(
        id=row["id"],
        account_id=row["account_id"],
        campaign_id=row["campaign_id"],
        channel=row["channel"],
        sender=row["sender"],
        body=row["body"],
        template_id=row["template_id"],
        state=row["state"],
        send_at=row["send_at"],
        accepted=row["accepted"],
        skipped=row["skipped"],
        segments=row["segments"],
        total_cost=row["total_cost"],
        skipped_list=json.loads(row["skipped_json"] or "[]"),
        created_by=row["created_by"],
        created_at=row["created_at"],
        request_hash=row["request_hash"],
        streamed=bool(row.get("stream_request")),
        stop_reason=row.get("stop_reason") or "",
    )


async def get_batch(account_id: int, batch_id: int) -> BatchView:
    row = (
        await Batch.select()
        .where((Batch.id == batch_id) & (Batch.account_id == account_id))
        .first()
    )
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return _batch_view(row)


@dataclass(frozen=True)
class Progress:
    """What a campaign page shows; counts come from the batch's counters (batch_tally),
    moved with the messages, so a poll reads a few rows whatever the batch's size."""

    batch: BatchView
    by_status: dict[str, int]
    spent: int
    refunded: int
    skipped_reasons: dict[str, int] = field(default_factory=dict)  # a list campaign's

    @property
    def accepted(self) -> int:
        return self.batch.accepted

    @property
    def done(self) -> int:
        return sum(n for s, n in self.by_status.items() if s in FINAL_STATUSES)

    @property
    def finished(self) -> bool:
        return self.done >= self.batch.accepted and self.batch.state != "accepting"

    @property
    def percent(self) -> int:
        return 100 if not self.accepted else int(100 * self.done / self.accepted)

    @property
    def state(self) -> str:
        """What the campaign list and page both call it: an active batch whose messages are
        all final has finished."""
        return "finished" if self.finished and self.batch.state == "active" else self.batch.state

    def count(self, status: str) -> int:
        return self.by_status.get(status, 0)

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(self.skipped_reasons.items())) or self.batch.skipped_by_reason()


async def batch_progress(account_id: int, batch_id: int) -> Progress:
    progress = await batches_progress(account_id, [batch_id])
    if batch_id not in progress:
        raise NotFound(f"batch {batch_id} not found")
    return progress[batch_id]


def _progress(batch: BatchView, counters: list[dict[str, Any]]) -> Progress:
    by_status: dict[str, int] = defaultdict(int)
    skipped: dict[str, int] = {}
    refunded = 0
    for r in counters:
        kind, _, name = r["name"].partition(":")
        if kind == "skip":
            skipped[name] = int(r["n"])
        elif kind == "status" and int(r["n"]):
            by_status[name] = int(r["n"])
            refunded += int(r["cost"]) if name in REFUNDED_STATUSES else 0
    enqueued = batch.accepted - sum(by_status.values())
    if enqueued:
        by_status["enqueued"] = enqueued
    return Progress(
        batch=batch,
        by_status=dict(by_status),
        spent=batch.total_cost - refunded,
        refunded=refunded,
        skipped_reasons=skipped,
    )


async def batches_progress(account_id: int, batch_ids: Sequence[int]) -> dict[int, Progress]:
    """The progress of each of the account's batches among `batch_ids` (others are left
    out): two queries however many batches (the batches, their counters)."""
    ids = sorted(set(batch_ids))
    if not ids:
        return {}
    batches = {
        r["id"]: _batch_view(r)
        for r in await Batch.select().where((Batch.account_id == account_id) & Batch.id.is_in(ids))
    }
    if not batches:
        return {}
    counters: dict[int, list[dict[str, Any]]] = {i: [] for i in batches}
    for r in await BatchTally.select(
        BatchTally.batch_id, BatchTally.name, BatchTally.n, BatchTally.cost
    ).where(BatchTally.batch_id.is_in(list(batches))):
        counters[r["batch_id"]].append(r)
    return {i: _progress(batch, counters[i]) for i, batch in batches.items()}


@dataclass(frozen=True)
class CampaignView:
    id: int
    account_id: int
    name: str
    batch_id: int | None
    created_by: str
    created_at: datetime


async def list_campaigns(account_id: int, *, limit: int = 100) -> list[CampaignView]:
    rows = (
        await Campaign.select()
        .where(Campaign.account_id == account_id)
        .order_by(Campaign.id, ascending=False)
        .limit(limit)
    )
    return [CampaignView(**{k: r[k] for k in CampaignView.__dataclass_fields__}) for r in rows]


async def get_campaign(account_id: int, campaign_id: int) -> CampaignView:
    row = (
        await Campaign.select()
        .where((Campaign.id == campaign_id) & (Campaign.account_id == account_id))
        .first()
    )
    if row is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return CampaignView(**{k: row[k] for k in CampaignView.__dataclass_fields__})


BATCH_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({"active", "scheduled"}), "paused"),
    "resume": (frozenset({"paused"}), "active"),
    "cancel": (frozenset({"accepting", "active", "scheduled", "paused"}), "cancelled"),
}


async def set_batch_state(
    actor: audit.Actor, *, account_id: int, batch_id: int, action: str
) -> BatchView:
    """Pause, resume or cancel a send; cancelling refunds every message not yet sent.

    Messages a worker already holds finish their submission: the hold only stops
    messages that have not been claimed, so nothing is half-sent or charged twice.
    """
    if action not in BATCH_TRANSITIONS:
        raise ValidationFailed({"action": "Choose pause, resume or cancel."})
    sources, target = BATCH_TRANSITIONS[action]
    async with transaction():
        batch = await get_batch(account_id, batch_id)
        if batch.state not in sources:
            raise Conflict(
                f"This send is {batch.state}; it cannot be {target}.", code="invalid_state"
            )
        if action == "resume" and batch.send_at is not None and batch.send_at > now():
            target = "scheduled"
        await Batch.update({Batch.state: target}).where(Batch.id == batch_id)
        cancelled = await _cancel_unclaimed(batch_id) if action == "cancel" else 0
        await audit.record(
            actor,
            account_id=account_id,
            action=f"batch.{action}",
            target_type="campaign" if batch.campaign_id else "batch",
            target_id=batch.campaign_id or batch_id,
            before={"state": batch.state},
            after={"state": target, **({"cancelled_messages": cancelled} if cancelled else {})},
        )
    return await get_batch(account_id, batch_id)


async def _cancel_unclaimed(batch_id: int) -> int:
    """End the batch's messages no worker holds as `enqueued_failed` (CANCELLED), refund
    them, record their events and tell the customer's webhooks; returns how many."""
    stamp = now()
    rows = await run_sql(
        "UPDATE message SET status = 'enqueued_failed', error_code = 'CANCELLED', "  # noqa: S608 (only a constant column list is formatted in)
        "updated_at = {} WHERE batch_id = {} AND status = 'enqueued' "
        f"AND claimed_at IS NULL RETURNING id, batch_id, {rollups.RETURNING}",
        stamp,
        batch_id,
    )
    await rollups.record(rollups.moves_from_rows(rows, "enqueued", "enqueued_failed"))
    await refund_messages(rows)
    if rows:
        await _notify_customers(
            {(r["id"], "enqueued_failed") for r in rows},
            [(r["id"], "enqueued_failed", "CANCELLED") for r in rows],
        )
    await insert_events(
        [
            (
                r["id"],
                r["account_id"],
                "enqueued_failed",
                "CANCELLED",
                True,
                "platform",
                None,
                stamp,
            )
            for r in rows
        ]
    )
    return len(rows)


def chunk_size() -> int:
    """Messages per broker message, i.e. per provider request (SEND_CHUNK_SIZE)."""
    return get_settings().sending.chunk_size


async def confirmation_ids(message_ids: list[int]) -> set[int]:
    """Which of these outbox messages confirm a compliance keyword (sent despite opt-out)."""
    if not message_ids:
        return set()
    rows = await InboundReply.select(InboundReply.message_id).where(
        (InboundReply.kind == "confirmation") & InboundReply.message_id.is_in(message_ids)
    )
    return {r["message_id"] for r in rows}
