"""API keys: a key id and a secret shown once; only the secret's argon2 hash is stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from tenants.access.decide import Grants, Principal, resolve_roles
from tenants.access.tables import ApiKey, User
from tenants.access.users import hash_password, verify_password
from tenants.accounts.tree import get_account
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import first_or_404, transaction, view_of
from tenants.errors import NotFound, ValidationFailed


@dataclass(frozen=True)
class NewApiKey:
    id: int
    key_id: str
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    key_id: str
    name: str
    role: str
    created_by: str  # the creator's email, or "system" (CLI)
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


async def create_api_key(
    *,
    actor: audit.Actor,
    account_id: int,
    name: str,
    role: str = "Sender",
    grants: Grants | None = None,
) -> NewApiKey:
    """A new key for the account; with `grants` (a person creating it) the key's role must
    lie within that person's own powers."""
    errors: dict[str, str] = {}
    if not name or not name.strip():
        errors["name"] = "Name is required."
    elif len(name.strip()) > 120:
        errors["name"] = "Name must be at most 120 characters."
    account = await get_account(account_id)
    permissions = (await resolve_roles(account.ancestor_ids, {role}))[role] if role else None
    if not permissions:
        errors["role"] = f"Unknown role {role!r}."
    elif grants is not None:
        missing = sorted(p for p in permissions if not grants.holds(p))
        if missing:
            errors["role"] = (
                f"You cannot give a key the role {role}: it includes permissions you do not "
                f"hold ({', '.join(missing)})."
            )
    if errors:
        raise ValidationFailed(errors)
    key_id = "key_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    async with transaction():
        rows = await ApiKey.insert(
            ApiKey(
                key_id=key_id,
                secret_hash=hash_password(secret),
                account=account_id,
                name=name.strip(),
                role=role,
                created_by=actor.user_id,
            )
        ).returning(ApiKey.id)
        await audit.record(
            actor,
            account_id=account_id,
            action="api_key.create",
            target_type="api_key",
            target_id=key_id,
            after={"name": name.strip(), "role": role},
        )
    return NewApiKey(id=rows[0]["id"], key_id=key_id, secret=secret)


async def authenticate_key(key_id: str, secret: str) -> Principal | None:
    row = (
        await ApiKey.select(
            ApiKey.id,
            ApiKey.secret_hash,
            ApiKey.account,
            ApiKey.name,
            ApiKey.role,
            ApiKey.revoked_at,
        )
        .where(ApiKey.key_id == key_id)
        .first()
    )
    if row is None or row["revoked_at"] is not None:
        verify_password("", secret)  # same cost either way
        return None
    if not verify_password(row["secret_hash"], secret):
        return None
    await ApiKey.update({ApiKey.last_used_at: now()}).where(ApiKey.id == row["id"])
    return Principal(
        kind="api_key",
        label=f"{row['name']} ({key_id})",
        api_key_id=row["id"],
        key_account_id=row["account"],
        key_role=row["role"],
    )


async def key_is_active(key_id: str) -> bool:
    return await ApiKey.exists().where((ApiKey.key_id == key_id) & (ApiKey.revoked_at.is_null()))


async def list_api_keys(account_id: int) -> list[ApiKeyView]:
    """The account's keys, newest first (revoked ones too, marked)."""
    rows = (
        await ApiKey.select(
            ApiKey.id,
            ApiKey.key_id,
            ApiKey.name,
            ApiKey.role,
            ApiKey.created_by,
            ApiKey.created_at,
            ApiKey.last_used_at,
            ApiKey.revoked_at,
        )
        .where(ApiKey.account == account_id)
        .order_by(ApiKey.id, ascending=False)
    )
    creator_ids = sorted({r["created_by"] for r in rows if r["created_by"] is not None})
    emails = (
        {
            u["id"]: u["email"]
            for u in await User.select(User.id, User.email).where(User.id.is_in(creator_ids))
        }
        if creator_ids
        else {}
    )
    return [
        view_of(
            ApiKeyView,
            r,
            created_by=emails.get(r["created_by"], "system"),
        )
        for r in rows
    ]


async def revoke_api_key(*, actor: audit.Actor, account_id: int, api_key_id: int) -> ApiKeyView:
    """Revoke a key of the account; the next request made with it gets 401."""
    async with transaction():
        row = await first_or_404(
            ApiKey.select(ApiKey.key_id, ApiKey.name, ApiKey.role, ApiKey.revoked_at).where(
                (ApiKey.id == api_key_id) & (ApiKey.account == account_id)
            ),
            "API key not found",
        )
        if row["revoked_at"] is None:
            await ApiKey.update({ApiKey.revoked_at: now()}).where(ApiKey.id == api_key_id)
            await audit.record(
                actor,
                account_id=account_id,
                action="api_key.revoke",
                target_type="api_key",
                target_id=row["key_id"],
                before={"name": row["name"], "role": row["role"], "active": True},
                after={"name": row["name"], "role": row["role"], "active": False},
            )
    for key in await list_api_keys(account_id):
        if key.id == api_key_id:
            return key
    raise NotFound("API key not found")
