"""Provider webhooks (verified by the provider's signature or secret, not a session): the
built-in simulator's, each provider integration's, and the simulator's own mount."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Controller, Request, Response, asgi, post
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from tasks.gateways import callback_gateway, simulator_gateway
from tasks.gateways.base import IntegrationGateway
from tasks.gateways.http import CallbackRequest
from tasks.simulator import simulator_app
from tenants.errors import NotFound
from tenants.messaging.inbound import InboundReport, InboundResult, route_report
from tenants.providers import callbacks
from tenants.providers import integrations as providers

COMPLIANCE_ROUTES = ("opt_out", "opt_in", "help")


class ProviderHooksController(Controller):
    path = "/hooks/simulator"

    @post("/status", opt={"public": True}, status_code=200)
    async def status(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        reports = simulator_gateway().parse_status_callback(request.headers, await request.body())
        # Only messages the simulator carried: the others are unknown to it.
        result = await callbacks.ingest_reports(providers.BUILTIN, reports)
        return {
            "received": result.received,
            "applied": result.applied,
            "late": result.late,
            "duplicates": result.duplicates,
            "unknown": result.unknown,
        }

    @post("/inbound", opt={"public": True}, status_code=202)
    async def inbound(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        report = simulator_gateway().parse_inbound(request.headers, await request.body())
        (result,) = await _route([report])
        return {
            "message_id": result.message_id,
            "routed": result.account_id is not None,
            "route": result.route,
            "duplicate": result.duplicate,
            # The compliance kind (opt_out, opt_in, help) or the claimed keyword that routed it.
            "keyword": result.route if result.route in COMPLIANCE_ROUTES else result.keyword,
        }


async def _route(reports: list[InboundReport]) -> list[InboundResult]:
    """The one inbound road (tenants.messaging.inbound.route_report) for the simulator and
    every integration; its replies and webhooks are handed over as each one commits."""
    return [await route_report(report) for report in reports]


async def _callback(
    request: Request[Any, Any, Any], integration_id: int, token: str
) -> tuple[providers.IntegrationConfig, IntegrationGateway, CallbackRequest]:
    """The integration a callback URL names (404 unless its secret segment matches), its
    gateway, and the request as the provider signed it."""
    config = await providers.config_for_callback(integration_id, token)
    gateway = callback_gateway(config)
    if not isinstance(gateway, IntegrationGateway):
        raise NotFound("not found")  # the simulator posts to its own hooks
    body = await request.body()
    form: dict[str, str] = {}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    # Signatures cover the URL the provider called: the public one, not the proxied one.
    url = providers.portal_base_url() + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    headers = {k.lower(): v for k, v in request.headers.items()}
    callback = CallbackRequest(url=url, headers=headers, body=body, form=form)
    gateway.verify(callback)
    return config, gateway, callback


class IntegrationHooksController(Controller):
    """/hooks/providers/<integration id>/<secret>/status and /inbound."""

    path = "/hooks/providers/{integration_id:int}/{token:str}"

    @post("/status", opt={"public": True}, status_code=200)
    async def status(
        self, request: Request[Any, Any, Any], integration_id: FromPath[int], token: FromPath[str]
    ) -> Response[str]:
        config, gateway, callback = await _callback(request, integration_id, token)
        # Only the messages this integration carried; other events change nothing.
        await callbacks.ingest_events(config.key, gateway.parse_status(callback))
        if gateway.inbound_on_status_url:
            await _route(gateway.parse_inbound(callback))
        body, media_type = gateway.answer("status")
        return Response(content=body, media_type=media_type, status_code=200)

    @post("/inbound", opt={"public": True}, status_code=200)
    async def inbound(
        self, request: Request[Any, Any, Any], integration_id: FromPath[int], token: FromPath[str]
    ) -> Response[str]:
        _config, gateway, callback = await _callback(request, integration_id, token)
        await _route(gateway.parse_inbound(callback))
        body, media_type = gateway.answer("inbound")
        return Response(content=body, media_type=media_type, status_code=200)


@asgi("/simulator", is_mount=True, copy_scope=True, opt={"public": True})
async def simulator_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """The simulator's own endpoints (/simulator/api/..., /simulator/outbox) on loopback."""
    await simulator_app(scope, receive, send)  # type: ignore[arg-type]
