"""API keys: a key id and a secret shown once; only the secret's argon2 hash is stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants import audit
from tenants.access import BUILTIN_ROLES, Principal
from tenants.accounts import Account, get_account
from tenants.clock import now
from tenants.db import transaction
from tenants.errors import ValidationFailed
from tenants.users import hash_password, verify_password


class ApiKey(Table, tablename="api_key"):
    id: Serial
    key_id = Varchar(length=40, unique=True, index=True)
    secret_hash = Varchar(length=255)
    account = ForeignKey(Account, index=True)
    name = Varchar(length=120)
    role = Varchar(length=64, default="Sender")
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


@dataclass(frozen=True)
class NewApiKey:
    id: int
    key_id: str
    secret: str  # shown once, never stored


async def create_api_key(
    *, actor: audit.Actor, account_id: int, name: str, role: str = "Sender"
) -> NewApiKey:
    errors: dict[str, str] = {}
    if not name or not name.strip():
        errors["name"] = "Name is required."
    if role not in BUILTIN_ROLES:
        errors["role"] = f"Unknown role {role!r}; choose one of {', '.join(BUILTIN_ROLES)}."
    if errors:
        raise ValidationFailed(errors)
    await get_account(account_id)
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
