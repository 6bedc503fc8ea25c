"""Small builders and helpers shared by the tests: people, credits, htmx headers, waiting."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from argon2 import PasswordHasher

from tenants.access import users
from tenants.audit.record import SYSTEM, Actor
from tenants.credits import ledger, orders

T = TypeVar("T")

PASSWORD = "demo-pass-123"
# Argon2 at its cheapest: the tests check what is hashed and verified, not what it costs
# (a verify reads the parameters from the hash; the real ones take ~0.1 s of CPU each).
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD_HASH = CHEAP_HASHER.hash(PASSWORD)

# What htmx sends with every request it makes.
HX = {"HX-Request": "true"}


async def make_user(email: str, account_id: int, role: str, *, operator: bool = False) -> int:
    """A user with PASSWORD and one membership; returns the user's id."""
    user = await users.create_user(
        email=email, password=PASSWORD, password_hash=PASSWORD_HASH, is_operator=operator
    )
    await users.add_membership(user_id=user.id, account_id=account_id, role=role)
    return user.id


person = make_user


async def fund(account_id: int, credits: int = 1000) -> None:
    """Give an account credits by a system adjustment (no order)."""
    await ledger.adjust(account_id, credits, reason="test credits", actor=SYSTEM)


async def fund_by_order(
    account_id: int,
    credits: int,
    *,
    buyer: Actor | None = None,
    approver: Actor | None = None,
) -> None:
    """Give an account credits the way a customer buys them: an order the operator approves."""
    order = await orders.purchase(account_id, credits, actor=buyer or Actor(label="finance"))
    await orders.approve_order(order.id, actor=approver or Actor(label="operator"))


async def wait_until(
    predicate: Callable[[], Awaitable[T] | T],
    seconds: float = 20.0,
    *,
    what: str,
    interval: float = 0.05,
) -> T:
    """Call `predicate` (sync or async) until it returns something truthy and return that;
    after `seconds` fail, saying what was awaited and the last value seen."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {seconds:g}s for {what}; last saw {value!r}")
        await asyncio.sleep(interval)
