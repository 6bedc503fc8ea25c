"""Server-side sign-in sessions (shared by every `portal serve` process through the
database) and the sign-in throttle: exponential back-off per (email, client address) and
per client address, read from the recorded attempts."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenants.access import resolved
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


async def _session_row(token_hash: str) -> dict[str, Any] | None:
    return (
        await UserSession.select(
            UserSession.id, UserSession.user, UserSession.account, UserSession.expires_at
        )
        .where(UserSession.token_hash == token_hash)
        .first()
    )


async def load_session(token: str, version: int | None = None) -> SessionView | None:
    """The live session of a token; `version` (resolved.read_version) lets the process
    answer from its memo while nothing was written."""
    if not token:
        return None
    token_hash = _hash(token)
    row = await resolved.remembered(
        version, ("session", token_hash), lambda: _session_row(token_hash)
    )
    if row is None or row["expires_at"] < now():
        return None
    return SessionView(id=row["id"], user_id=row["user"], account_id=row["account"])


async def set_session_account(session_id: int, account_id: int) -> None:
    await UserSession.update({UserSession.account: account_id}).where(UserSession.id == session_id)


async def end_session(token: str) -> None:
    await UserSession.delete().where(UserSession.token_hash == _hash(token))


@dataclass(frozen=True)
class Backoff:
    """Failures a key may make before it waits, then a wait that doubles with each further
    failure, up to `cap`; failures older than the window no longer count."""

    free: int
    first_wait: timedelta
    cap: timedelta

    def wait_after(self, failures: int) -> timedelta:
        if failures < self.free:
            return timedelta(0)
        doublings = min(failures - self.free, 32)
        return min(self.cap, self.first_wait * (2**doublings))


# One person mistyping their password from one place: ten tries, then 1, 2, 4... minutes.
PAIR_BACKOFF = Backoff(
    free=MAX_FAILED_SIGNINS, first_wait=timedelta(minutes=1), cap=FAILED_SIGNIN_WINDOW
)
# One address trying many emails (one password sprayed over a list): an office behind one
# address has room for its people's typos, a sprayer waits 1, 2, 4... seconds, then minutes.
ADDRESS_BACKOFF = Backoff(free=30, first_wait=timedelta(seconds=1), cap=FAILED_SIGNIN_WINDOW)
BACKOFF_WINDOW = timedelta(hours=1)


async def _failures_since(where: Any, since: datetime) -> tuple[int, datetime | None]:
    """(how many failed sign-ins match, the latest one's time)."""
    failed = where & (SignInAttempt.success == False) & (SignInAttempt.at > since)  # noqa: E712
    count = await SignInAttempt.count().where(failed)
    if not count:
        return 0, None
    latest = (
        await SignInAttempt.select(SignInAttempt.at)
        .where(failed)
        .order_by(SignInAttempt.at, ascending=False)
        .first()
    )
    return count, latest["at"] if latest else None


def _refusal(what: str, retry_at: datetime) -> RateLimited:
    seconds = max(1, math.ceil((retry_at - now()).total_seconds()))
    wait = f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"
    return RateLimited(
        f"Too many failed sign-ins {what}. Try again in {wait}.", retry_after=seconds
    )


async def check_signin_allowed(email: str, ip: str) -> None:
    """Refuse while a key is backing off: the (email, client address) pair after its own
    failures since its last success, and the client address after failures over every
    email. There is no lock per email alone, so failures elsewhere never lock a person
    out of their own address. The state is the signin_attempt table, shared by every
    `portal serve` process."""
    since = now() - BACKOFF_WINDOW
    last_success = (
        await SignInAttempt.select(SignInAttempt.at)
        .where(
            (SignInAttempt.email == email)
            & (SignInAttempt.ip == ip)
            & (SignInAttempt.success == True)  # noqa: E712
            & (SignInAttempt.at > since)
        )
        .order_by(SignInAttempt.at, ascending=False)
        .first()
    )
    pair_since = max(since, last_success["at"]) if last_success else since
    for what, backoff, where, start in (
        (
            "for this email from your address",
            PAIR_BACKOFF,
            (SignInAttempt.email == email) & (SignInAttempt.ip == ip),
            pair_since,
        ),
        ("from your address", ADDRESS_BACKOFF, SignInAttempt.ip == ip, since),
    ):
        failures, latest = await _failures_since(where, start)
        wait = backoff.wait_after(failures)
        if latest is not None and wait and now() < latest + wait:
            raise _refusal(what, latest + wait)


async def record_signin(email: str, ip: str, *, success: bool, user_id: int | None) -> None:
    async with transaction():
        await SignInAttempt.insert(
            SignInAttempt(email=email, ip=ip, success=success, user_id=user_id, at=now())
        )
        # Only when there is something to purge: on PostgreSQL a DELETE of no rows still
        # fires the statement trigger that bumps cache_version, and every sign-in attempt
        # (failed ones too) would empty every process's memo.
        stale = UserSession.expires_at < now() - SESSION_LIFETIME
        if await UserSession.exists().where(stale):
            await UserSession.delete().where(stale)
