"""Provider webhooks (verified by the provider's secret, not a session) and the mount of
the built-in simulator."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, asgi, post
from litestar.types import Receive, Scope, Send

from tasks.gateways import gateway_for
from tasks.gateways.simulator import SimulatorGateway
from tasks.sending import dispatch_chunks
from tasks.simulator import simulator_app
from tasks.webhooks import deliver_webhook
from tenants import messages
from tenants.inbound import route_inbound

COMPLIANCE_ROUTES = ("opt_out", "opt_in", "help")


def _simulator() -> SimulatorGateway:
    gateway = gateway_for("simulator")
    assert isinstance(gateway, SimulatorGateway)
    return gateway


class ProviderHooksController(Controller):
    path = "/hooks/simulator"

    @post("/status", opt={"public": True}, status_code=200)
    async def status(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        reports = _simulator().parse_status_callback(request.headers, await request.body())
        result = await messages.ingest_status_reports(reports)
        return {
            "received": result.received,
            "applied": result.applied,
            "late": result.late,
            "duplicates": result.duplicates,
            "unknown": result.unknown,
        }

    @post("/inbound", opt={"public": True}, status_code=202)
    async def inbound(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        report = _simulator().parse_inbound(request.headers, await request.body())
        result = await route_inbound(
            report.provider_ref,
            report.sender,
            report.to,
            report.body,
            provider=report.provider,
            received_at=report.at,
        )
        dispatch_chunks(result.reply_chunks)
        for delivery_id in result.webhook_delivery_ids:
            deliver_webhook.send(delivery_id)
        return {
            "message_id": result.message_id,
            "routed": result.account_id is not None,
            "route": result.route,
            "duplicate": result.duplicate,
            # The compliance kind (opt_out, opt_in, help) or the claimed keyword that routed it.
            "keyword": result.route if result.route in COMPLIANCE_ROUTES else result.keyword,
        }


@asgi("/simulator", is_mount=True, copy_scope=True, opt={"public": True})
async def simulator_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """The simulator's own endpoints (/simulator/api/..., /simulator/outbox) on loopback."""
    await simulator_app(scope, receive, send)  # type: ignore[arg-type]
