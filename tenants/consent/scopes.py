"""Consent scopes: which account's scope an account's consent lives in, the derived state
per scope rebuilt from the append-only events, and changing an account's consent_mode.

An account's consent scope is itself when it is isolated or a root, else its parent's scope,
so an opt-out received anywhere applies to the whole scope. The state table is derived from
the events (latest event per scope, phone and channel group wins) and is rebuilt for the
affected scopes whenever a consent_mode changes; the events themselves are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tenants.accounts.tables import Account
from tenants.accounts.tree import (
    AccountView,
    get_in_subtree,
    path_ids,
    record_account_update,
    validate_account_fields,
)
from tenants.audit import record as audit
from tenants.consent.tables import (
    ConsentEvent,
    ConsentState,
)
from tenants.db import first_or_404, is_sqlite, shared_read, transaction
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.phones import normalize_phone

GROUPS = ("sms", "whatsapp")


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
class ScopedAccount:
    id: int
    path: str
    default_region: str
    scope_id: int


async def scoped_account(account_id: int, *, lock: bool = False) -> ScopedAccount:
    """The account, its region and consent scope; `lock` holds the chain of consent modes.

    On PostgreSQL the ancestors' rows are locked FOR KEY SHARE so a concurrent consent_mode
    change (which takes FOR UPDATE) cannot slip between reading the scope and writing the
    state; SQLite transactions are already serialised by the IMMEDIATE write lock. Unlocked,
    it is read once per reads_shared() block (and kept across an inbound group's blocks
    while cache_version stands); locked, the consent modes are always read under the lock
    (the lock is the point), the account's path and region are the block's (a path never
    changes once the account exists).
    """
    if not lock:
        return await shared_read(
            ("scoped_account", account_id), lambda: _scoped(account_id), settled=True
        )
    return await _scoped(account_id, lock=True)


async def _scoped(account_id: int, *, lock: bool = False) -> ScopedAccount:
    async def load() -> dict[str, Any]:
        return await first_or_404(
            Account.select(Account.id, Account.path, Account.default_region).where(
                Account.id == account_id
            ),
            f"account {account_id} not found",
        )

    row = await shared_read(("account_region", account_id), load, settled=True)
    ids = path_ids(row["path"])
    query = Account.select(Account.id, Account.consent_mode).where(Account.id.is_in(ids))
    if lock and not is_sqlite():
        query = query.lock_rows("KEY SHARE")
    modes = {r["id"]: r["consent_mode"] for r in await query}
    scope = ids[0]
    for ancestor_id in ids[1:]:
        if modes.get(ancestor_id) == "isolated":
            scope = ancestor_id
    return ScopedAccount(
        id=row["id"],
        path=row["path"],
        default_region=row["default_region"] or "AU",
        scope_id=scope,
    )


async def resolve_consent_scope(account_id: int) -> int:
    """The account whose scope this account's consent lives in (itself if isolated or root)."""
    return (await scoped_account(account_id)).scope_id


async def scope_members(scope_account_id: int) -> list[int]:
    """Accounts whose consent scope is `scope_account_id` (empty if it is not a scope)."""
    if not await is_scope(scope_account_id):
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


async def is_scope(account_id: int) -> bool:
    row = (
        await Account.select(Account.parent, Account.consent_mode)
        .where(Account.id == account_id)
        .first()
    )
    return row is not None and (row["parent"] is None or row["consent_mode"] == "isolated")


def normalize_for(account: ScopedAccount, phone: str) -> str:
    e164 = normalize_phone(phone, account.default_region)
    if e164 is None:
        raise ValidationFailed({"phone": f"{phone!r} is not a valid phone number."})
    return e164


UPSERT_FROM_EVENTS = """
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


_DERIVE_SCOPE = UPSERT_FROM_EVENTS % _LATEST_IN_SCOPE


async def derive_scope(scope_account_id: int) -> None:
    """Rebuild the state rows of one scope from its member accounts' events."""
    await ConsentState.delete().where(ConsentState.scope_account_id == scope_account_id)
    if not await is_scope(scope_account_id):
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
            await derive_scope(scope_id)


async def rederive_tree(account_id: int) -> None:
    """Rebuild the derived state of every scope in the tree that holds `account_id`.

    For structural changes (moving a subtree); a consent_mode change only needs the two
    scopes it touches (`on_consent_mode_changed`).
    """
    row = await first_or_404(
        Account.select(Account.path).where(Account.id == account_id),
        f"account {account_id} not found",
    )
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
            if await is_scope(scope_id):
                await derive_scope(scope_id)


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
        await derive_scope(account_id)
        await derive_scope(parent_scope)


async def set_consent_mode(
    *, actor: audit.Actor, within_account_id: int, account_id: int, consent_mode: str
) -> AccountView:
    """Set an account's consent_mode from the account above it and re-derive the two scopes
    whose membership changes, in one transaction. Setting the mode it already has changes
    nothing and writes no audit row."""
    errors = validate_account_fields(name=None, slug=None, consent_mode=consent_mode)
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        before = await get_in_subtree(within_account_id, account_id)
        if consent_mode == before.consent_mode:
            return before
        if account_id == within_account_id:
            # Otherwise a sub-account could set itself apart from its tree's opt-outs.
            raise Conflict(
                "An account's consent mode is set from the account above it.", code="own_account"
            )
        await Account.update({Account.consent_mode: consent_mode}).where(Account.id == account_id)
        await on_consent_mode_changed(account_id)
        return await record_account_update(actor, before)


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
