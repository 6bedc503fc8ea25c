"""Provider gateways: one interface (tenants.dispatch.Gateway) and its implementations.

Every account uses the built-in simulator until provider integrations are configured;
`gateway_for(name)` is the one place that turns an integration name into a gateway.
"""

from __future__ import annotations

import httpx

from tasks.gateways.simulator import SimulatorGateway
from tenants.dispatch import Gateway

_gateways: dict[str, Gateway] = {}


def gateway_for(provider: str) -> Gateway:
    if provider != "simulator":
        raise LookupError(f"no gateway for provider {provider!r}")
    gateway = _gateways.get(provider)
    if gateway is None:
        gateway = _gateways[provider] = SimulatorGateway.from_settings()
    return gateway


def use_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route the simulator gateway through `transport` (tests call the ASGI app in-process)."""
    _gateways["simulator"] = SimulatorGateway.from_settings(transport=transport)


def reset() -> None:
    _gateways.clear()
