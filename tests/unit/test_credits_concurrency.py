"""50 concurrent debits and transfers race for a balance that covers only some of them:
exactly the affordable ones succeed and nothing is oversold (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from piccolo.engine.postgres import PostgresEngine

from tenants.audit.record import SYSTEM, Actor
from tenants.credits import ledger, orders, spending, transfers
from tenants.db import DB
from tenants.errors import InsufficientCredits

RACERS = 50


@asynccontextmanager
async def racing_pool():  # type: ignore[no-untyped-def]
    """A bounded pool so 50 racers share connections instead of opening 50."""
    if isinstance(DB, PostgresEngine) and DB.pool is None:
        await DB.start_connection_pool(min_size=2, max_size=10)
        try:
            yield
        finally:
            await DB.close_connection_pool()
    else:
        yield


async def _funded(world, amount: int) -> tuple[int, int]:
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    order = await orders.purchase(alpha, amount, actor=Actor(label="finance"))
    await orders.approve_order(order.id, actor=Actor(label="operator"))
    return alpha, one


async def _outcome(coro) -> str:  # type: ignore[no-untyped-def]
    try:
        await coro
    except InsufficientCredits:
        return "refused"
    return "ok"


async def test_concurrent_reserves_never_oversell(world):
    alpha, _ = await _funded(world, 255)
    async with racing_pool():
        results = await asyncio.gather(
            *(
                _outcome(
                    spending.reserve(alpha, 10, reference=f"batch-{i}", idempotency_key=f"send-{i}")
                )
                for i in range(RACERS)
            )
        )
    assert results.count("ok") == 25 and results.count("refused") == 25
    assert await ledger.balance(alpha) == 5
    assert await ledger.ledger_sum(alpha) == 5


async def test_concurrent_allocations_never_oversell(world):
    alpha, one = await _funded(world, 333)
    async with racing_pool():
        results = await asyncio.gather(
            *(
                _outcome(
                    transfers.allocate(
                        actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=10
                    )
                )
                for _ in range(RACERS)
            )
        )
    assert results.count("ok") == 33
    assert await ledger.balance(alpha) == 3 and await ledger.balance(one) == 330
    assert await ledger.ledger_sum(alpha) == 3 and await ledger.ledger_sum(one) == 330


async def test_concurrent_replays_of_one_key_charge_once(world):
    alpha, one = await _funded(world, 100)
    async with racing_pool():
        reserved = await asyncio.gather(
            *(
                spending.reserve(alpha, 7, reference="batch", idempotency_key="same")
                for _ in range(10)
            )
        )
        moved = await asyncio.gather(
            *(
                transfers.transfer(
                    actor=SYSTEM,
                    within_account_id=alpha,
                    to_account_id=one,
                    amount=9,
                    idempotency_key="same-transfer",
                )
                for _ in range(10)
            )
        )
    assert len(set(reserved)) == 1
    assert len({t.id for t, _ in moved}) == 1 and sum(created for _, created in moved) == 1
    assert await ledger.balance(alpha) == 100 - 7 - 9 and await ledger.balance(one) == 9
