"""People: users (email unique case-insensitively, argon2 password hash) and their
memberships in accounts, each with a role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tenants.access.tables import Membership, User
from tenants.audit import record as audit
from tenants.db import first_or_404, transaction, view_of
from tenants.errors import ValidationFailed

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Verifying against this keeps the time of a sign-in for an unknown email close to a real one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    name: str
    is_operator: bool
    active: bool


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_new_user(email: str, password: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "Enter a valid email address."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Password must be at least {MIN_PASSWORD} characters."
    return errors


def _view(row: dict[str, Any]) -> UserView:
    return view_of(
        UserView,
        row,
    )


_USER_COLUMNS = (User.id, User.email, User.name, User.is_operator, User.active)


async def get_user(user_id: int) -> UserView:
    row = await first_or_404(
        User.select(*_USER_COLUMNS).where(User.id == user_id), "user not found"
    )
    return _view(row)


async def find_user_by_email(email: str) -> UserView | None:
    row = await User.select(*_USER_COLUMNS).where(User.email == normalize_email(email)).first()
    return _view(row) if row else None


async def create_user(
    *,
    email: str,
    password: str,
    name: str = "",
    is_operator: bool = False,
    password_hash: str | None = None,
) -> UserView:
    """Create a user; `password_hash` lets fixtures reuse one precomputed hash."""
    email = normalize_email(email)
    errors = validate_new_user(email, password if password_hash is None else "x" * MIN_PASSWORD)
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        if await User.exists().where(User.email == email):
            raise ValidationFailed({"email": f"A user with the email {email} already exists."})
        rows = await User.insert(
            User(
                email=email,
                name=name.strip(),
                password_hash=password_hash or hash_password(password),
                is_operator=is_operator,
            )
        ).returning(User.id)
        return await get_user(rows[0]["id"])


async def set_password(user_id: int, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            {"password": f"Password must be at least {MIN_PASSWORD} characters."}
        )
    await User.update({User.password_hash: hash_password(password)}).where(User.id == user_id)


async def authenticate(email: str, password: str) -> UserView | None:
    """The active user with this email and password, else None (no hint which was wrong)."""
    row = (
        await User.select(*_USER_COLUMNS, User.password_hash)
        .where(User.email == normalize_email(email))
        .first()
    )
    ok = verify_password(row["password_hash"] if row else "", password)
    # A user without a password hash (none set) never signs in with a password, even one
    # that happens to match the dummy hash used to even out timing.
    if not row or not row["password_hash"] or not ok or not row["active"]:
        return None
    return _view(row)


async def add_membership(*, user_id: int, account_id: int, role: str) -> None:
    async with transaction():
        existing = (
            await Membership.select(Membership.id)
            .where((Membership.user == user_id) & (Membership.account == account_id))
            .first()
        )
        if existing:
            await Membership.update({Membership.role: role}).where(Membership.id == existing["id"])
        else:
            await Membership.insert(Membership(user=user_id, account=account_id, role=role))


@dataclass(frozen=True)
class MembershipView:
    account_id: int
    account_name: str
    account_slug: str
    account_path: str
    role: str


async def memberships(user_id: int) -> list[MembershipView]:
    rows = (
        await Membership.select(
            Membership.account.id,
            Membership.account.name,
            Membership.account.slug,
            Membership.account.path,
            Membership.role,
        )
        .where(Membership.user == user_id)
        .order_by(Membership.account.name)
    )
    return [
        MembershipView(
            account_id=r["account.id"],
            account_name=r["account.name"],
            account_slug=r["account.slug"],
            account_path=r["account.path"],
            role=r["role"],
        )
        for r in rows
    ]


async def default_account_id(user_id: int) -> int | None:
    """The account the person chose to land in at sign-in, if any."""
    row = await User.select(User.default_account_id).where(User.id == user_id).first()
    return row["default_account_id"] if row else None


async def set_default_account(
    *, actor: audit.Actor, user_id: int, account_id: int | None, working_account_id: int
) -> None:
    """Choose (or with None, forget) the account sign-in lands in: one of the person's own
    memberships, else ValidationFailed naming `account_id` and nothing changes. The audit
    row goes to the chosen account (the working one when the choice is forgotten)."""
    async with transaction():
        if account_id is not None and all(
            m.account_id != account_id for m in await memberships(user_id)
        ):
            raise ValidationFailed({"account_id": "Choose one of the accounts you belong to."})
        before = await default_account_id(user_id)
        await User.update({User.default_account_id: account_id}).where(User.id == user_id)
        await audit.record(
            actor,
            account_id=account_id or working_account_id,
            action="user.default_account",
            target_type="user",
            target_id=user_id,
            before={"default_account_id": before},
            after={"default_account_id": account_id},
        )


async def count_members(account_id: int) -> int:
    return await Membership.count().where(Membership.account == account_id)
