"""Provider gateways: one interface (tenants.dispatch.Gateway) and its implementations.

`gateway_for(key)` is the one place that turns a message's provider key into a gateway:
`simulator` is the built-in simulator; `integration:<id>` loads that integration's
settings and credentials and builds (and caches, until they change) its gateway.
"""

from __future__ import annotations

import httpx

from tasks.gateways.base import IntegrationGateway
from tasks.gateways.http import ConnectionCheck
from tasks.gateways.messagemedia import MessageMediaGateway
from tasks.gateways.simulator import SimulatorGateway
from tasks.gateways.sinch import SinchConversationGateway, SinchSmsGateway
from tasks.gateways.twilio import TwilioGateway
from tenants.errors import NotFound
from tenants.messaging.outbox import Gateway, ProviderGone
from tenants.providers import integrations as providers

BUILDERS: dict[str, type[IntegrationGateway]] = {
    g.kind: g
    for g in (SinchSmsGateway, SinchConversationGateway, MessageMediaGateway, TwilioGateway)
}

_simulator: SimulatorGateway | None = None
_simulator_transport: httpx.AsyncBaseTransport | None = None
# Where real providers' gateways send their requests (None: the network); tests and a
# try-out route them to a provider emulator.
_provider_transport: httpx.AsyncBaseTransport | None = None
_built: dict[int, tuple[str, Gateway]] = {}


def simulator_gateway() -> SimulatorGateway:
    global _simulator
    if _simulator is None:
        _simulator = SimulatorGateway.from_settings(transport=_simulator_transport)
    return _simulator


_for_callbacks: dict[int, tuple[str, Gateway]] = {}


def callback_gateway(config: providers.IntegrationConfig) -> Gateway:
    """`build`, kept per integration until its settings or credentials change (a callback
    only verifies and parses: it never sends, so the transport does not matter)."""
    cached = _for_callbacks.get(config.id)
    if cached is not None and cached[0] == config.version:
        return cached[1]
    gateway = build(config)
    _for_callbacks[config.id] = (config.version, gateway)
    return gateway


def build(config: providers.IntegrationConfig) -> Gateway:
    if config.kind == "simulator":
        return simulator_gateway()
    return BUILDERS[config.kind](config, transport=_provider_transport)


async def gateway_for(provider: str) -> Gateway:
    """The gateway of a provider key; ProviderGone when its integration was disabled or
    removed (its waiting messages then fail and are refunded)."""
    if provider == providers.BUILTIN:
        return simulator_gateway()
    integration_id = providers.integration_id_of(provider)
    if integration_id is None:
        raise ProviderGone(f"unknown provider {provider!r}")
    try:
        config = await providers.load_config(integration_id)
    except NotFound:
        raise ProviderGone(f"provider integration {integration_id} was removed") from None
    if config.status != "active":
        raise ProviderGone(f"provider integration {integration_id} is disabled")
    cached = _built.get(integration_id)
    if cached is not None and cached[0] == config.version:
        return cached[1]
    gateway = build(config)
    _built[integration_id] = (config.version, gateway)
    return gateway


async def integration_gateway(integration_id: int) -> IntegrationGateway | SimulatorGateway:
    """The gateway of an integration whatever its status (callbacks, test connection)."""
    config = await providers.load_config(integration_id)
    gateway = build(config)
    assert isinstance(gateway, IntegrationGateway | SimulatorGateway)
    return gateway


async def test_connection(integration_id: int) -> ConnectionCheck:
    """Call the provider's cheapest read with the integration's credentials."""
    gateway = await integration_gateway(integration_id)
    if isinstance(gateway, SimulatorGateway):
        return ConnectionCheck(True, "The built-in simulator runs inside the portal.", 200)
    return await gateway.test_connection()


def use_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route the simulator gateway through `transport` (tests call the ASGI app in-process)."""
    global _simulator, _simulator_transport
    _simulator_transport = transport
    _simulator = SimulatorGateway.from_settings(transport=transport)


def use_provider_transport(transport: httpx.AsyncBaseTransport | None) -> None:
    """Route every real provider gateway through `transport` (e.g. a provider emulator)."""
    global _provider_transport
    _provider_transport = transport
    _built.clear()


def reset() -> None:
    global _simulator, _simulator_transport, _provider_transport
    _simulator = None
    _simulator_transport = None
    _provider_transport = None
    _built.clear()
