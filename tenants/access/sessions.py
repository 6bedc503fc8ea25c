"""Server-side sign-in sessions (shared by every `portal serve` process through the
database) and the failed sign-in counter that throttles password guessing."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from tenants.access.tables import SignInAttempt, UserSession
from tenants.clock import now
from tenants.db import transaction
from tenants.errors import RateLimited

SESSION_LIFETIME = timedelta(hours=12)
MAX_FAILED_SIGNINS = 10
FAILED_SIGNIN_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class SessionView:
    id: int
    user_id: int
    account_id: int | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(user_id: int, account_id: int | None) -> str:
    """A new random session token (a fresh id at every sign-in); only its hash is stored."""
    token = secrets.token_urlsafe(32)
    await UserSession.insert(
        UserSession(
            token_hash=_hash(token),
            user=user_id,
            account=account_id,
            expires_at=now() + SESSION_LIFETIME,
        )
    )
    return token


async def load_session(token: str) -> SessionView | None:
    if not token:
        return None
    row = (
        await UserSession.select(
            UserSession.id, UserSession.user, UserSession.account, UserSession.expires_at
        )
        .where(UserSession.token_hash == _hash(token))
        .first()
    )
    if row is None or row["expires_at"] < now():
        return None
    return SessionView(id=row["id"], user_id=row["user"], account_id=row["account"])


async def set_session_account(session_id: int, account_id: int) -> None:
    await UserSession.update({UserSession.account: account_id}).where(UserSession.id == session_id)


async def end_session(token: str) -> None:
    await UserSession.delete().where(UserSession.token_hash == _hash(token))


async def check_signin_allowed(email: str, ip: str) -> None:
    """Refuse once an email has failed MAX_FAILED_SIGNINS times from one IP in the window."""
    since = now() - FAILED_SIGNIN_WINDOW
    failures = (
        await SignInAttempt.select(SignInAttempt.at)
        .where(
            (SignInAttempt.email == email)
            & (SignInAttempt.ip == ip)
            & (SignInAttempt.success == False)  # noqa: E712
            & (SignInAttempt.at > since)
        )
        .order_by(SignInAttempt.at)
    )
    if len(failures) >= MAX_FAILED_SIGNINS:
        oldest = failures[-MAX_FAILED_SIGNINS]["at"]
        retry_after = max(1, int((oldest + FAILED_SIGNIN_WINDOW - now()).total_seconds()))
        raise RateLimited(
            "Too many failed sign-ins for this email. Try again in "
            f"{(retry_after + 59) // 60} minutes.",
            retry_after=retry_after,
        )


async def record_signin(email: str, ip: str, *, success: bool, user_id: int | None) -> None:
    async with transaction():
        await SignInAttempt.insert(
            SignInAttempt(email=email, ip=ip, success=success, user_id=user_id)
        )
        await UserSession.delete().where(UserSession.expires_at < now() - SESSION_LIFETIME)
