"""WhatsApp templates, the customer service window, RCS cards, read receipts and taps, end
to end against the provider emulators: the demo's Sydney branch sends through Northwind's
own Twilio or Sinch Conversation integration, the gateway's requests reach the emulator
(which checks them against the providers' published shapes), and the emulator posts its
callbacks, signed as the provider signs them, back to the portal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks import gateways
from tenants.access import apikeys
from tenants.audit.record import SYSTEM
from tenants.credits import ledger as credits
from tenants.messaging.tables import Message
from tenants.providers import integrations as providers
from tests.api.conftest import basic
from tests.api.test_provider_scenarios import eventually, message
from tests.emulators.conftest import APP, KEY_ID, KEY_SECRET, PROJECT, TWILIO_SID, TWILIO_TOKEN
from tests.emulators.sinch_conversation import SinchConversationEmulator
from tests.emulators.twilio import TwilioEmulator

SHARED = "+61480000000"  # Northwind's number, Sydney sends from it
JANE = "+61412345001"
OMAR = "+61412345002"
WEBHOOK_SECRET = "app-webhook-secret-1"
OVERRIDE_SECRET = "overridden-urls-secret-2"


async def key_for(account_id: int, role: str = "Owner") -> dict[str, str]:
    key = await apikeys.create_api_key(actor=SYSTEM, account_id=account_id, name=role, role=role)
    return basic(key.key_id, key.secret)


async def integration_for(demo: dict[str, int], kind: str, values: dict, channels) -> Any:
    created = await providers.create_integration(
        SYSTEM, account_id=demo["northwind"], kind=kind, name=f"Northwind {kind}", values=values
    )
    for channel in channels:
        await providers.set_channel_default(
            SYSTEM,
            account_id=demo["northwind"],
            channel=channel,
            choice=str(created.integration.id),
        )
    return await providers.load_config(created.integration.id)


async def sent(message_id: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await message(message_id)
        return row if row["status"] == "sent" and row["provider_ref"] else None

    return await eventually(check, f"message {message_id} to be sent")


async def inbound_from(phone: str) -> dict[str, Any]:
    rows = (
        await Message.select()
        .where((Message.direction == "in") & (Message.from_number == phone))
        .order_by(Message.id, ascending=False)
    )
    assert rows, f"no inbound message from {phone}"
    return rows[0]


@pytest.fixture
def twilio():
    emu = TwilioEmulator(TWILIO_SID, TWILIO_TOKEN)
    gateways.use_provider_transport(emu.transport())
    yield emu
    gateways.reset()
    assert emu.violations == []


@pytest.fixture
def sinch():
    emu = SinchConversationEmulator(
        PROJECT, APP, KEY_ID, KEY_SECRET, region="us",
        webhook_secret=WEBHOOK_SECRET, override_secret=OVERRIDE_SECRET,
    )  # fmt: skip
    gateways.use_provider_transport(emu.transport())
    yield emu
    gateways.reset()
    assert emu.violations == []


async def test_whatsapp_through_twilio_templates_window_read_receipts_and_taps(
    client, demo, worker, twilio
):
    config = await integration_for(
        demo,
        "twilio",
        {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "default_sender": SHARED},
        ["whatsapp"],
    )
    northwind = await key_for(demo["northwind"])
    sydney = await key_for(demo["sydney"])
    content_sid = twilio.add_content("order_ready", 2, status="pending")

    # Northwind registers the template made in Twilio's console and reads its approval.
    template = {
        "integration_id": config.id, "name": "order_ready", "language": "en",
        "body": "Hi {{1}}, order {{2}} is ready.", "parameter_fields": ["first_name", "order"],
        "content_sid": content_sid,
    }  # fmt: skip
    bad = await client.post(
        "/api/v1/whatsapp/templates", json={**template, "content_sid": "HX12"}, headers=northwind
    )
    assert bad.status_code == 422 and "provider_ref" in bad.json()["errors"]
    r = await client.post("/api/v1/whatsapp/templates", json=template, headers=northwind)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "unknown"
    r = await client.post("/api/v1/whatsapp/templates/refresh", json={}, headers=northwind)
    assert r.json()["templates"][0]["status"] == "pending"
    send = {
        "to": [JANE], "channel": "whatsapp", "sender": SHARED,
        "template": {"name": "order_ready", "language": "en", "parameters": {"2": "A-17"}},
    }  # fmt: skip
    r = await client.post("/api/v1/messages", json=send, headers=sydney)
    assert r.status_code == 422 and "pending" in r.json()["errors"]["template"]
    twilio.contents[content_sid]["status"] = "approved"
    r = await client.post("/api/v1/whatsapp/templates/refresh", json={}, headers=northwind)
    assert (r.json()["refreshed"], r.json()["templates"][0]["status"]) == (1, "approved")

    # Nobody wrote yet: free text is refused before anything is charged; a template goes.
    await client.post(
        "/api/v1/contacts", json={"phone": JANE, "first_name": "Jane"}, headers=sydney
    )
    r = await client.post("/api/v1/whatsapp/window", json={"to": [JANE]}, headers=sydney)
    assert r.json() == [
        {"to": JANE, "window_open": False, "closes_at": None, "requires": "template"}
    ]
    balance = await credits.balance(demo["sydney"])
    free = {"to": [JANE], "channel": "whatsapp", "sender": SHARED, "body": "Any news?"}
    r = await client.post("/api/v1/messages", json=free, headers=sydney)
    assert r.status_code == 422 and "24 hours" in r.json()["errors"]["template"]
    assert await credits.balance(demo["sydney"]) == balance
    assert await Message.count().where(Message.account_id == demo["sydney"]) == 0
    r = await client.post("/api/v1/messages", json=send, headers=sydney)
    assert r.status_code == 202, r.text
    accepted = r.json()["accepted"][0]
    assert r.json()["total_cost"] == 2 == balance - await credits.balance(demo["sydney"])
    row = await sent(accepted["message_id"])
    assert row["body"] == "Hi Jane, order A-17 is ready."
    form = twilio.accepted[-1].form
    assert form["ContentSid"] == [content_sid] and "Body" not in form
    assert json.loads(form["ContentVariables"][0]) == {"1": "Jane", "2": "A-17"}
    assert (form["From"], form["To"]) == ([f"whatsapp:{SHARED}"], [f"whatsapp:{JANE}"])

    # Delivered, then read: the read receipt is the final status.
    for status in ("delivered", "read"):
        answer = await twilio.post_status(client, row["provider_ref"], status)
        assert answer.status_code == 200, answer.text
    detail = await client.get(f"/api/v1/messages/{row['id']}", headers=sydney)
    assert detail.json()["status"] == "read"
    assert detail.json()["rich"]["parameters"] == ["Jane", "A-17"]

    # Jane taps a quick-reply button: an inbound WhatsApp message saying what she tapped.
    answer = await twilio.post_inbound(
        client, config.inbound_url(), JANE, SHARED, "", channel="whatsapp",
        button_text="Track order", button_payload="track-A-17",
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    tap = await inbound_from(JANE)
    assert (tap["body"], tap["channel"], tap["account_id"]) == (
        "Track order", "whatsapp", demo["sydney"],
    )  # fmt: skip
    detail = await client.get(f"/api/v1/messages/{tap['id']}", headers=sydney)
    assert detail.json()["rich"] == {"kind": "tap", "text": "Track order", "payload": "track-A-17"}

    # Inside her window now: free text goes to Jane; Omar, who never wrote, is skipped.
    r = await client.post("/api/v1/whatsapp/window", json={"to": [JANE, OMAR]}, headers=sydney)
    assert [w["requires"] for w in r.json()] == ["free_text_or_template", "template"]
    r = await client.post("/api/v1/messages", json={**free, "to": [JANE, OMAR]}, headers=sydney)
    assert r.status_code == 202, r.text
    assert [a["to"] for a in r.json()["accepted"]] == [JANE]
    assert r.json()["skipped"] == [{"to": OMAR, "reason": "outside_service_window"}]
    await sent(r.json()["accepted"][0]["message_id"])
    assert twilio.accepted[-1].form["Body"] == ["Any news?"]
    assert twilio.outside_window == []  # Twilio never had to refuse free text


async def test_rcs_cards_fall_back_to_sms_and_whatsapp_templates_through_sinch(
    client, demo, worker, sinch
):
    config = await integration_for(
        demo,
        "sinch_conversation",
        {
            "project_id": PROJECT, "app_id": APP, "key_id": KEY_ID, "key_secret": KEY_SECRET,
            "region": "us", "webhook_secret": WEBHOOK_SECRET, "callback_secret": OVERRIDE_SECRET,
            "sender_id": SHARED,
        },
        ["rcs", "whatsapp"],
    )  # fmt: skip
    sydney = await key_for(demo["sydney"])
    card = {
        "title": "Your table is ready",
        "description": "Show this at the door.",
        "media_url": "https://cdn.example.com/table.png",
        "suggestions": [
            {"text": "On my way", "value": "coming"},
            {"kind": "url", "text": "Menu", "value": "https://example.com/menu"},
        ],
        "fallback_text": "Your table is ready. Menu: https://example.com/menu",
    }
    balance = await credits.balance(demo["sydney"])
    too_many = {**card, "suggestions": [{"text": f"S{i}"} for i in range(5)]}
    r = await client.post(
        "/api/v1/messages", json={"to": [JANE], "channel": "rcs", "card": too_many}, headers=sydney
    )
    assert r.status_code == 422 and "card.suggestions" in r.json()["errors"]
    r = await client.post(
        "/api/v1/messages", json={"to": [JANE], "channel": "sms", "card": card}, headers=sydney
    )
    assert r.status_code == 422 and "card" in r.json()["errors"]
    assert await credits.balance(demo["sydney"]) == balance

    r = await client.post(
        "/api/v1/messages",
        json={"to": [JANE, OMAR], "channel": "rcs", "sender": SHARED, "card": card},
        headers=sydney,
    )
    assert r.status_code == 202, r.text
    assert r.json()["total_cost"] == 2 == balance - await credits.balance(demo["sydney"])
    jane_id, omar_id = (a["message_id"] for a in r.json()["accepted"])
    jane_row, omar_row = await sent(jane_id), await sent(omar_id)
    request = next(m for m in sinch.accepted if m.id == jane_row["provider_ref"]).payload
    assert request["channel_priority_order"] == ["RCS", "SMS"]
    assert request["recipient"]["identified_by"]["channel_identities"] == [
        {"channel": "RCS", "identity": JANE}, {"channel": "SMS", "identity": JANE},
    ]  # fmt: skip
    sent_card = request["message"]["card_message"]
    assert sent_card["title"] == "Your table is ready"
    assert sent_card["media_message"] == {"url": "https://cdn.example.com/table.png"}
    assert sent_card["choices"] == [
        {"text_message": {"text": "On my way"}, "postback_data": "coming"},
        {"url_message": {"title": "Menu", "url": "https://example.com/menu"}},
    ]
    assert request["message"]["explicit_channel_message"] == {"SMS": card["fallback_text"]}

    # Omar's handset has no RCS: Sinch delivers the fallback SMS and says so.
    await sinch.post_status(client, omar_row["provider_ref"], "DELIVERED", channel="SMS")
    await sinch.post_status(client, jane_row["provider_ref"], "DELIVERED", channel="RCS")
    await sinch.post_status(client, jane_row["provider_ref"], "READ", channel="RCS")
    omar = (await client.get(f"/api/v1/messages/{omar_id}", headers=sydney)).json()
    jane = (await client.get(f"/api/v1/messages/{jane_id}", headers=sydney)).json()
    assert (omar["status"], omar["delivered_channel"]) == ("delivered", "sms")
    assert (jane["status"], jane["delivered_channel"]) == ("read", "rcs")

    # Jane taps "On my way": an inbound RCS message carrying the postback.
    answer = await sinch.post_inbound(
        client, config.inbound_url(), JANE, SHARED, "", channel="RCS",
        postback_data="coming", in_reply_to=jane_row["provider_ref"],
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    tap = await inbound_from(JANE)
    assert (tap["body"], tap["channel"], tap["account_id"]) == ("coming", "rcs", demo["sydney"])
    detail = (await client.get(f"/api/v1/messages/{tap['id']}", headers=sydney)).json()
    assert detail["rich"]["payload"] == "coming"
    assert detail["rich"]["message_id"] == jane_row["provider_ref"]

    # A WhatsApp template through Sinch, registered with the status its console shows.
    northwind = await key_for(demo["northwind"])
    r = await client.post(
        "/api/v1/whatsapp/templates",
        json={
            "integration_id": config.id, "name": "table_ready", "language": "en_US",
            "body": "Hello {{1}}, your table is ready.", "parameter_fields": ["first_name"],
            "status": "approved",
        },
        headers=northwind,
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    r = await client.post(
        "/api/v1/messages",
        json={
            "to": [OMAR], "channel": "whatsapp", "sender": SHARED,
            "template": {"name": "table_ready", "language": "en_US", "parameters": {"1": "Omar"}},
        },
        headers=sydney,
    )  # fmt: skip
    assert r.status_code == 202, r.text
    row = await sent(r.json()["accepted"][0]["message_id"])
    request = next(m for m in sinch.accepted if m.id == row["provider_ref"]).payload
    assert request["message"] == {
        "template_message": {
            "channel_template": {
                "WHATSAPP": {
                    "template_id": "table_ready",
                    "language_code": "en_US",
                    "parameters": {"body[1]text": "Omar"},
                }
            }
        }
    }
    assert request["channel_priority_order"] == ["WHATSAPP"]
    assert row["body"] == "Hello Omar, your table is ready."

    # A refresh reads it from Sinch's Provisioning API: WhatsApp paused it; now refused.
    sinch.add_template("table_ready", "en_US", state="PAUSED")
    r = await client.post("/api/v1/whatsapp/templates/refresh", json={}, headers=northwind)
    assert (r.json()["refreshed"], r.json()["not_read"]) == (1, 0), r.text
    assert r.json()["templates"][0]["status"] == "paused"
    r = await client.post(
        "/api/v1/messages",
        json={
            "to": [OMAR], "channel": "whatsapp", "sender": SHARED,
            "template": {"name": "table_ready", "language": "en_US", "parameters": {"1": "Omar"}},
        },
        headers=sydney,
    )  # fmt: skip
    assert r.status_code == 422 and "template" in r.json()["errors"], r.text
    sinch.wa_templates[-1]["state"] = "APPROVED"
    r = await client.post("/api/v1/whatsapp/templates/refresh", json={}, headers=northwind)
    assert r.json()["templates"][0]["status"] == "approved"

    # Omar answers on WhatsApp: the inbound message keeps its channel.
    await sinch.post_inbound(
        client, config.inbound_url(), OMAR, SHARED, "Thanks", channel="WHATSAPP"
    )
    reply = await inbound_from(OMAR)
    assert (reply["body"], reply["channel"]) == ("Thanks", "whatsapp")
