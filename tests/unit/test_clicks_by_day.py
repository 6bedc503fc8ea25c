"""Short link clicks per day of the account's time zone (the usage report's clicks table):
a click at a local midnight counts on the day it opens, bots apart, the subtree summed,
another tenant's clicks never."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tenants.accounts.tables import Account
from tenants.accounts.tree import get_account
from tenants.links import links
from tenants.links.tables import LinkClick

# Sydney is UTC+11 on these days: 2 March starts at 13:00 UTC on 1 March.
SYDNEY_2_MARCH = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)


async def _click(account_id: int, at: datetime, *, bot: bool = False) -> None:
    await LinkClick.insert(
        LinkClick(link_id=1, account_id=account_id, message_id=1, batch_id=1, bot=bot, at=at)
    )


async def test_clicks_count_on_their_local_day(world):
    alpha, one, beta = (world.accounts[s] for s in ("alpha", "alpha-one", "beta"))
    await Account.update({Account.timezone: "Australia/Sydney"}).where(Account.id == alpha)
    await _click(alpha, SYDNEY_2_MARCH - timedelta(microseconds=1))  # 1 March, last instant
    await _click(alpha, SYDNEY_2_MARCH)  # 2 March, first instant
    await _click(one, SYDNEY_2_MARCH + timedelta(hours=5))  # the sub-account: counted
    await _click(alpha, SYDNEY_2_MARCH + timedelta(hours=6), bot=True)
    await _click(alpha, SYDNEY_2_MARCH + timedelta(days=1, minutes=7))  # 3 March
    await _click(beta, SYDNEY_2_MARCH)  # another tenant
    await _click(alpha, SYDNEY_2_MARCH + timedelta(days=2))  # 4 March: after the period
    days = await links.clicks_by_day(await get_account(alpha), date(2026, 3, 1), date(2026, 3, 3))
    assert [(d.day.day, d.clicks, d.bot_clicks) for d in days] == [(1, 1, 0), (2, 2, 1), (3, 1, 0)]
    period = await links.clicks_in_period(
        await get_account(alpha), date(2026, 3, 1), date(2026, 3, 3)
    )
    assert (period.clicks, period.bot_clicks) == (4, 1)
