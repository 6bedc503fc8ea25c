"""The account tree: platform, masters (resellers) and sub-accounts of any depth.

Each account stores its materialized path (`/1/7/12/`, ending with its own id) so a
subtree is one indexed prefix query and the ancestors are the ids in the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from piccolo.query.functions.aggregate import Count

from tenants.access.tables import Membership
from tenants.accounts.tables import Account
from tenants.audit import record as audit
from tenants.db import first_or_404, shared_read, transaction, view_of
from tenants.errors import Conflict, NotFound, ValidationFailed

KINDS = ("platform", "master", "sub")
STATUSES = ("active", "suspended")
CONSENT_MODES = ("inherit", "isolated")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str
    slug: str
    kind: str
    parent_id: int | None
    path: str
    depth: int
    status: str
    consent_mode: str
    balance: int

    @property
    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to and including this account."""
        return path_ids(self.path)

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


ACCOUNT_COLUMNS = (
    Account.id,
    Account.name,
    Account.slug,
    Account.kind,
    Account.parent,
    Account.path,
    Account.depth,
    Account.status,
    Account.consent_mode,
    Account.balance,
)


def path_ids(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p]


def _view(row: dict[str, Any]) -> AccountView:
    return view_of(
        AccountView,
        row,
        parent_id=row["parent"],
    )


async def get_account(account_id: int) -> AccountView:
    async def load() -> AccountView:
        row = await first_or_404(
            Account.select(*ACCOUNT_COLUMNS).where(Account.id == account_id),
            f"account {account_id} not found",
        )
        return _view(row)

    # Once per reads_shared() block, and kept across blocks while cache_version stands:
    # the view's balance is then stale, and such work never reads it (the reservation's
    # UPDATE ... WHERE balance >= is what decides).
    return await shared_read(("account", account_id), load, settled=True)


async def get_account_by_slug(slug: str) -> AccountView:
    row = await first_or_404(
        Account.select(*ACCOUNT_COLUMNS).where(Account.slug == slug), f"account {slug!r} not found"
    )
    return _view(row)


async def get_accounts(ids: list[int]) -> list[AccountView]:
    if not ids:
        return []
    rows = await Account.select(*ACCOUNT_COLUMNS).where(Account.id.is_in(ids))
    return [_view(r) for r in rows]


def zone_named(name: str | None) -> ZoneInfo:
    """The time zone an account names; UTC when it names none or an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def timezones(ids: list[int]) -> dict[int, ZoneInfo]:
    """id -> the account's time zone, for these accounts in one query."""
    if not ids:
        return {}
    wanted = tuple(sorted(set(ids)))

    async def load() -> dict[int, ZoneInfo]:
        rows = await Account.select(Account.id, Account.timezone).where(
            Account.id.is_in(list(wanted))
        )
        return {r["id"]: zone_named(r["timezone"]) for r in rows}

    return dict(await shared_read(("timezones", wanted), load, settled=True))


async def subtree(
    account_id: int, *, include_self: bool = True, root: AccountView | None = None
) -> list[AccountView]:
    """The account and all its descendants, ordered by path (parents before children);
    `root` is that account when the caller already holds it (one read fewer)."""
    if root is None or root.id != account_id:
        root = await get_account(account_id)
    query = Account.select(*ACCOUNT_COLUMNS).where(Account.path.like(root.path + "%"))
    if not include_self:
        query = query.where(Account.id != account_id)
    rows = await query.order_by(Account.depth).order_by(Account.name)
    return [_view(r) for r in rows]


async def children(account_id: int) -> list[AccountView]:
    rows = (
        await Account.select(*ACCOUNT_COLUMNS)
        .where(Account.parent == account_id)
        .order_by(Account.name)
    )
    return [_view(r) for r in rows]


async def child_counts(parent_ids: list[int]) -> dict[int, int]:
    """How many direct children each of these accounts has (one query)."""
    if not parent_ids:
        return {}
    rows = (
        await Account.select(Account.parent, Count(Account.id, alias="n"))
        .where(Account.parent.is_in(parent_ids))
        .group_by(Account.parent)
    )
    return {r["parent"]: r["n"] for r in rows}


def is_in_subtree(candidate: AccountView, root: AccountView) -> bool:
    return candidate.path.startswith(root.path)


async def get_in_subtree(root_id: int, account_id: int) -> AccountView:
    """An account that must lie in root's subtree; anything else is NotFound (no leak)."""
    root = await get_account(root_id)
    try:
        target = await get_account(account_id)
    except NotFound:
        raise NotFound(f"account {account_id} not found") from None
    if not is_in_subtree(target, root):
        raise NotFound(f"account {account_id} not found")
    return target


async def suspended_ancestor(account: AccountView) -> AccountView | None:
    """The nearest suspended account among the account and its ancestors, if any.

    Suspension cascades without rewriting descendants: an account is effectively
    suspended while it or any ancestor is, and reactivating the ancestor restores the
    subtree except the accounts suspended in their own right.
    """
    rows = await Account.select(*ACCOUNT_COLUMNS).where(
        Account.id.is_in(account.ancestor_ids) & (Account.status == "suspended")
    )
    if not rows:
        return None
    return max((_view(r) for r in rows), key=lambda a: a.depth)


def validate_account_fields(
    *, name: str | None, slug: str | None, consent_mode: str | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if name is not None:
        if not name.strip():
            errors["name"] = "Name is required."
        elif len(name.strip()) > 120:
            errors["name"] = "Name must be at most 120 characters."
    if slug is not None:
        if not slug:
            errors["slug"] = "Slug is required."
        elif not SLUG_RE.match(slug):
            errors["slug"] = (
                "Slug must be 1-40 lowercase letters, digits or hyphens, "
                "not starting or ending with a hyphen."
            )
    if consent_mode is not None and consent_mode not in CONSENT_MODES:
        errors["consent_mode"] = "Consent mode must be 'inherit' or 'isolated'."
    return errors


async def _insert_account(
    *, name: str, slug: str, kind: str, parent: AccountView | None, consent_mode: str
) -> AccountView:
    rows = await Account.insert(
        Account(
            name=name,
            slug=slug,
            kind=kind,
            parent=parent.id if parent else None,
            depth=(parent.depth + 1) if parent else 0,
            consent_mode=consent_mode,
            path="",
        )
    ).returning(Account.id)
    new_id = rows[0]["id"]
    path = f"{parent.path if parent else '/'}{new_id}/"
    await Account.update({Account.path: path}).where(Account.id == new_id)
    return await get_account(new_id)


async def create_root_account(
    *, name: str, slug: str, kind: str = "master", consent_mode: str = "inherit"
) -> AccountView:
    """A master (reseller) or the platform account; only operators and the CLI call this."""
    slug = (slug or "").strip().lower()
    errors = validate_account_fields(name=name, slug=slug, consent_mode=consent_mode)
    if kind not in ("platform", "master"):
        errors["kind"] = "A root account is a platform or a master account."
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        if await Account.exists().where(Account.slug == slug):
            raise ValidationFailed({"slug": f"The slug {slug!r} is already taken."})
        return await _insert_account(
            name=name.strip(), slug=slug, kind=kind, parent=None, consent_mode=consent_mode
        )


async def create_master_account(
    *, actor: audit.Actor, name: str, slug: str, owner_user_id: int | None = None
) -> AccountView:
    """A new reseller (operator only); optionally with an existing user as its Owner."""
    async with transaction():
        created = await create_root_account(name=name, slug=slug, kind="master")
        if owner_user_id is not None:
            await Membership.insert(
                Membership(user=owner_user_id, account=created.id, role="Owner")
            )
        await audit.record(
            actor,
            account_id=created.id,
            action="account.create_master",
            target_type="account",
            target_id=created.id,
            after={"name": created.name, "slug": created.slug, "owner_user_id": owner_user_id},
        )
        return created


async def root_accounts(*, kind: str) -> list[AccountView]:
    rows = (
        await Account.select(*ACCOUNT_COLUMNS)
        .where((Account.parent.is_null()) & (Account.kind == kind))
        .order_by(Account.name)
    )
    return [_view(r) for r in rows]


async def subtree_sizes(root_ids: list[int]) -> dict[int, int]:
    """How many descendants each root has (one query over the path prefix)."""
    if not root_ids:
        return {}
    rows = await Account.select(Account.path).where(Account.depth > 0)
    sizes = dict.fromkeys(root_ids, 0)
    for row in rows:
        root = path_ids(row["path"])[0]
        if root in sizes:
            sizes[root] += 1
    return sizes


async def create_sub_account(
    *,
    actor: audit.Actor,
    within_account_id: int,
    parent_id: int,
    name: str,
    slug: str,
    consent_mode: str = "inherit",
) -> AccountView:
    """Create a sub-account under `parent_id`, which must lie in the caller's subtree."""
    slug = (slug or "").strip().lower()
    errors = validate_account_fields(name=name, slug=slug, consent_mode=consent_mode)
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        parent = await get_in_subtree(within_account_id, parent_id)
        if parent.kind == "platform":
            raise ValidationFailed({"parent_id": "Masters are created by the platform operator."})
        if await Account.exists().where(Account.slug == slug):
            raise ValidationFailed({"slug": f"The slug {slug!r} is already taken."})
        created = await _insert_account(
            name=name.strip(), slug=slug, kind="sub", parent=parent, consent_mode=consent_mode
        )
        await audit.record(
            actor,
            account_id=parent.id,
            action="account.create",
            target_type="account",
            target_id=created.id,
            after={"name": created.name, "slug": created.slug, "consent_mode": consent_mode},
        )
        return created


async def record_account_update(actor: audit.Actor, before: AccountView) -> AccountView:
    """Write the account.update audit row (name and consent_mode, before and after) for an
    account just changed in the caller's transaction; returns the account as it is now."""
    after = await get_account(before.id)
    await audit.record(
        actor,
        account_id=before.id,
        action="account.update",
        target_type="account",
        target_id=before.id,
        before={"name": before.name, "consent_mode": before.consent_mode},
        after={"name": after.name, "consent_mode": after.consent_mode},
    )
    return after


async def update_account(
    *,
    actor: audit.Actor,
    within_account_id: int,
    account_id: int,
    name: str | None = None,
) -> AccountView:
    """Rename an account in the caller's subtree. Its consent_mode is changed through
    `tenants.consent.scopes.set_consent_mode`, which also re-derives consent state."""
    errors = validate_account_fields(name=name, slug=None, consent_mode=None)
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        before = await get_in_subtree(within_account_id, account_id)
        if name is None:
            return before
        await Account.update({Account.name: name.strip()}).where(Account.id == account_id)
        return await record_account_update(actor, before)


async def set_status(
    *, actor: audit.Actor, within_account_id: int, account_id: int, status: str
) -> AccountView:
    """Suspend or reactivate an account strictly below the caller's working account."""
    if status not in STATUSES:
        raise ValidationFailed({"status": "Status must be 'active' or 'suspended'."})
    async with transaction():
        target = await get_in_subtree(within_account_id, account_id)
        if target.id == within_account_id:
            raise Conflict(
                "An account cannot suspend or reactivate itself; its parent does.",
                code="own_account",
            )
        if target.status != status:
            await Account.update({Account.status: status}).where(Account.id == account_id)
            await audit.record(
                actor,
                account_id=account_id,
                action="account.suspend" if status == "suspended" else "account.reactivate",
                target_type="account",
                target_id=account_id,
                before={"status": target.status},
                after={"status": status},
            )
        return await get_account(account_id)


async def default_region(account_id: int) -> str:
    """The region national numbers typed in this account are read in ("AU" when unset)."""

    async def load() -> dict[str, Any] | None:
        return await Account.select(Account.default_region).where(Account.id == account_id).first()  # type: ignore[no-any-return]

    row = await shared_read(("default_region", account_id), load, settled=True)
    return str((row or {}).get("default_region") or "AU")
