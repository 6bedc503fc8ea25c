"""Twilio's Advanced Opt-Out: Twilio answers the opt-out, opt-in and help keywords of a
Messaging Service itself (in any language it was given) and still posts the message to the
incoming webhook with OptOutType. The portal trusts that kind, records the consent change
in the scope it routes to, and sends no confirmation of its own (the person would get two,
and the second STOP confirmation would be refused by Twilio with 21610). Without the
parameter the portal's own keyword lists decide, as before. The emulator posts through the
app, signed as Twilio signs."""

from __future__ import annotations

from typing import Any

import pytest

from tasks import gateways
from tenants.audit.record import SYSTEM
from tenants.consent.filter import statuses
from tenants.messaging.tables import InboundReply, Message
from tenants.providers import integrations as providers
from tests.api.test_provider_scenarios import SHARED, route_of
from tests.emulators.conftest import TWILIO_SID, TWILIO_TOKEN
from tests.emulators.twilio import TwilioEmulator

SERVICE = "MG" + "d" * 32
PHONE = "+61412345077"


@pytest.fixture
async def twilio_inbound(demo: dict[str, int]) -> Any:
    emu = TwilioEmulator(TWILIO_SID, TWILIO_TOKEN)
    emu.enable_advanced_opt_out(SERVICE, ALTO="STOP", COMENZAR="START", AYUDA="HELP")
    created = await providers.create_integration(
        SYSTEM,
        account_id=demo["platform"],
        kind="twilio",
        name="Platform Twilio",
        values={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
    )
    await providers.set_channel_default(
        SYSTEM, account_id=demo["northwind"], channel="sms", choice=str(created.integration.id)
    )
    gateways.use_provider_transport(emu.transport())
    try:
        yield emu, (await providers.load_config(created.integration.id)).inbound_url()
    finally:
        gateways.reset()


async def _outbound_to(phone: str) -> int:
    return int(
        await Message.count().where((Message.direction == "out") & (Message.to_number == phone))
    )


async def test_a_keyword_twilio_answered_changes_consent_and_is_not_confirmed_again(
    client, demo, twilio_inbound
):
    emu, url = twilio_inbound
    northwind = demo["northwind"]
    for body, rule, state in (
        ("Alto", "opt_out", "opted_out"),  # not in the portal's lists: Twilio's word counts
        ("COMENZAR", "opt_in", "opted_in"),
        ("ayuda", "help", "opted_in"),
    ):
        answer = await emu.post_inbound(
            client, url, PHONE, SHARED, body, messaging_service_sid=SERVICE
        )
        assert answer.status_code == 200, answer.text
        route = await route_of(PHONE, body)
        assert (route["account_id"], route["rule"]) == (northwind, rule)
        assert await statuses(northwind, [PHONE]) == {(PHONE, "sms"): state}
        # Twilio sent the confirmation: none is queued or sent by the portal.
        assert await InboundReply.count().where(InboundReply.route_id == route["route_id"]) == 0
    assert await _outbound_to(PHONE) == 0
    assert emu.violations == []


async def test_without_advanced_opt_out_the_portal_decides_and_confirms(
    client, demo, twilio_inbound
):
    emu, url = twilio_inbound
    northwind = demo["northwind"]
    # A service without Advanced Opt-Out: no OptOutType; "ALTO" is no keyword of the portal.
    answer = await emu.post_inbound(
        client, url, PHONE, SHARED, "ALTO", messaging_service_sid="MG" + "e" * 32
    )
    assert answer.status_code == 200, answer.text
    route = await route_of(PHONE, "ALTO")
    assert route["rule"] not in ("opt_out", "opt_in", "help")
    assert await statuses(northwind, [PHONE]) == {}
    # STOP is the portal's own word: recorded and confirmed by the portal.
    answer = await emu.post_inbound(client, url, PHONE, SHARED, "STOP")
    assert answer.status_code == 200, answer.text
    stop = await route_of(PHONE, "STOP")
    assert stop["rule"] == "opt_out"
    assert await statuses(northwind, [PHONE]) == {(PHONE, "sms"): "opted_out"}
    replies = await InboundReply.select(InboundReply.kind).where(
        InboundReply.route_id == stop["route_id"]
    )
    assert [r["kind"] for r in replies] == ["confirmation"]
