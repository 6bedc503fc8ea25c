"""The dashboard: the working account at a glance."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants
from portal.pages import render
from tenants.access import users
from tenants.accounts import tree as accounts
from tenants.credits import wallets


class DashboardController(Controller):
    @get("/", opt={"permission": "account.view"}, name="dashboard")
    async def dashboard(self, request: HTMXRequest) -> Any:
        grants = current_grants(request)
        account = grants.account
        low_balance = (
            await wallets.notices(account.id) if grants.decide("credits.allocate").allowed else []
        )
        descendants = await accounts.subtree(account.id, include_self=False)
        return await render(
            request,
            "dashboard.html.jinja",
            {
                "sub_account_count": len(descendants),
                "user_count": await users.count_members(account.id),
                "direct_children": [a for a in descendants if a.parent_id == account.id],
                "notices": low_balance,
            },
        )
