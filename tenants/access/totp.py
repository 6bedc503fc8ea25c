"""Optional TOTP second factor (pyotp): per-user enrolment, the master's policy that
makes it compulsory for Owners and Admins of its tree, and the short-lived challenge a
sign-in passes through before it becomes a session."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp

from tenants import secrets_box
from tenants.access.decide import Grants
from tenants.access.tables import Membership, SignInChallenge, TotpPolicy, User, UserTotp
from tenants.accounts.tree import path_ids
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import flag, transaction
from tenants.errors import Conflict, NotFound, ValidationFailed

ENFORCED_ROLES = ("Owner", "Admin")
CHALLENGE_LIFETIME = timedelta(minutes=10)
MAX_CHALLENGE_ATTEMPTS = 5
ISSUER_NAME = "SMS Portal"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


@dataclass(frozen=True)
class Challenge:
    id: int
    user_id: int
    email: str
    account_id: int | None
    next_path: str
    enrolled: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def is_enrolled(user_id: int) -> bool:
    return await UserTotp.exists().where(
        (UserTotp.user == user_id) & UserTotp.confirmed_at.is_not_null()
    )


async def totp_required(user_id: int) -> bool:
    """True when the user is Owner or Admin somewhere in a tree whose master requires TOTP."""
    rows = await Membership.select(Membership.account.path).where(
        (Membership.user == user_id) & Membership.role.is_in(list(ENFORCED_ROLES))
    )
    roots = sorted({path_ids(r["account.path"])[0] for r in rows if r["account.path"]})
    if not roots:
        return False
    return await TotpPolicy.exists().where(
        TotpPolicy.account.is_in(roots) & (TotpPolicy.require_for_admins == True)  # noqa: E712
    )


async def second_factor_needed(user_id: int) -> bool:
    return await is_enrolled(user_id) or await totp_required(user_id)


async def policy_requires(root_account_id: int) -> bool:
    return await flag(TotpPolicy.require_for_admins, TotpPolicy.account == root_account_id)


async def set_policy(actor: audit.Actor, grants: Grants, *, require_for_admins: bool) -> None:
    account = grants.account
    if not account.is_root:
        raise Conflict(
            "Two-factor rules are set by the master account for its whole tree.",
            code="not_master",
        )
    async with transaction():
        before = await policy_requires(account.id)
        if before == require_for_admins:
            return
        if await TotpPolicy.exists().where(TotpPolicy.account == account.id):
            await TotpPolicy.update(
                {TotpPolicy.require_for_admins: require_for_admins, TotpPolicy.updated_at: now()}
            ).where(TotpPolicy.account == account.id)
        else:
            await TotpPolicy.insert(
                TotpPolicy(account=account.id, require_for_admins=require_for_admins)
            )
        await audit.record(
            actor,
            account_id=account.id,
            action="totp.policy",
            target_type="account",
            target_id=account.id,
            before={"require_totp_for_owners_and_admins": before},
            after={"require_totp_for_owners_and_admins": require_for_admins},
        )


async def begin_enrolment(user_id: int) -> Enrolment:
    """A new (unconfirmed) seed for the user; confirmed only by a correct code."""
    user = await User.select(User.email).where(User.id == user_id).first()
    if user is None:
        raise NotFound("user not found")
    if await is_enrolled(user_id):
        raise Conflict("Two-factor sign-in is already on.", code="totp_enabled")
    secret = pyotp.random_base32()
    async with transaction():
        await UserTotp.delete().where(UserTotp.user == user_id)
        await UserTotp.insert(UserTotp(user=user_id, secret=secrets_box.encrypt(secret)))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user["email"], issuer_name=ISSUER_NAME)
    return Enrolment(secret=secret, uri=uri)


async def pending_enrolment(user_id: int) -> Enrolment | None:
    row = (
        await UserTotp.select(UserTotp.secret, UserTotp.confirmed_at, UserTotp.user.email)
        .where(UserTotp.user == user_id)
        .first()
    )
    if row is None or row["confirmed_at"] is not None:
        return None
    secret = secrets_box.decrypt(row["secret"])
    uri = pyotp.TOTP(secret).provisioning_uri(name=row["user.email"], issuer_name=ISSUER_NAME)
    return Enrolment(secret=secret, uri=uri)


def _matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step (30 s) the code belongs to, allowing one step of clock drift."""
    code = "".join(ch for ch in code if ch in "0123456789")  # not "²": compare_digest refuses it
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    step = int(at // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


async def _use_code(user_id: int, code: str, *, confirmed: bool) -> bool:
    row = (
        await UserTotp.select(UserTotp.id, UserTotp.secret, UserTotp.confirmed_at)
        .where(UserTotp.user == user_id)
        .first()
    )
    if row is None or (row["confirmed_at"] is not None) != confirmed:
        return False
    step = _matching_step(secrets_box.decrypt(row["secret"]), code, time.time())
    if step is None:
        return False
    # One statement: a code already used (or an older one) is refused even when two
    # sign-ins race with the same code.
    values: dict[Any, Any] = {UserTotp.last_step: step}
    if not confirmed:
        values[UserTotp.confirmed_at] = now()
    used = (
        await UserTotp.update(values)
        .where((UserTotp.id == row["id"]) & (UserTotp.last_step < step))
        .returning(UserTotp.id)
    )
    return bool(used)


async def verify_code(user_id: int, code: str) -> bool:
    return await _use_code(user_id, code, confirmed=True)


async def confirm_enrolment(actor: audit.Actor, user_id: int, code: str, account_id: int) -> None:
    async with transaction():
        if not await _use_code(user_id, code, confirmed=False):
            raise ValidationFailed({"code": "That code is not right; check the app's clock."})
        await audit.record(
            actor,
            account_id=account_id,
            action="user.totp_enable",
            target_type="user",
            target_id=user_id,
            before={"totp": False},
            after={"totp": True},
        )


async def disable(actor: audit.Actor, user_id: int, code: str, account_id: int) -> None:
    if await totp_required(user_id):
        raise Conflict(
            "Your organisation requires two-factor sign-in for your role.", code="totp_required"
        )
    async with transaction():
        if not await verify_code(user_id, code):
            raise ValidationFailed({"code": "That code is not right."})
        await UserTotp.delete().where(UserTotp.user == user_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="user.totp_disable",
            target_type="user",
            target_id=user_id,
            before={"totp": True},
            after={"totp": False},
        )


async def start_challenge(user_id: int, account_id: int | None, next_path: str) -> str:
    token = secrets.token_urlsafe(32)
    await SignInChallenge.insert(
        SignInChallenge(
            token_hash=_hash(token),
            user=user_id,
            account_id=account_id,
            next_path=next_path,
            expires_at=now() + CHALLENGE_LIFETIME,
        )
    )
    return token


async def load_challenge(token: str) -> Challenge | None:
    if not token:
        return None
    row = (
        await SignInChallenge.select(
            SignInChallenge.id,
            SignInChallenge.user.id,
            SignInChallenge.user.email,
            SignInChallenge.account_id,
            SignInChallenge.next_path,
            SignInChallenge.attempts,
            SignInChallenge.expires_at,
        )
        .where(SignInChallenge.token_hash == _hash(token))
        .first()
    )
    if row is None or row["expires_at"] < now() or row["attempts"] >= MAX_CHALLENGE_ATTEMPTS:
        return None
    return Challenge(
        id=row["id"],
        user_id=row["user.id"],
        email=row["user.email"],
        account_id=row["account_id"],
        next_path=row["next_path"],
        enrolled=await is_enrolled(row["user.id"]),
    )


async def answer_challenge(token: str, code: str, *, ip: str | None) -> Challenge:
    """Check the code (enrolling the user if the policy makes them); the challenge is spent
    on success and after MAX_CHALLENGE_ATTEMPTS wrong codes."""
    challenge = await load_challenge(token)
    if challenge is None:
        raise NotFound("sign-in expired")
    if challenge.enrolled:
        ok = await verify_code(challenge.user_id, code)
    else:
        try:
            await confirm_enrolment(
                audit.Actor(user_id=challenge.user_id, label=challenge.email, ip=ip),
                challenge.user_id,
                code,
                challenge.account_id or 0,
            )
            ok = True
        except ValidationFailed:
            ok = False
    if not ok:
        await SignInChallenge.update(
            {SignInChallenge.attempts: SignInChallenge.attempts + 1}
        ).where(SignInChallenge.id == challenge.id)
        raise ValidationFailed({"code": "That code is not right."})
    await SignInChallenge.delete().where(SignInChallenge.id == challenge.id)
    return challenge
