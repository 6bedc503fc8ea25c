"""Consent events: recording opt-outs and opt-ins (one or in bulk) into the append-only
event log and the scope's state, and explaining a number's consent from its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenants import clock
from tenants.access.tables import User
from tenants.accounts.tables import Account
from tenants.audit import record as audit
from tenants.consent.filter import FILTER_CHUNK
from tenants.consent.scopes import (
    UPSERT_FROM_EVENTS,
    ScopedAccount,
    normalize_for,
    scope_members,
    scoped_account,
    state_key,
)
from tenants.consent.tables import (
    ConsentEvent,
    ConsentState,
    GlobalSuppression,
    channel_group,
)
from tenants.db import bulk_value, copy_rows, next_ids, placeholders, run_sql, transaction, view_of
from tenants.errors import ValidationFailed

ACTIONS = ("opt_out", "opt_in")


# provider: a provider or carrier said the recipient unsubscribed (providers.codes).
SOURCES = ("keyword", "manual", "api", "import", "operator", "provider")


INSERT_ROWS = 1000


MAX_NOTE = 500


_LATEST_IN_BATCH = (
    "SELECT MAX(x.id) FROM consent_event x WHERE x.batch = {} GROUP BY x.phone, x.channel_group"
)


_UPSERT_ONE = UPSERT_FROM_EVENTS % "{}"


_UPSERT_BATCH = UPSERT_FROM_EVENTS % _LATEST_IN_BATCH


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValidationFailed({"source": f"Source must be one of {', '.join(SOURCES)}."})


async def _record(
    action: str,
    account_id: int,
    phone: str,
    channel: str,
    *,
    source: str,
    user_id: int | None,
    message_id: int | None,
    note: str,
    actor: audit.Actor | None,
) -> bool:
    _check_source(source)
    group = channel_group(channel)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationFailed({"note": f"A note is at most {MAX_NOTE} characters."})
    new_status = "opted_out" if action == "opt_out" else "opted_in"
    async with transaction():
        account = await scoped_account(account_id, lock=True)
        e164 = normalize_for(account, phone)
        key = state_key(account.scope_id, e164, group)
        previous = await ConsentState.select(ConsentState.status).where(ConsentState.key == key)
        inserted = await ConsentEvent.insert(
            ConsentEvent(
                account_id=account.id,
                phone=e164,
                channel_group=group,
                action=action,
                source=source,
                user_id=user_id,
                message_id=message_id,
                note=note,
                at=clock.now(),
            )
        ).returning(ConsentEvent.id)
        event_id = inserted[0]["id"]
        await ConsentState.raw(_UPSERT_ONE, f"{account.scope_id}|", account.scope_id, event_id)
        if actor is not None:
            await audit.record(
                actor,
                account_id=account.id,
                action=f"consent.{action}",
                target_type="consent_event",
                target_id=event_id,
                before={"status": previous[0]["status"] if previous else "unknown"},
                after={"status": new_status, "channel_group": group, "source": source},
            )
    return not previous or previous[0]["status"] != new_status


async def record_opt_out(
    account_id: int,
    phone: str,
    channel: str,
    *,
    source: str,
    user_id: int | None = None,
    message_id: int | None = None,
    note: str = "",
    actor: audit.Actor | None = None,
) -> bool:
    """Append an opt_out received by `account_id` and apply it to its scope.

    Returns whether the scope's state changed (False when already opted out). Nests in a
    caller's transaction; `actor` also writes the audit row when a person or key did it.
    """
    return await _record(
        "opt_out",
        account_id,
        phone,
        channel,
        source=source,
        user_id=user_id,
        message_id=message_id,
        note=note,
        actor=actor,
    )


@dataclass(frozen=True)
class Change:
    """One opt-out or opt-in of record_changes: received by `account_id` from `phone`."""

    account_id: int
    phone: str
    channel: str
    action: str  # one of ACTIONS
    message_id: int | None = None


_EVENT_COLUMNS = (
    "id", "account_id", "phone", "channel_group", "action", "source", "user_id", "message_id",
    "note", "batch", "at",
)  # fmt: skip


async def record_changes(
    changes: Sequence[Change],
    *,
    source: str,
    scopes: dict[int, ScopedAccount] | None = None,
) -> None:
    """Many opt-outs and opt-ins at once, as record_opt_out/record_opt_in one after the
    other in the order given (an inbound group's STOP, START and keyword opt-ins): the
    events in one bulk write, then each scope's state from its latest event per phone and
    channel group in one statement. Nests in the caller's transaction; no audit row (no
    person or key did it). `scopes` (account id -> scoped_account, locked in this
    transaction) is used and filled, so one transaction reads each account once."""
    if not changes:
        return
    _check_source(source)
    if any(c.action not in ACTIONS for c in changes):
        raise ValueError("a consent change is an opt_out or an opt_in")
    known = scopes if scopes is not None else {}
    async with transaction():
        for account_id in dict.fromkeys(c.account_id for c in changes):
            if account_id not in known:
                known[account_id] = await scoped_account(account_id, lock=True)
        stamp = bulk_value(clock.now())
        ids = await next_ids("consent_event", len(changes))
        rows: list[tuple[Any, ...]] = []
        latest: dict[int, dict[tuple[str, str], int]] = {}
        for event_id, change in zip(ids, changes, strict=True):
            account = known[change.account_id]
            e164 = normalize_for(account, change.phone)
            group = channel_group(change.channel)
            rows.append(
                (
                    event_id, account.id, e164, group, change.action, source, None,
                    change.message_id, "", "", stamp,
                )
            )  # fmt: skip
            # A later change of the same phone and group in the scope decides its state.
            latest.setdefault(account.scope_id, {})[(e164, group)] = event_id
        await copy_rows("consent_event", _EVENT_COLUMNS, rows)
        for scope_id, by_key in latest.items():
            deciding = list(by_key.values())
            await run_sql(
                UPSERT_FROM_EVENTS % placeholders(len(deciding)),
                f"{scope_id}|",
                scope_id,
                *deciding,
            )


async def record_provider_opt_outs(rows: Sequence[dict[str, Any]], code: str) -> int:
    """The opt-outs a provider reported with `code` (one that means the recipient
    unsubscribed) for these outbound messages (id, account_id, to_number, channel), in the
    caller's transaction; returns how many changed a scope's state."""
    changed = 0
    for r in sorted(rows, key=lambda row: row["id"]):
        changed += await record_opt_out(
            r["account_id"],
            r["to_number"],
            r["channel"],
            source="provider",
            message_id=r["id"],
            note=f"Reported by the provider ({code})",
        )
    return changed


async def record_opt_in(
    account_id: int,
    phone: str,
    channel: str,
    *,
    source: str,
    user_id: int | None = None,
    message_id: int | None = None,
    note: str = "",
    actor: audit.Actor | None = None,
) -> bool:
    """Append an opt_in received by `account_id` and apply it to its scope (see opt-out)."""
    return await _record(
        "opt_in",
        account_id,
        phone,
        channel,
        source=source,
        user_id=user_id,
        message_id=message_id,
        note=note,
        actor=actor,
    )


async def record_opt_outs_bulk(
    account_id: int,
    phones: Sequence[str],
    channel: str,
    *,
    source: str,
    batch: str,
    user_id: int | None = None,
    note: str = "",
) -> int:
    """Opt out many E.164 numbers at once (imports): set-based, only for numbers not
    already opted out in the scope. Returns how many numbers changed state."""
    _check_source(source)
    group = channel_group(channel)
    if not batch:
        raise ValueError("a bulk opt-out needs a batch reference")
    changed = 0
    async with transaction():
        account = await scoped_account(account_id, lock=True)
        unique = list(dict.fromkeys(phones))
        for start in range(0, len(unique), FILTER_CHUNK):
            chunk = unique[start : start + FILTER_CHUNK]
            keys = [state_key(account.scope_id, p, group) for p in chunk]
            already = {
                r["phone"]
                for r in await ConsentState.select(ConsentState.phone).where(
                    ConsentState.key.is_in(keys) & (ConsentState.status == "opted_out")
                )
            }
            fresh = [p for p in chunk if p not in already]
            if not fresh:
                continue
            now = clock.now()
            # ~11 bound values a row: stay far below asyncpg's 32,767 per statement.
            for offset in range(0, len(fresh), INSERT_ROWS):
                await ConsentEvent.insert(
                    *[
                        ConsentEvent(
                            account_id=account.id,
                            phone=p,
                            channel_group=group,
                            action="opt_out",
                            source=source,
                            user_id=user_id,
                            note=note,
                            batch=batch,
                            at=now,
                        )
                        for p in fresh[offset : offset + INSERT_ROWS]
                    ]
                )
            changed += len(fresh)
        if changed:
            await ConsentState.raw(_UPSERT_BATCH, f"{account.scope_id}|", account.scope_id, batch)
    return changed


@dataclass(frozen=True)
class ConsentEventView:
    id: int
    action: str
    source: str
    account_id: int
    account_name: str
    user_id: int | None
    user_email: str | None
    message_id: int | None
    note: str
    at: datetime


@dataclass(frozen=True)
class ConsentExplanation:
    """Why a number may or may not be messaged by an account on a channel group."""

    phone: str
    channel_group: str
    status: str  # opted_in / opted_out / unknown
    scope_account_id: int
    scope_account_name: str
    deciding_event: ConsentEventView | None
    history: list[ConsentEventView] = field(default_factory=list)  # newest first
    globally_suppressed: bool = False
    suppression_reason: str = ""

    @property
    def may_message(self) -> bool:
        return self.status != "opted_out" and not self.globally_suppressed


async def _event_views(rows: list[dict[str, Any]]) -> list[ConsentEventView]:
    account_ids = sorted({r["account_id"] for r in rows})
    user_ids = sorted({r["user_id"] for r in rows if r["user_id"] is not None})
    names = (
        {
            r["id"]: r["name"]
            for r in await Account.select(Account.id, Account.name).where(
                Account.id.is_in(account_ids)
            )
        }
        if account_ids
        else {}
    )
    emails = (
        {
            r["id"]: r["email"]
            for r in await User.select(User.id, User.email).where(User.id.is_in(user_ids))
        }
        if user_ids
        else {}
    )
    return [
        view_of(
            ConsentEventView,
            r,
            account_name=names.get(r["account_id"], f"#{r['account_id']}"),
            user_email=emails.get(r["user_id"]) if r["user_id"] is not None else None,
        )
        for r in rows
    ]


async def explain(account_id: int, phone: str, channel: str) -> ConsentExplanation:
    """The consent trace for `phone` as seen by `account_id`: status, scope, deciding
    event and the scope's history for that number (newest first)."""
    group = channel_group(channel)
    account = await scoped_account(account_id)
    e164 = normalize_for(account, phone)
    state = (
        await ConsentState.select(ConsentState.status, ConsentState.event_id)
        .where(ConsentState.key == state_key(account.scope_id, e164, group))
        .first()
    )
    members = await scope_members(account.scope_id)
    rows = (
        await ConsentEvent.select()
        .where(
            (ConsentEvent.phone == e164)
            & (ConsentEvent.channel_group == group)
            & ConsentEvent.account_id.is_in(members)
        )
        .order_by(ConsentEvent.id, ascending=False)
        .limit(500)
    )
    history = await _event_views(rows)
    deciding = None
    if state is not None:
        deciding = next((h for h in history if h.id == state["event_id"]), None)
        if deciding is None:
            extra = await ConsentEvent.select().where(ConsentEvent.id == state["event_id"])
            deciding = (await _event_views(extra))[0] if extra else None
    scope_row = await Account.select(Account.name).where(Account.id == account.scope_id).first()
    suppression = (
        await GlobalSuppression.select(GlobalSuppression.reason)
        .where(GlobalSuppression.phone == e164)
        .first()
    )
    return ConsentExplanation(
        phone=e164,
        channel_group=group,
        status=state["status"] if state else "unknown",
        scope_account_id=account.scope_id,
        scope_account_name=scope_row["name"] if scope_row else "",
        deciding_event=deciding,
        history=history,
        globally_suppressed=suppression is not None,
        suppression_reason=suppression["reason"] if suppression else "",
    )
