"""The sign-in throttle: exponential back-off per (email, client address) and per client
address, never per email alone, read from the attempts every `portal serve` shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenants.access import resolved, sessions
from tenants.access.tables import User, UserSession
from tenants.errors import RateLimited

VICTIM = "owner@alpha.test"
ATTACKER = "198.51.100.7"
HOME = "203.0.113.5"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sessions, "now", c)
    return c


async def fail(email: str, ip: str, times: int = 1) -> None:
    for _ in range(times):
        await sessions.record_signin(email, ip, success=False, user_id=None)


async def refusal(email: str, ip: str) -> RateLimited | None:
    try:
        await sessions.check_signin_allowed(email, ip)
    except RateLimited as exc:
        return exc
    return None


async def test_a_locked_out_attacker_address_does_not_lock_the_person_out(clock):
    await fail(VICTIM, ATTACKER, 60)
    refused = await refusal(VICTIM, ATTACKER)
    assert refused is not None and refused.retry_after > 0
    # The person, from their own address, is not slowed at all.
    assert await refusal(VICTIM, HOME) is None
    assert await refusal("someone@else.test", HOME) is None


async def test_ten_free_tries_then_the_wait_doubles_up_to_the_cap(clock):
    await fail(VICTIM, HOME, 9)
    assert await refusal(VICTIM, HOME) is None
    waits = []
    for _ in range(6):
        await fail(VICTIM, HOME)
        refused = await refusal(VICTIM, HOME)
        assert refused is not None and "for this email" in refused.message
        waits.append(refused.retry_after)
        clock.advance(seconds=refused.retry_after - 1)
        assert await refusal(VICTIM, HOME) is not None  # one second early: still waiting
        clock.advance(seconds=1)
        assert await refusal(VICTIM, HOME) is None
    assert waits == [60, 120, 240, 480, 900, 900]


async def test_spraying_one_password_over_many_emails_is_slowed(clock):
    for n in range(sessions.ADDRESS_BACKOFF.free):
        assert await refusal(f"user{n}@spray.test", ATTACKER) is None
        await fail(f"user{n}@spray.test", ATTACKER)
    refused = await refusal("fresh@spray.test", ATTACKER)
    assert refused is not None and "from your address" in refused.message
    assert refused.retry_after == 1
    waits = [refused.retry_after]
    for n in range(4):
        clock.advance(seconds=waits[-1])
        await fail(f"more{n}@spray.test", ATTACKER)
        refused = await refusal("fresh@spray.test", ATTACKER)
        assert refused is not None
        waits.append(refused.retry_after)
    assert waits == [1, 2, 4, 8, 16]
    # Another address is not slowed by the sprayer.
    assert await refusal("fresh@spray.test", HOME) is None


async def test_success_clears_the_pair_but_not_the_address(clock):
    await fail(VICTIM, HOME, 10)
    assert await refusal(VICTIM, HOME) is not None
    clock.advance(minutes=1)
    await sessions.record_signin(VICTIM, HOME, success=True, user_id=None)
    await fail(VICTIM, HOME)
    assert await refusal(VICTIM, HOME) is None  # counting starts again after a success

    # A sprayer who also knows one password cannot reset its address by signing in.
    await fail("a@spray.test", ATTACKER, 40)
    await sessions.record_signin("mine@spray.test", ATTACKER, success=True, user_id=None)
    assert await refusal("b@spray.test", ATTACKER) is not None


async def test_failures_older_than_the_window_no_longer_count(clock):
    await fail(VICTIM, HOME, 14)
    assert (await refusal(VICTIM, HOME)).retry_after == 900  # type: ignore[union-attr]
    clock.advance(seconds=sessions.BACKOFF_WINDOW.total_seconds() + 1)
    assert await refusal(VICTIM, HOME) is None


async def test_an_attempt_purges_old_sessions_and_otherwise_leaves_the_caches_alone(world, clock):
    # cache_version moves on every write to user_session (a statement trigger on
    # PostgreSQL fires for a DELETE of no rows too): an attempt with nothing to purge
    # must not empty every process's memo.
    before = await resolved.read_version()
    await fail(VICTIM, HOME)
    assert await resolved.read_version() == before
    user = await User.select(User.id).first()
    old = clock.at - sessions.SESSION_LIFETIME - timedelta(days=1)
    await UserSession.insert(
        UserSession(token_hash="0" * 64, user=user["id"], created_at=old, expires_at=old)
    )
    await fail(VICTIM, HOME)
    assert not await UserSession.exists().where(UserSession.token_hash == "0" * 64)
