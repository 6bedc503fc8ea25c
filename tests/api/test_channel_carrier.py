"""Issue 18: a channel the chosen provider cannot carry is a 422 naming `channel` before any
charge, on the API and the send page. Only an account with no real provider behind it at all
(the demo set-up) sends through the built-in simulator without choosing it."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.credits import ledger as credits
from tenants.messaging.tables import Message
from tenants.providers import integrations as providers
from tests.api.test_rich_messages import JANE, integration_for, key_for
from tests.conftest import login
from tests.emulators.conftest import TWILIO_SID, TWILIO_TOKEN

TWILIO = {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "default_sender": "Northwind"}


async def _refused(client, demo, body: dict) -> str:
    sydney = await key_for(demo["sydney"])
    balance = await credits.balance(demo["sydney"])
    before = await Message.count()
    r = await client.post("/api/v1/messages", json={"to": [JANE], **body}, headers=sydney)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert list(errors) == ["channel"]
    assert await credits.balance(demo["sydney"]) == balance
    assert await Message.count() == before
    return str(errors["channel"])


async def test_the_demo_without_real_providers_still_uses_the_simulator(client, demo):
    sydney = await key_for(demo["sydney"])
    r = await client.post(
        "/api/v1/messages", json={"to": [JANE], "body": "Hi", "channel": "rcs"}, headers=sydney
    )
    assert r.status_code in (200, 201, 202), r.text
    row = await Message.select(Message.provider).where(Message.direction == "out").first()
    assert row["provider"] == providers.BUILTIN


async def test_a_channel_no_real_provider_carries_is_refused_before_any_charge(client, demo):
    await integration_for(demo, "twilio", TWILIO, ["sms"])
    # Twilio carries SMS, MMS and WhatsApp; nothing this account may use carries RCS.
    text = await _refused(client, demo, {"body": "Hi", "channel": "rcs"})
    assert "can carry RCS" in text
    # WhatsApp could go through Twilio, but nobody chose it: never the simulator silently.
    text = await _refused(client, demo, {"body": "Hi", "channel": "whatsapp"})
    assert "No provider is chosen for WhatsApp" in text


async def test_a_disabled_chosen_provider_is_refused_not_replaced(client, demo):
    config = await integration_for(demo, "twilio", TWILIO, ["sms"])
    await providers.set_integration_status(
        SYSTEM, account_id=demo["northwind"], integration_id=config.id, status="disabled"
    )
    text = await _refused(client, demo, {"body": "Hi", "channel": "sms"})
    assert "Northwind twilio is chosen for SMS" in text
    # Choosing the built-in outright is a decision, and applies.
    await providers.set_channel_default(
        SYSTEM, account_id=demo["sydney"], channel="sms", choice=providers.USE_BUILTIN
    )
    assert await providers.carrier_for(demo["sydney"], "sms") == providers.BUILTIN


async def test_the_send_page_names_the_channel_and_charges_nothing(client, demo):
    await integration_for(demo, "twilio", TWILIO, ["sms"])
    balance = await credits.balance(demo["sydney"])
    csrf = await login(client, "sender@sydney.test")
    form = {
        "_csrf_token": csrf, "numbers": JANE, "mode": "text", "body": "Hi", "channel": "rcs",
        "when": "now", "action": "send",
    }  # fmt: skip
    r = await client.post("/send", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 422, r.text
    assert "can carry RCS" in r.text
    assert await credits.balance(demo["sydney"]) == balance
    assert await Message.count().where(Message.direction == "out") == 0


async def test_settings_channels_says_which_channels_are_refused(client, demo):
    await integration_for(demo, "twilio", TWILIO, ["sms"])
    rows = {s.channel: s for s in await providers.channel_settings(demo["sydney"])}
    assert rows["sms"].refusal == "" and rows["sms"].effective_label == "Northwind twilio"
    assert "can carry RCS" in rows["rcs"].refusal
    assert rows["rcs"].effective_label == "None: sends are refused"
    await login(client, "owner@northwind.test")
    r = await client.get("/settings/channels")
    assert r.status_code == 200 and "None: sends are refused" in r.text
