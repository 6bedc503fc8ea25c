"""The same end-to-end scenario against each real provider's emulator: the demo's Northwind
tree sends through an integration of the provider (its gateway reaches the emulator through
a transport), and the emulator posts its callbacks, signed as the provider signs them, to
the portal app: status reports, a STOP from a phone nobody messaged (opt-out in the channel
group it came on, and a confirmation sent back through the provider), JOIN to the keyword's
owner, a reply to the shared number routed to the account that last wrote, and a correctly
signed callback naming another tenant's simulator message, which changes nothing.

Runs on SQLite with the in-process broker and on PostgreSQL with Redis (TEST_DATABASE_URL,
TEST_BROKER_URL)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tasks import gateways
from tasks.gateways.base import IntegrationGateway
from tenants.access import apikeys
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.consent.filter import statuses
from tenants.credits import ledger as credits
from tenants.messaging import accept as sending
from tenants.messaging.outbox import OutboundMessage
from tenants.messaging.tables import InboundReply, InboundRoute, Message
from tenants.providers import integrations as providers
from tests.api.conftest import basic
from tests.emulators.conftest import (
    APP,
    KEY_ID,
    KEY_SECRET,
    MM_KEY,
    MM_SECRET,
    PROJECT,
    SINCH_PLAN,
    SINCH_TOKEN,
    TWILIO_SID,
    TWILIO_TOKEN,
)
from tests.emulators.messagemedia import MessageMediaEmulator
from tests.emulators.sinch_conversation import SinchConversationEmulator
from tests.emulators.sinch_sms import SinchSmsEmulator
from tests.emulators.twilio import TwilioEmulator

SHARED = "+61480000000"  # Northwind's number; JOIN on it belongs to Sydney
CUSTOMER = "+61412345001"  # Sydney writes to this phone first
NEW_PHONE = "+61412345002"  # never messaged: says STOP
JOINER = "+61412345003"  # never messaged: says JOIN
WEBHOOK_SECRET = "app-webhook-secret-1"
OVERRIDE_SECRET = "overridden-urls-secret-2"
SMS_CALLBACK_SECRET = "sms-callback-secret-3"


@dataclass
class Provider:
    """How the scenario drives one provider's emulator."""

    kind: str
    emu: Any
    values: dict[str, str]
    channels: tuple[str, ...]
    stop_channel: str  # the channel the STOP arrives on
    delivered: str  # the provider's word for delivered
    failed: str

    async def status(self, client: Any, provider_ref: str, status: str) -> httpx.Response:
        emu = self.emu
        if isinstance(emu, SinchSmsEmulator):
            batch, _, digits = provider_ref.partition(":")
            return await emu.post_status(client, batch, "+" + digits, status)
        return await emu.post_status(client, provider_ref, status)

    async def inbound(
        self, client: Any, url: str, phone: str, body: str, channel: str = "sms"
    ) -> httpx.Response:
        emu = self.emu
        if isinstance(emu, TwilioEmulator):
            return await emu.post_inbound(client, url, phone, SHARED, body, channel=channel)
        if isinstance(emu, SinchConversationEmulator):
            return await emu.post_inbound(client, url, phone, SHARED, body, channel=channel)
        return await emu.post_inbound(client, url, phone, SHARED, body)

    async def reply(
        self, client: Any, url: str, phone: str, body: str, in_reply_to: str
    ) -> httpx.Response:
        """A reply of the recipient of our message (MessageMedia: to that message's URL)."""
        if isinstance(self.emu, MessageMediaEmulator):
            return await self.emu.post_inbound(
                client, None, phone, SHARED, body, in_reply_to=in_reply_to
            )
        return await self.inbound(client, url, phone, body)

    def sent_to(self, phone: str) -> list[str]:
        """The texts the emulated provider accepted for `phone`, in order."""
        texts = []
        for request in self.emu.requests:
            if request.method != "POST" or request.host.startswith("auth."):
                continue
            if isinstance(self.emu, TwilioEmulator):
                form = request.form()
                if form.get("To", [""])[0].removeprefix("whatsapp:") == phone:
                    texts.append(form["Body"][0])
                continue
            data = request.json() or {}
            if isinstance(self.emu, SinchSmsEmulator) and phone.lstrip("+") in [
                str(t).lstrip("+") for t in data.get("to") or []
            ]:
                texts.append(data["body"])
            elif isinstance(self.emu, MessageMediaEmulator):
                texts += [
                    m["content"]
                    for m in data.get("messages") or []
                    if m["destination_number"] == phone
                ]
            elif isinstance(self.emu, SinchConversationEmulator) and "recipient" in data:
                identities = data["recipient"]["identified_by"]["channel_identities"]
                if any(i["identity"] == phone for i in identities):
                    texts.append(data["message"]["text_message"]["text"])
        return texts


@functools.cache
def mm_signing_key() -> rsa.RSAPrivateKey:
    """The MessageMedia account's signature key (one per test run: making one is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_provider(kind: str) -> Provider:
    if kind == "twilio":
        return Provider(
            kind,
            TwilioEmulator(TWILIO_SID, TWILIO_TOKEN),
            {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
            ("sms", "whatsapp"),
            "whatsapp",
            "delivered",
            "failed",
        )
    if kind == "sinch_sms":
        return Provider(
            kind,
            SinchSmsEmulator(
                SINCH_PLAN, SINCH_TOKEN, region="eu", callback_secret=SMS_CALLBACK_SECRET
            ),
            {
                "service_plan_id": SINCH_PLAN,
                "api_token": SINCH_TOKEN,
                "region": "eu",
                "callback_secret": SMS_CALLBACK_SECRET,
            },
            ("sms",),
            "sms",
            "Delivered",
            "Failed",
        )
    if kind == "sinch_conversation":
        return Provider(
            kind,
            SinchConversationEmulator(
                PROJECT,
                APP,
                KEY_ID,
                KEY_SECRET,
                region="us",
                webhook_secret=WEBHOOK_SECRET,
                override_secret=OVERRIDE_SECRET,
            ),
            {
                "project_id": PROJECT,
                "app_id": APP,
                "key_id": KEY_ID,
                "key_secret": KEY_SECRET,
                "region": "us",
                "webhook_secret": WEBHOOK_SECRET,
                "callback_secret": OVERRIDE_SECRET,
                "sender_id": SHARED,
            },
            ("sms", "whatsapp", "rcs"),
            "whatsapp",
            "DELIVERED",
            "FAILED",
        )
    assert kind == "messagemedia"
    emu = MessageMediaEmulator(MM_KEY, MM_SECRET, signing_key=mm_signing_key(), digest="SHA224")
    return Provider(
        kind,
        emu,
        {
            "api_key": MM_KEY,
            "api_secret": MM_SECRET,
            "signature_public_key": emu.public_key(),
            "signature_digest": "SHA224",
        },
        ("sms",),
        "sms",
        "delivered",
        "failed",
    )


async def eventually(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 15) -> Any:
    for _ in range(int(seconds / 0.05)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def message(message_id: int) -> dict[str, Any]:
    row = await Message.select().where(Message.id == message_id).first()
    assert row is not None
    return row


async def route_of(phone: str, body: str) -> dict[str, Any]:
    row = await (
        Message.select(Message.id, Message.account_id, Message.channel)
        .where(
            (Message.direction == "in") & (Message.from_number == phone) & (Message.body == body)
        )
        .first()
    )
    assert row is not None, f"no inbound {body!r} from {phone}"
    route = await InboundRoute.select().where(InboundRoute.message_id == row["id"]).first()
    assert route is not None
    return {**row, "rule": route["rule"], "route_id": route["id"]}


@pytest.fixture
async def foreign_message() -> dict[str, Any]:
    """Another tenant's message, accepted through the built-in simulator (not dispatched)."""
    other = await create_root_account(name="Contoso", slug="contoso")
    await credits.adjust(other.id, 10, reason="test credits", actor=SYSTEM)
    result = await sending.accept_send(
        sending.SendRequest(
            account_id=other.id,
            numbers=["+61499000111"],
            body="Contoso news",
            permissions=sending.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    message_id = result.accepted[0].message_id
    assert message_id is not None
    row = await message(message_id)
    assert row["provider"] == providers.BUILTIN
    return {**row, "balance": await credits.balance(other.id)}


@pytest.mark.parametrize("kind", ["twilio", "sinch_sms", "sinch_conversation", "messagemedia"])
async def test_the_scenario_runs_the_same_against_every_provider(
    kind, client, demo, worker, foreign_message
):
    provider = make_provider(kind)
    gateways.use_provider_transport(provider.emu.transport())
    try:
        await _scenario(provider, client, demo, foreign_message)
    finally:
        gateways.reset()
    assert provider.emu.violations == []


async def _scenario(provider: Provider, client: Any, demo: dict[str, int], foreign: dict) -> None:
    created = await providers.create_integration(
        SYSTEM,
        account_id=demo["platform"],
        kind=provider.kind,
        name=f"Platform {provider.kind}",
        values=provider.values,
    )
    integration = created.integration
    for channel in provider.channels:
        await providers.set_channel_default(
            SYSTEM, account_id=demo["northwind"], channel=channel, choice=str(integration.id)
        )
    config = await providers.load_config(integration.id)
    inbound_url = config.inbound_url()

    # 1. Sydney sends from the shared number; the provider reports it delivered.
    key = await apikeys.create_api_key(
        actor=SYSTEM, account_id=demo["sydney"], name="scenario", role="Owner"
    )
    sydney = basic(key.key_id, key.secret)
    r = await client.post(
        "/api/v1/messages",
        json={"to": [CUSTOMER], "body": "Your order is ready", "sender": SHARED},
        headers={**sydney, "Idempotency-Key": f"scenario-{provider.kind}"},
    )
    assert r.status_code == 202, r.text
    sent_id = r.json()["accepted"][0]["message_id"]

    async def is_sent() -> dict[str, Any] | None:
        row = await message(sent_id)
        return row if row["status"] == "sent" and row["provider_ref"] else None

    row = await eventually(is_sent, "the message to be sent")
    assert row["provider"] == integration.key
    assert provider.sent_to(CUSTOMER) == ["Your order is ready"]
    answer = await provider.status(client, row["provider_ref"], provider.delivered)
    assert answer.status_code == 200, answer.text
    assert (await client.get(f"/api/v1/messages/{sent_id}", headers=sydney)).json()[
        "status"
    ] == "delivered"

    # 2. A STOP from a phone nobody messaged: an opt-out in the group of its channel, in
    # the number holder's scope, and a confirmation through the same provider.
    answer = await provider.inbound(client, inbound_url, NEW_PHONE, "STOP", provider.stop_channel)
    assert answer.status_code == 200, answer.text
    stop = await route_of(NEW_PHONE, "STOP")
    assert (stop["account_id"], stop["rule"], stop["channel"]) == (
        demo["northwind"],
        "opt_out",
        provider.stop_channel,
    )
    other_group = "sms" if provider.stop_channel == "whatsapp" else "whatsapp"
    states = await statuses(demo["northwind"], [NEW_PHONE])
    assert states == {(NEW_PHONE, provider.stop_channel): "opted_out"}
    assert (NEW_PHONE, other_group) not in states
    confirmation = await InboundReply.select().where(InboundReply.route_id == stop["route_id"])
    assert [c["kind"] for c in confirmation] == ["confirmation"]
    await eventually(
        lambda: _final(confirmation[0]["message_id"]), "the confirmation to go out", 15
    )
    assert len(provider.sent_to(NEW_PHONE)) == 1
    # A promotion on the opted-out channel is skipped (the other group holds no opt-out).
    promo = await sending.accept_send(
        sending.SendRequest(
            account_id=demo["northwind"],
            numbers=[NEW_PHONE],
            body="Spring sale",
            sender=SHARED,
            channel=provider.stop_channel,
            permissions=sending.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    assert [reason for _, reason in promo.skipped] == ["opted_out"] and not promo.accepted

    # 3. JOIN from another new phone goes to the keyword's owner (Sydney), which answers.
    answer = await provider.inbound(client, inbound_url, JOINER, "JOIN")
    assert answer.status_code == 200, answer.text
    join = await route_of(JOINER, "JOIN")
    assert (join["account_id"], join["rule"]) == (demo["sydney"], "keyword")
    await eventually(lambda: _sent_text(provider, JOINER), "the JOIN auto-reply", 15)

    # 4. The customer's reply on the shared number goes to Sydney, who wrote last; a
    # redelivery of the same provider message is one message.
    answer = await provider.reply(client, inbound_url, CUSTOMER, "Thanks!", row["provider_ref"])
    assert answer.status_code == 200, answer.text
    thanks = await route_of(CUSTOMER, "Thanks!")
    assert (thanks["account_id"], thanks["rule"]) == (demo["sydney"], "last_messaged")

    # 5. A correctly signed callback of this integration naming another tenant's simulator
    # message changes nothing and refunds nothing.
    gateway = gateways.build(config)
    assert isinstance(gateway, IntegrationGateway)
    (forged,) = await gateway.submit(
        [OutboundMessage(foreign["id"], foreign["to_number"], SHARED, "x", "sms", 1)]
    )
    assert forged.accepted and forged.provider_ref
    answer = await provider.status(client, forged.provider_ref, provider.failed)
    assert answer.status_code == 200, answer.text
    after = await message(foreign["id"])
    assert (after["status"], after["refunded"], after["provider"]) == (
        foreign["status"],
        False,
        providers.BUILTIN,
    )
    assert await credits.balance(foreign["account_id"]) == foreign["balance"]


async def _final(message_id: int) -> bool:
    return (await message(message_id))["status"] not in ("enqueued",)


async def _sent_text(provider: Provider, phone: str) -> bool:
    return bool(provider.sent_to(phone))
