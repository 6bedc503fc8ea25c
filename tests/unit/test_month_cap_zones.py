"""The monthly spend cap counts calendar months where the account is, not UTC months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenants import clock
from tenants.accounts.tables import Account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger, spending, transfers, wallets
from tenants.errors import Conflict
from tests.factories import fund


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch):
    def set_time(*args: int) -> None:
        moment = datetime(*args, tzinfo=UTC)
        monkeypatch.setattr(clock, "now", lambda: moment)

    return set_time


async def capped(world, zone: str, cap: int = 25) -> int:
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await Account.update({Account.timezone: zone}).where(Account.id == one)
    await fund(alpha, 100)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=100)
    await wallets.update_wallet_settings(
        actor=SYSTEM,
        within_account_id=alpha,
        account_id=one,
        shared_wallet=False,
        monthly_cap=cap,
        low_balance_threshold=None,
        auto_top_up=False,
        top_up_amount=0,
    )
    return one


async def test_sydney_month_starts_before_the_utc_month(world, at):
    one = await capped(world, "Australia/Sydney")
    at(2026, 1, 31, 12, 30)  # 23:30 on 31 January in Sydney (UTC+11)
    assert await spending.current_month(one) == "2026-01"
    await spending.reserve(one, 25, reference="jan", idempotency_key="jan")
    with pytest.raises(Conflict) as exc:
        await spending.reserve(one, 1, reference="jan-2", idempotency_key="jan-2")
    assert exc.value.code == "monthly_cap_reached"
    at(2026, 1, 31, 13, 30)  # still January in UTC, 00:30 on 1 February in Sydney
    assert await spending.current_month(one) == "2026-02"
    await spending.reserve(one, 10, reference="feb", idempotency_key="feb")
    assert await spending.month_spend(one) == 10
    assert await spending.month_spend(one, "2026-01") == 25
    assert await ledger.balance(one) == 65


async def test_los_angeles_month_ends_after_the_utc_month(world, at):
    one = await capped(world, "America/Los_Angeles")
    at(2026, 3, 1, 7, 30)  # already March in UTC, 23:30 on 28 February in Los Angeles
    assert await spending.current_month(one) == "2026-02"
    await spending.reserve(one, 20, reference="a", idempotency_key="a")
    with pytest.raises(Conflict):
        await spending.reserve(one, 6, reference="b", idempotency_key="b")
    assert await ledger.balance(one) == 80
    at(2026, 3, 1, 8, 30)  # 00:30 on 1 March in Los Angeles (UTC-8)
    await spending.reserve(one, 25, reference="c", idempotency_key="c")
    assert await spending.month_spend(one) == 25
    # A late refund of February's send gives back February's count, not March's.
    await spending.refund(one, 20, reference="a", idempotency_key="refund-a")
    assert await spending.month_spend(one, "2026-02") == 0
    assert await spending.month_spend(one) == 25


async def test_summer_time_moves_the_boundary(world, at):
    one = await capped(world, "Australia/Sydney")
    at(2026, 6, 30, 13, 30)  # 23:30 on 30 June in Sydney (winter, UTC+10)
    assert await spending.current_month(one) == "2026-06"
    at(2026, 6, 30, 14, 30)
    assert await spending.current_month(one) == "2026-07"


async def test_an_account_without_a_zone_counts_utc_months(world, at):
    one = await capped(world, "UTC")
    at(2026, 1, 31, 23, 59)
    assert await spending.current_month(one) == "2026-01"
    at(2026, 2, 1, 0, 0)
    assert await spending.current_month(one) == "2026-02"
