"""Customer webhooks: the account's URLs for message status and inbound events (secrets
shown once), and the delivery log with each delivery's attempts and a resend button."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import block_or_redirect, render
from tasks.customer_webhooks import send_delivery
from tenants.errors import ValidationFailed
from tenants.webhooks import deliveries as customer_webhooks

LOG_FILTERS = ("pending", "delivered", "failed")


async def _ctx(
    account_id: int, *, status: str | None = None, before_id: int | None = None, **extra: Any
) -> dict[str, Any]:
    shown = status if status in LOG_FILTERS else None
    deliveries = await customer_webhooks.list_deliveries(
        account_id, status=shown, before_id=before_id
    )
    ctx: dict[str, Any] = {
        "subscriptions": await customer_webhooks.list_subscriptions(account_id),
        "deliveries": deliveries,
        "next_before_id": deliveries[-1].id if len(deliveries) == 50 else None,
        "shown": shown,
        "form": {"url": "", "events": ["status", "inbound"]},
        "errors": {},
        "new_secret": None,
        "headers": {
            "signature": customer_webhooks.SIGNATURE_HEADER,
            "timestamp": customer_webhooks.TIMESTAMP_HEADER,
            "event": customer_webhooks.EVENT_HEADER,
            "delivery": customer_webhooks.DELIVERY_HEADER,
        },
    }
    ctx.update(extra)
    return ctx


def _events(request_form: dict[str, Any]) -> list[str]:
    return [
        k
        for k in customer_webhooks.EVENT_KINDS
        if request_form.get(f"event_{k}") in ("on", "1", "true")
    ]


class WebhooksController(Controller):
    path = "/webhooks"

    @get("/", opt={"permission": "providers.manage"}, name="webhooks")
    async def index(
        self,
        request: HTMXRequest,
        status: FromQuery[str | None] = None,
        before_id: FromQuery[int | None] = None,
    ) -> Any:
        account = current_grants(request).account
        return await render(
            request,
            "webhooks.html.jinja",
            await _ctx(account.id, status=status, before_id=before_id),
            block="log" if request.htmx else None,
        )

    @post("/", opt={"permission": "providers.manage"})
    async def add(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        events = _events(data)
        try:
            subscription, secret = await customer_webhooks.add_subscription(
                request_actor(request),
                account_id=account.id,
                url=data.get("url", ""),
                events=events,
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "webhooks.html.jinja",
                await _ctx(
                    account.id,
                    form={"url": data.get("url", ""), "events": events},
                    errors=exc.errors,
                ),
                block="subscriptions",
                status_code=422,
            )
        return await render(
            request,
            "webhooks.html.jinja",
            await _ctx(account.id, new_secret=(subscription, secret)),
            block="subscriptions",
            status_code=201,
        )

    @post("/{subscription_id:int}/rotate", opt={"permission": "providers.manage"})
    async def rotate(self, request: HTMXRequest, subscription_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        secret = await customer_webhooks.rotate_secret(
            request_actor(request), account_id=account.id, subscription_id=subscription_id
        )
        subscription = await customer_webhooks.get_subscription(account.id, subscription_id)
        return await render(
            request,
            "webhooks.html.jinja",
            await _ctx(account.id, new_secret=(subscription, secret)),
            block="subscriptions",
        )

    @post("/{subscription_id:int}/active", opt={"permission": "providers.manage"})
    async def set_active(
        self,
        request: HTMXRequest,
        subscription_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        account = current_grants(request).account
        await customer_webhooks.set_active(
            request_actor(request),
            account_id=account.id,
            subscription_id=subscription_id,
            active=data.get("active") == "1",
        )
        return await _subscriptions(request, account.id)

    @post("/{subscription_id:int}/remove", opt={"permission": "providers.manage"})
    async def remove(self, request: HTMXRequest, subscription_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        await customer_webhooks.remove_subscription(
            request_actor(request), account_id=account.id, subscription_id=subscription_id
        )
        return await _subscriptions(request, account.id)

    @get("/deliveries/{delivery_id:int}", opt={"permission": "providers.manage"})
    async def delivery(self, request: HTMXRequest, delivery_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        delivery, attempts = await customer_webhooks.get_delivery(account.id, delivery_id)
        return await render(
            request, "webhook_delivery.html.jinja", {"delivery": delivery, "attempts": attempts}
        )

    @post("/deliveries/{delivery_id:int}/resend", opt={"permission": "providers.manage"})
    async def resend(self, request: HTMXRequest, delivery_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        await customer_webhooks.resend(
            request_actor(request), account_id=account.id, delivery_id=delivery_id
        )
        send_delivery(delivery_id)
        return await block_or_redirect(
            request,
            f"/webhooks/deliveries/{delivery_id}",
            "webhooks.html.jinja",
            "log",
            lambda: _ctx(account.id, resent=delivery_id),
        )


async def _subscriptions(request: HTMXRequest, account_id: int) -> Any:
    """After a change to a subscription: the list again for htmx, else back to the page."""
    return await block_or_redirect(
        request, "/webhooks", "webhooks.html.jinja", "subscriptions", lambda: _ctx(account_id)
    )
