"""Consent: append-only opt-in/opt-out events, the derived current state per consent scope,
the global suppression list, and the compliance keywords with their confirmation replies.

An account's consent scope is itself when it is isolated or a root, else its parent's scope,
so an opt-out received anywhere applies to the whole scope. The state table is derived from
the events (latest event per scope, phone and channel group wins) and is rebuilt for the
affected scopes whenever a consent_mode changes; the events themselves are never touched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenants import clock
from tenants.accounts.tables import Account
from tenants.accounts.tree import path_ids
from tenants.audit import record as audit
from tenants.consent.tables import (
    ConsentEvent,
    ConsentKeyword,
    ConsentReply,
    ConsentState,
    GlobalSuppression,
    channel_group,
)
from tenants.db import is_sqlite, transaction
from tenants.errors import NotFound, PermissionDenied, ValidationFailed
from tenants.phones import normalize_phone

GROUPS = ("sms", "whatsapp")
ACTIONS = ("opt_out", "opt_in")
SOURCES = ("keyword", "manual", "api", "import", "operator")
STATUSES = ("opted_in", "opted_out", "unknown")
SKIP_REASONS = ("invalid_number", "opted_out", "globally_suppressed")
# Phones per set-based round trip: two queries each, well under every engine's
# bound-parameter limit.
FILTER_CHUNK = 5000
INSERT_ROWS = 1000

KEYWORD_KINDS = ("opt_out", "opt_in", "help")
DEFAULT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "opt_out": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"),
    "opt_in": ("START", "UNSTOP", "YES"),
    "help": ("HELP", "INFO"),
}
DEFAULT_REPLIES: dict[str, str] = {
    "opt_out": "You have been unsubscribed and will receive no further messages. "
    "Reply START to subscribe again.",
    "opt_in": "You are subscribed again. Reply STOP to unsubscribe.",
    "help": "Reply STOP to unsubscribe or START to subscribe again.",
}
KEYWORD_RE = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_CUSTOM_KEYWORDS = 30
MAX_REPLY = 480
MAX_NOTE = 500


# ---------------------------------------------------------------------------- scopes


def state_key(scope_account_id: int, phone: str, group: str) -> str:
    return f"{scope_account_id}|{phone}|{group}"


def scope_map(nodes: Iterable[tuple[int, int | None, str]]) -> dict[int, int]:
    """Scope of every account of a forest given (id, parent_id, consent_mode) rows.

    A node whose parent is not among the rows is treated as a root.
    """
    rows = {node_id: (parent_id, mode) for node_id, parent_id, mode in nodes}
    scopes: dict[int, int] = {}

    def scope_of(node_id: int) -> int:
        chain: list[int] = []
        current = node_id
        while True:
            if current in scopes:
                result = scopes[current]
                break
            chain.append(current)
            parent_id, mode = rows[current]
            if mode == "isolated" or parent_id is None or parent_id not in rows:
                result = current
                break
            current = parent_id
        for n in chain:
            scopes[n] = result
        return result

    for node_id in rows:
        scope_of(node_id)
    return scopes


@dataclass(frozen=True)
class _ScopedAccount:
    id: int
    path: str
    default_region: str
    scope_id: int


async def _scoped_account(account_id: int, *, lock: bool = False) -> _ScopedAccount:
    """The account, its region and consent scope; `lock` holds the chain of consent modes.

    On PostgreSQL the ancestors' rows are locked FOR KEY SHARE so a concurrent consent_mode
    change (which takes FOR UPDATE) cannot slip between reading the scope and writing the
    state; SQLite transactions are already serialised by the IMMEDIATE write lock.
    """
    row = (
        await Account.select(Account.id, Account.path, Account.default_region)
        .where(Account.id == account_id)
        .first()
    )
    if row is None:
        raise NotFound(f"account {account_id} not found")
    ids = path_ids(row["path"])
    query = Account.select(Account.id, Account.consent_mode).where(Account.id.is_in(ids))
    if lock and not is_sqlite():
        query = query.lock_rows("KEY SHARE")
    modes = {r["id"]: r["consent_mode"] for r in await query}
    scope = ids[0]
    for ancestor_id in ids[1:]:
        if modes.get(ancestor_id) == "isolated":
            scope = ancestor_id
    return _ScopedAccount(
        id=row["id"],
        path=row["path"],
        default_region=row["default_region"] or "AU",
        scope_id=scope,
    )


async def resolve_consent_scope(account_id: int) -> int:
    """The account whose scope this account's consent lives in (itself if isolated or root)."""
    return (await _scoped_account(account_id)).scope_id


async def scope_members(scope_account_id: int) -> list[int]:
    """Accounts whose consent scope is `scope_account_id` (empty if it is not a scope)."""
    if not await _is_scope(scope_account_id):
        return []
    root = await Account.select(Account.path).where(Account.id == scope_account_id).first()
    assert root is not None
    rows = await Account.select(Account.id, Account.parent, Account.consent_mode).where(
        Account.path.like(root["path"] + "%")
    )
    nodes = [
        (r["id"], None if r["id"] == scope_account_id else r["parent"], r["consent_mode"])
        for r in rows
    ]
    scopes = scope_map(nodes)
    return sorted(i for i, s in scopes.items() if s == scope_account_id)


async def _is_scope(account_id: int) -> bool:
    row = (
        await Account.select(Account.parent, Account.consent_mode)
        .where(Account.id == account_id)
        .first()
    )
    return row is not None and (row["parent"] is None or row["consent_mode"] == "isolated")


# ---------------------------------------------------------------------------- filtering


def _normalize_for(account: _ScopedAccount, phone: str) -> str:
    e164 = normalize_phone(phone, account.default_region)
    if e164 is None:
        raise ValidationFailed({"phone": f"{phone!r} is not a valid phone number."})
    return e164


async def filter_recipients(
    account_id: int, phones: Sequence[str], channel: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """Split raw phone strings into (allowed E.164 numbers, [(raw, reason)] skipped).

    Numbers are normalised with the account's default region and de-duplicated (the first
    occurrence counts); the check is set-based: two queries per chunk of FILTER_CHUNK phones
    plus two for the account, never one per phone.
    """
    group = channel_group(channel)
    account = await _scoped_account(account_id)
    skipped: list[tuple[int, str, str]] = []
    candidates: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(phones):
        e164 = normalize_phone(raw, account.default_region) if isinstance(raw, str) else None
        if e164 is None:
            skipped.append((index, raw, "invalid_number"))
        elif e164 not in seen:
            seen.add(e164)
            candidates.append((index, raw, e164))
    allowed: list[str] = []
    for start in range(0, len(candidates), FILTER_CHUNK):
        chunk = candidates[start : start + FILTER_CHUNK]
        numbers = [e164 for _, _, e164 in chunk]
        keys = [state_key(account.scope_id, n, group) for n in numbers]
        opted_out = {
            r["phone"]
            for r in await ConsentState.select(ConsentState.phone).where(
                ConsentState.key.is_in(keys) & (ConsentState.status == "opted_out")
            )
        }
        suppressed = {
            r["phone"]
            for r in await GlobalSuppression.select(GlobalSuppression.phone).where(
                GlobalSuppression.phone.is_in(numbers)
            )
        }
        for index, raw, e164 in chunk:
            if e164 in suppressed:
                skipped.append((index, raw, "globally_suppressed"))
            elif e164 in opted_out:
                skipped.append((index, raw, "opted_out"))
            else:
                allowed.append(e164)
    skipped.sort(key=lambda s: s[0])
    return allowed, [(raw, reason) for _, raw, reason in skipped]


# ---------------------------------------------------------------------------- recording

_UPSERT_FROM_EVENTS = """
INSERT INTO consent_state (key, scope_account_id, phone, channel_group, status, event_id,
                           updated_at)
SELECT CAST({} AS TEXT) || e.phone || '|' || e.channel_group, CAST({} AS INTEGER), e.phone,
       e.channel_group, CASE WHEN e.action = 'opt_out' THEN 'opted_out' ELSE 'opted_in' END,
       e.id, e.at
FROM consent_event e
WHERE e.id IN (%s)
ON CONFLICT (key) DO UPDATE SET status = excluded.status, event_id = excluded.event_id,
    updated_at = excluded.updated_at
WHERE consent_state.event_id < excluded.event_id
"""
# The newest event of each (phone, group) among the scope's member accounts: those in the
# scope account's subtree that no other isolated account of that subtree sets apart.
_LATEST_IN_SCOPE = """
SELECT MAX(x.id) FROM consent_event x
WHERE x.account_id IN (
    SELECT a.id FROM account a
    WHERE a.path LIKE {} AND NOT EXISTS (
        SELECT 1 FROM account i
        WHERE i.consent_mode = 'isolated' AND i.id <> {} AND i.path LIKE {}
          AND a.path LIKE i.path || '%'
    )
)
GROUP BY x.phone, x.channel_group
"""
_LATEST_IN_BATCH = (
    "SELECT MAX(x.id) FROM consent_event x WHERE x.batch = {} GROUP BY x.phone, x.channel_group"
)
_UPSERT_ONE = _UPSERT_FROM_EVENTS % "{}"
_UPSERT_BATCH = _UPSERT_FROM_EVENTS % _LATEST_IN_BATCH
_DERIVE_SCOPE = _UPSERT_FROM_EVENTS % _LATEST_IN_SCOPE


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
        account = await _scoped_account(account_id, lock=True)
        e164 = _normalize_for(account, phone)
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
        account = await _scoped_account(account_id, lock=True)
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


# ---------------------------------------------------------------------------- derivation


async def _derive_scope(scope_account_id: int) -> None:
    """Rebuild the state rows of one scope from its member accounts' events."""
    await ConsentState.delete().where(ConsentState.scope_account_id == scope_account_id)
    if not await _is_scope(scope_account_id):
        return
    row = await Account.select(Account.path).where(Account.id == scope_account_id).first()
    assert row is not None
    like = row["path"] + "%"
    await ConsentState.raw(
        _DERIVE_SCOPE, f"{scope_account_id}|", scope_account_id, like, scope_account_id, like
    )


async def rederive_scopes(scope_account_ids: Iterable[int]) -> None:
    """Rebuild the derived state of these scopes (and drop it for ids no longer scopes)."""
    async with transaction():
        for scope_id in sorted(set(scope_account_ids)):
            await _derive_scope(scope_id)


async def rederive_tree(account_id: int) -> None:
    """Rebuild the derived state of every scope in the tree that holds `account_id`.

    For structural changes (moving a subtree); a consent_mode change only needs the two
    scopes it touches (`on_consent_mode_changed`).
    """
    row = await Account.select(Account.path).where(Account.id == account_id).first()
    if row is None:
        raise NotFound(f"account {account_id} not found")
    root_id = path_ids(row["path"])[0]
    async with transaction():
        root = await Account.select(Account.path).where(Account.id == root_id).first()
        assert root is not None
        ids = [
            r["id"]
            for r in await Account.select(Account.id).where(Account.path.like(root["path"] + "%"))
        ]
        await ConsentState.delete().where(ConsentState.scope_account_id.is_in(ids))
        for scope_id in ids:
            if await _is_scope(scope_id):
                await _derive_scope(scope_id)


async def on_consent_mode_changed(account_id: int) -> None:
    """Re-derive after `account_id`'s consent_mode was updated in the open transaction.

    Only the account's own scope and its parent's scope change membership. The row lock
    makes concurrent recorders (FOR KEY SHARE on the chain) wait or be waited for, so no
    event is applied to a scope that no longer holds its account.
    """
    async with transaction():
        query = Account.select(Account.id, Account.parent).where(Account.id == account_id)
        if not is_sqlite():
            query = query.lock_rows("UPDATE")
        row = (await query)[0]
        if row["parent"] is None:
            return
        parent_scope = await resolve_consent_scope(row["parent"])
        await _derive_scope(account_id)
        await _derive_scope(parent_scope)


# ---------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class ConsentModePreview:
    """What switching one account's consent_mode would do, before it is saved."""

    account_id: int
    current_mode: str
    new_mode: str
    moved_account_ids: list[int]
    from_scope_id: int
    to_scope_id: int
    starts_applying: int  # opted-out numbers that would newly block the moved accounts
    stops_applying: int  # opted-out numbers that would no longer block them
    rest_scope_id: int  # the parent's scope, whose other accounts may change too
    rest_starts_applying: int
    rest_stops_applying: int

    @property
    def changes_anything(self) -> bool:
        return self.current_mode != self.new_mode and bool(self.moved_account_ids)


async def _opted_out_derived(member_ids: Sequence[int]) -> set[tuple[str, str]]:
    if not member_ids:
        return set()
    rows = await ConsentEvent.select(
        ConsentEvent.id, ConsentEvent.phone, ConsentEvent.channel_group, ConsentEvent.action
    ).where(ConsentEvent.account_id.is_in(list(member_ids)))
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for r in rows:
        k = (r["phone"], r["channel_group"])
        if k not in newest or newest[k][0] < r["id"]:
            newest[k] = (r["id"], r["action"])
    return {k for k, (_, action) in newest.items() if action == "opt_out"}


async def _opted_out_state(scope_id: int) -> set[tuple[str, str]]:
    rows = await ConsentState.select(ConsentState.phone, ConsentState.channel_group).where(
        (ConsentState.scope_account_id == scope_id) & (ConsentState.status == "opted_out")
    )
    return {(r["phone"], r["channel_group"]) for r in rows}


async def preview_consent_mode(account_id: int, new_mode: str) -> ConsentModePreview:
    """Count the opted-out numbers that would start or stop applying if the mode changed."""
    if new_mode not in ("inherit", "isolated"):
        raise ValidationFailed({"consent_mode": "Consent mode must be 'inherit' or 'isolated'."})
    row = (
        await Account.select(Account.id, Account.parent, Account.path, Account.consent_mode)
        .where(Account.id == account_id)
        .first()
    )
    if row is None:
        raise NotFound(f"account {account_id} not found")
    current = row["consent_mode"]
    root_id = path_ids(row["path"])[0]
    root = await Account.select(Account.path).where(Account.id == root_id).first()
    assert root is not None
    tree = await Account.select(Account.id, Account.parent, Account.consent_mode).where(
        Account.path.like(root["path"] + "%")
    )
    before = scope_map((r["id"], r["parent"], r["consent_mode"]) for r in tree)
    after = scope_map(
        (r["id"], r["parent"], new_mode if r["id"] == account_id else r["consent_mode"])
        for r in tree
    )
    moved = sorted(i for i in before if before[i] != after[i])
    from_scope = before[account_id]
    to_scope = after[account_id]
    rest_scope = before[row["parent"]] if row["parent"] is not None else from_scope
    if not moved:
        return ConsentModePreview(
            account_id, current, new_mode, [], from_scope, to_scope, 0, 0, rest_scope, 0, 0
        )
    moved_before = await _opted_out_state(from_scope)
    moved_after = await _opted_out_derived([i for i, s in after.items() if s == to_scope])
    rest_before = await _opted_out_state(rest_scope)
    rest_after = await _opted_out_derived([i for i, s in after.items() if s == rest_scope])
    return ConsentModePreview(
        account_id=account_id,
        current_mode=current,
        new_mode=new_mode,
        moved_account_ids=moved,
        from_scope_id=from_scope,
        to_scope_id=to_scope,
        starts_applying=len(moved_after - moved_before),
        stops_applying=len(moved_before - moved_after),
        rest_scope_id=rest_scope,
        rest_starts_applying=len(rest_after - rest_before),
        rest_stops_applying=len(rest_before - rest_after),
    )


# ---------------------------------------------------------------------------- explain


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
    from tenants.access.tables import User

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
        ConsentEventView(
            id=r["id"],
            action=r["action"],
            source=r["source"],
            account_id=r["account_id"],
            account_name=names.get(r["account_id"], f"#{r['account_id']}"),
            user_id=r["user_id"],
            user_email=emails.get(r["user_id"]) if r["user_id"] is not None else None,
            message_id=r["message_id"],
            note=r["note"],
            at=r["at"],
        )
        for r in rows
    ]


async def explain(account_id: int, phone: str, channel: str) -> ConsentExplanation:
    """The consent trace for `phone` as seen by `account_id`: status, scope, deciding
    event and the scope's history for that number (newest first)."""
    group = channel_group(channel)
    account = await _scoped_account(account_id)
    e164 = _normalize_for(account, phone)
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


async def statuses(account_id: int, phones: Sequence[str]) -> dict[tuple[str, str], str]:
    """Current status of E.164 numbers in the account's scope for both channel groups
    (for lists of contacts): {(phone, group): status}, absent means unknown."""
    if not phones:
        return {}
    account = await _scoped_account(account_id)
    keys = [state_key(account.scope_id, p, g) for p in phones for g in GROUPS]
    rows = await ConsentState.select(
        ConsentState.phone, ConsentState.channel_group, ConsentState.status
    ).where(ConsentState.key.is_in(keys))
    return {(r["phone"], r["channel_group"]): r["status"] for r in rows}


# ---------------------------------------------------------------------------- suppression


@dataclass(frozen=True)
class SuppressionView:
    id: int
    phone: str
    reason: str
    added_by_user_id: int | None
    created_at: datetime


async def add_global_suppression(*, actor: audit.Actor, phone: str, reason: str) -> SuppressionView:
    """Suppress a number platform-wide (operator only; the caller checks the power)."""
    e164 = normalize_phone(phone, "ZZ") if phone.strip().startswith(("+", "00")) else None
    errors: dict[str, str] = {}
    if e164 is None:
        errors["phone"] = "Enter the number in international form, e.g. +61412345678."
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = "Say why the number is suppressed."
    elif len(reason) > MAX_NOTE:
        errors["reason"] = f"A reason is at most {MAX_NOTE} characters."
    if errors:
        raise ValidationFailed(errors)
    assert e164 is not None
    async with transaction():
        if await GlobalSuppression.exists().where(GlobalSuppression.phone == e164):
            raise ValidationFailed({"phone": f"{e164} is already suppressed."})
        rows = await GlobalSuppression.insert(
            GlobalSuppression(phone=e164, reason=reason, added_by_user_id=actor.user_id)
        ).returning(*GlobalSuppression.all_columns())
        await audit.record(
            actor,
            account_id=await _platform_account_id(actor),
            action="suppression.add",
            target_type="global_suppression",
            target_id=rows[0]["id"],
            after={"phone": e164, "reason": reason},
        )
    return _suppression_view(rows[0])


async def remove_global_suppression(*, actor: audit.Actor, suppression_id: int) -> None:
    async with transaction():
        row = await GlobalSuppression.select().where(GlobalSuppression.id == suppression_id).first()
        if row is None:
            raise NotFound("suppression not found")
        await GlobalSuppression.delete().where(GlobalSuppression.id == suppression_id)
        await audit.record(
            actor,
            account_id=await _platform_account_id(actor),
            action="suppression.remove",
            target_type="global_suppression",
            target_id=suppression_id,
            before={"phone": row["phone"], "reason": row["reason"]},
        )


async def list_global_suppressions(
    *, search: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[SuppressionView], int]:
    query = GlobalSuppression.select()
    count = GlobalSuppression.count()
    digits = re.sub(r"[^0-9]", "", search or "")
    if digits:
        query = query.where(GlobalSuppression.phone.like(f"%{digits}%"))
        count = count.where(GlobalSuppression.phone.like(f"%{digits}%"))
    rows = await query.order_by(GlobalSuppression.id, ascending=False).offset(offset).limit(limit)
    return [_suppression_view(r) for r in rows], await count


def _suppression_view(r: dict[str, Any]) -> SuppressionView:
    return SuppressionView(
        id=r["id"],
        phone=r["phone"],
        reason=r["reason"],
        added_by_user_id=r["added_by_user_id"],
        created_at=r["created_at"],
    )


async def _platform_account_id(actor: audit.Actor) -> int:
    row = await Account.select(Account.id).where(Account.kind == "platform").first()
    return row["id"] if row else 0


# ---------------------------------------------------------------------------- keywords


def normalize_keyword_text(text: str) -> str:
    """Upper-case, surrounding whitespace and punctuation removed, inner spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"^[\W_]+|[\W_]+$", "", text)
    return re.sub(r"\s+", " ", text).upper()


async def _tree_root_and_chain(account_id: int) -> list[int]:
    row = await Account.select(Account.path).where(Account.id == account_id).first()
    if row is None:
        raise NotFound(f"account {account_id} not found")
    return path_ids(row["path"])


async def keyword_lists(account_id: int) -> dict[str, list[str]]:
    """Effective words per kind for an account: the defaults plus its ancestors' additions."""
    chain = await _tree_root_and_chain(account_id)
    rows = await ConsentKeyword.select(ConsentKeyword.kind, ConsentKeyword.word).where(
        ConsentKeyword.account_id.is_in(chain)
    )
    lists = {kind: list(words) for kind, words in DEFAULT_KEYWORDS.items()}
    for r in sorted(rows, key=lambda r: r["word"]):
        if r["word"] not in lists[r["kind"]]:
            lists[r["kind"]].append(r["word"])
    return lists


async def custom_keywords(account_id: int) -> dict[str, list[str]]:
    """The words this account itself added, per kind."""
    rows = await ConsentKeyword.select(ConsentKeyword.kind, ConsentKeyword.word).where(
        ConsentKeyword.account_id == account_id
    )
    out: dict[str, list[str]] = {kind: [] for kind in KEYWORD_KINDS}
    for r in sorted(rows, key=lambda r: r["word"]):
        out[r["kind"]].append(r["word"])
    return out


async def classify_keyword(account_id: int, text: str) -> str | None:
    """ "opt_out", "opt_in", "help" or None for an inbound message's whole text."""
    word = normalize_keyword_text(text)
    if not word:
        return None
    for kind, words in (await keyword_lists(account_id)).items():
        if word in words:
            return kind
    return None


async def confirmation_reply(account_id: int, kind: str) -> str:
    """The reply sent for a compliance keyword of `kind`: the nearest ancestor's, else the
    default. It is sent even after an opt-out (it confirms the opt-out)."""
    if kind not in KEYWORD_KINDS:
        raise ValueError(f"unknown keyword kind {kind!r}")
    chain = await _tree_root_and_chain(account_id)
    rows = await ConsentReply.select(ConsentReply.account_id, ConsentReply.body).where(
        ConsentReply.account_id.is_in(chain) & (ConsentReply.kind == kind)
    )
    by_account = {r["account_id"]: r["body"] for r in rows if r["body"]}
    for ancestor_id in reversed(chain):
        if ancestor_id in by_account:
            return str(by_account[ancestor_id])
    return DEFAULT_REPLIES[kind]


async def confirmation_replies(account_id: int) -> dict[str, tuple[str, bool]]:
    """Per kind: (effective reply, whether this account itself sets it)."""
    own = {
        r["kind"]: r["body"]
        for r in await ConsentReply.select(ConsentReply.kind, ConsentReply.body).where(
            ConsentReply.account_id == account_id
        )
    }
    return {
        kind: (await confirmation_reply(account_id, kind), bool(own.get(kind)))
        for kind in KEYWORD_KINDS
    }


async def _require_master(account_id: int) -> None:
    row = await Account.select(Account.parent, Account.kind).where(Account.id == account_id).first()
    if row is None:
        raise NotFound(f"account {account_id} not found")
    if row["parent"] is not None:
        raise PermissionDenied(
            "Compliance keywords and replies are set by the master account for its whole tree."
        )


def parse_keyword_words(raw: str) -> list[str]:
    """Words from a comma, space or newline separated list, normalised and de-duplicated."""
    words = [normalize_keyword_text(w) for w in re.split(r"[,\s]+", raw or "")]
    return list(dict.fromkeys(w for w in words if w))


async def set_custom_keywords(
    *, actor: audit.Actor, account_id: int, kind: str, words: Sequence[str]
) -> list[str]:
    """Replace the words a master adds to `kind` (the defaults always stay)."""
    if kind not in KEYWORD_KINDS:
        raise ValidationFailed({"kind": "Kind must be opt_out, opt_in or help."})
    clean = list(dict.fromkeys(normalize_keyword_text(w) for w in words if w.strip()))
    bad = [w for w in clean if not KEYWORD_RE.match(w)]
    if bad:
        raise ValidationFailed(
            {kind: f"Keywords are 2-20 letters or digits without spaces: {', '.join(bad)}."}
        )
    if len(clean) > MAX_CUSTOM_KEYWORDS:
        raise ValidationFailed({kind: f"At most {MAX_CUSTOM_KEYWORDS} added words per kind."})
    async with transaction():
        await _require_master(account_id)
        others = await ConsentKeyword.select(ConsentKeyword.kind, ConsentKeyword.word).where(
            (ConsentKeyword.account_id == account_id) & (ConsentKeyword.kind != kind)
        )
        taken = {w: k for k, ws in DEFAULT_KEYWORDS.items() for w in ws} | {
            r["word"]: r["kind"] for r in others
        }
        clash = [f"{w} ({taken[w].replace('_', '-')})" for w in clean if w in taken]
        if clash:
            raise ValidationFailed(
                {kind: f"Already a keyword of another kind: {', '.join(clash)}."}
            )
        before = (await custom_keywords(account_id))[kind]
        await ConsentKeyword.delete().where(
            (ConsentKeyword.account_id == account_id) & (ConsentKeyword.kind == kind)
        )
        if clean:
            await ConsentKeyword.insert(
                *[ConsentKeyword(account_id=account_id, kind=kind, word=w) for w in clean]
            )
        if sorted(before) != sorted(clean):
            await audit.record(
                actor,
                account_id=account_id,
                action="consent.keywords",
                target_type="consent_keyword",
                target_id=kind,
                before={"words": sorted(before)},
                after={"words": sorted(clean)},
            )
    return sorted(clean)


async def set_confirmation_reply(
    *, actor: audit.Actor, account_id: int, kind: str, body: str
) -> None:
    """Set a master's reply for `kind`; an empty body goes back to the default."""
    if kind not in KEYWORD_KINDS:
        raise ValidationFailed({"kind": "Kind must be opt_out, opt_in or help."})
    body = (body or "").strip()
    if len(body) > MAX_REPLY:
        raise ValidationFailed({f"reply_{kind}": f"A reply is at most {MAX_REPLY} characters."})
    async with transaction():
        await _require_master(account_id)
        existing = await ConsentReply.select(ConsentReply.body).where(
            (ConsentReply.account_id == account_id) & (ConsentReply.kind == kind)
        )
        before = existing[0]["body"] if existing else ""
        if before == body:
            return
        await ConsentReply.delete().where(
            (ConsentReply.account_id == account_id) & (ConsentReply.kind == kind)
        )
        if body:
            await ConsentReply.insert(ConsentReply(account_id=account_id, kind=kind, body=body))
        await audit.record(
            actor,
            account_id=account_id,
            action="consent.reply",
            target_type="consent_reply",
            target_id=kind,
            before={"body": before},
            after={"body": body},
        )
