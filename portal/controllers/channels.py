"""Settings › Channels: the provider each channel of the working account uses (its own
choice, or inherited from above), chosen among the providers it may use."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import render
from tenants.errors import ValidationFailed
from tenants.messaging.messages import CHANNELS
from tenants.providers import integrations as providers


class ChannelsController(Controller):
    path = "/settings/channels"

    @get("/", opt={"permission": "settings.manage"}, name="channels")
    async def index(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        return await render(
            request,
            "channels.html.jinja",
            {"rows": await providers.channel_settings(account.id), "errors": {}, "saved": False},
        )

    @post("/", opt={"permission": "settings.manage"})
    async def save(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        errors: dict[str, str] = {}
        for channel in CHANNELS:
            if channel not in data:
                continue
            try:
                await providers.set_channel_default(
                    request_actor(request),
                    account_id=account.id,
                    channel=channel,
                    choice=data[channel],
                )
            except ValidationFailed as exc:
                errors.update(exc.errors)
        if not errors and not request.htmx:
            return Redirect(path="/settings/channels", status_code=303)
        return await render(
            request,
            "channels.html.jinja",
            {
                "rows": await providers.channel_settings(account.id),
                "errors": errors,
                "saved": not errors,
            },
            block="channels_form",
            status_code=422 if errors else 200,
        )
