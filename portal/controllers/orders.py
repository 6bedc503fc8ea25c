"""The platform operator's credit orders: approve or reject invoice orders, adjust balances."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import request_actor
from portal.forms import FORM
from portal.pages import render
from tenants.accounts import tree as accounts
from tenants.credits import ledger, orders
from tenants.errors import Conflict, NotFound, ValidationFailed


async def _names(order_list: list[orders.OrderView]) -> dict[int, str]:
    found = await accounts.get_accounts(sorted({o.account_id for o in order_list}))
    return {a.id: a.name for a in found}


async def _page_context() -> dict[str, Any]:
    pending = await orders.orders(status="pending", limit=500)
    decided = [o for o in await orders.orders(limit=50) if o.status != "pending"]
    return {
        "pending": pending,
        "decided": decided,
        "names": await _names(pending + decided),
        "adjust": {},
        "adjust_errors": {},
    }


class OrdersController(Controller):
    path = "/platform/orders"

    @get("/", opt={"permission": "platform.operate"}, name="platform-orders")
    async def list_orders(self, request: HTMXRequest) -> Any:
        return await render(request, "platform_orders.html.jinja", await _page_context())

    @post("/{order_id:int}/approve", opt={"permission": "platform.operate"})
    async def approve(self, request: HTMXRequest, order_id: FromPath[int]) -> Any:
        return await self._decide(request, order_id, approve=True)

    @post("/{order_id:int}/reject", opt={"permission": "platform.operate"})
    async def reject(self, request: HTMXRequest, order_id: FromPath[int]) -> Any:
        return await self._decide(request, order_id, approve=False)

    async def _decide(self, request: HTMXRequest, order_id: int, *, approve: bool) -> Any:
        actor = request_actor(request)
        status = 200
        try:
            if approve:
                order = await orders.approve_order(order_id, actor=actor)
            else:
                order = await orders.reject_order(order_id, actor=actor)
        except Conflict:
            # Decided meanwhile (another operator, another tab): show what it is now.
            order, status = await orders.get_order(order_id), 409
        if not request.htmx:
            return Redirect(path="/platform/orders", status_code=303)
        return await render(
            request,
            "platform_orders.html.jinja",
            {"order": order, "names": await _names([order])},
            block="order",
            status_code=status,
        )

    @post("/adjust", opt={"permission": "platform.operate"})
    async def adjust(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        form = {k: (data.get(k) or "").strip() for k in ("account", "amount", "reason")}
        errors: dict[str, str] = {}
        message = ""
        try:
            account = await accounts.get_account_by_slug(form["account"].lower())
        except NotFound:
            errors["account"] = "No account has this slug."
        try:
            amount = int(form["amount"].replace(",", ""))
        except ValueError:
            errors["amount"] = "Enter a whole number of credits, e.g. 500 or -200."
        if not errors:
            try:
                await ledger.adjust(
                    account.id, amount, reason=form["reason"], actor=request_actor(request)
                )
                message = f"Adjusted {account.name} by {amount:+,} credits."
            except ValidationFailed as exc:
                errors = exc.errors
            except Conflict as exc:
                errors = {"amount": exc.message}
        if not errors and not request.htmx:
            return Redirect(path="/platform/orders", status_code=303)
        ctx = await _page_context()
        return await render(
            request,
            "platform_orders.html.jinja",
            {
                **ctx,
                "adjust": form if errors else {},
                "adjust_errors": errors,
                "adjusted": message,
            },
            block="adjust_form",
            status_code=422 if errors else 200,
        )
