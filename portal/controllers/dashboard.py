"""The dashboard: the working account at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from litestar import Controller, get
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants
from portal.charts import Chart
from portal.controllers.reports import daily_chart, daily_table
from portal.pages import remembered, render
from tenants.access import users
from tenants.accounts import tree as accounts
from tenants.accounts.tree import AccountView
from tenants.credits import wallets
from tenants.messaging.messages import SETTLING_STATUSES
from tenants.reports import usage

DASHBOARD_DAYS = 30


@dataclass(frozen=True)
class Activity:
    """The last 30 days of the account's own messages, from the roll-up."""

    period: usage.Period
    chart: Chart
    days: list[tuple[str, dict[str, int], int]]
    messages: int
    final: int
    delivered: int
    spent: int
    settling: int  # still enqueued or sent: the counters poll until these are final

    @property
    def delivery_rate(self) -> str:
        return f"{100 * self.delivered / self.final:.1f}%" if self.final else "—"


async def activity(account: AccountView, today: date | None = None) -> Activity:
    """The account's last DASHBOARD_DAYS days up to `today` (its today when not given)."""
    today = today or await usage.today_in(account.id)
    period = usage.Period(today - timedelta(days=DASHBOARD_DAYS - 1), today)
    report = await usage.usage_report(account, period, ("day", "status"), subtree=False)
    by_status: dict[str, int] = {}
    spent = 0
    for r in report.rows:
        status = r.status or ""
        by_status[status] = by_status.get(status, 0) + r.counts.messages
        if status not in usage.REFUNDED_STATUSES:
            spent += r.counts.credits
    return Activity(
        period=period,
        chart=daily_chart(report),
        days=daily_table(report),
        messages=report.totals.messages,
        final=sum(by_status.get(s, 0) for s in usage.FINAL_STATUSES),
        delivered=sum(by_status.get(s, 0) for s in usage.DELIVERED_STATUSES),
        spent=spent,
        settling=sum(by_status.get(s, 0) for s in SETTLING_STATUSES),
    )


class DashboardController(Controller):
    @get("/", opt={"permission": "account.view"}, name="dashboard")
    async def dashboard(self, request: HTMXRequest) -> Any:
        grants = current_grants(request)
        account = grants.account
        low_balance = (
            await wallets.notices(account.id) if grants.decide("credits.allocate").allowed else []
        )
        # The account itself comes with its subtree: its balance as it is now (the grants
        # may come from the per-process memo, which a send does not invalidate).
        tree = await accounts.subtree(account.id, root=account)
        account = next((a for a in tree if a.id == account.id), account)
        descendants = [a for a in tree if a.id != account.id]
        children = [a for a in descendants if a.parent_id == account.id]
        context: dict[str, Any] = {
            "account": account,
            "sub_account_count": len(children),
            "deeper_count": len(descendants) - len(children),
            # Memberships and time zones are rows the per-process memo watches.
            "user_count": await remembered(
                request, ("member_count", account.id), lambda: users.count_members(account.id)
            ),
            "direct_children": children,
            "notices": low_balance,
            "activity": None,
            "subtree_usage": [],
        }
        if grants.decide("reports.view").allowed:
            zones = await remembered(
                request, ("timezones", account.id), lambda: accounts.timezones([account.id])
            )
            today = usage.today_where(zones.get(account.id))
            context["activity"] = act = await activity(account, today)
            if descendants:
                rolled = await usage.usage_report(account, act.period, ("account",))
                counts = {r.account_id: r.counts for r in rolled.rows}
                context["subtree_usage"] = [
                    (a, counts.get(a.id, usage.Counts()))
                    for a in sorted(
                        [account, *descendants], key=lambda a: accounts.path_ids(a.path)
                    )
                ]
        # The counters poll (htmx) while messages are settling: only they come back.
        return await render(request, "dashboard.html.jinja", context, block="stats")
