"""WhatsApp templates page (register and list with JavaScript off), the send page's
summary of each recipient's customer service window, and the composer's per-channel
counts."""

from __future__ import annotations

import json
from datetime import timedelta

from tenants.clock import now
from tenants.messaging.tables import Message
from tenants.rich.tables import RichContent, WhatsAppTemplate
from tests.api.test_rich_messages import JANE, OMAR, SHARED, integration_for, sinch  # noqa: F401
from tests.conftest import login
from tests.emulators.conftest import APP, KEY_ID, KEY_SECRET, PROJECT

HX = {"HX-Request": "true"}
SINCH = {
    "project_id": PROJECT, "app_id": APP, "key_id": KEY_ID, "key_secret": KEY_SECRET,
    "region": "us", "sender_id": SHARED,
}  # fmt: skip


def template_form(csrf: str, integration_id: int, **values: str) -> dict[str, str]:
    return {
        "_csrf_token": csrf, "integration_id": str(integration_id), "name": "table_ready",
        "language": "en_US", "category": "UTILITY", "body": "Hello {{1}}, your table is ready.",
        "parameter_fields": "first_name", "status": "approved", **values,
    }  # fmt: skip


async def test_templates_are_registered_and_listed_without_javascript(
    client,
    demo,
    sinch,  # noqa: F811 (the imported fixture: Sinch's emulator)
):
    config = await integration_for(demo, "sinch_conversation", SINCH, ["whatsapp"])
    csrf = await login(client, "owner@northwind.test")
    page = await client.get("/whatsapp/templates")
    assert page.status_code == 200 and "No WhatsApp templates registered yet" in page.text
    bad = await client.post(
        "/whatsapp/templates", data=template_form(csrf, config.id, body="Hello {{2}}")
    )
    assert bad.status_code == 422 and "without gaps" in bad.text
    assert await WhatsAppTemplate.count() == 0
    r = await client.post(
        "/whatsapp/templates", data=template_form(csrf, config.id), follow_redirects=False
    )
    assert r.status_code == 303
    page = await client.get("/whatsapp/templates")
    assert "table_ready" in page.text and "first_name" in page.text and "approved" in page.text
    again = await client.post(
        "/whatsapp/templates", data=template_form(csrf, config.id), headers=HX
    )
    assert again.status_code == 409 and "already has a template" in again.text
    refreshed = await client.post(
        "/whatsapp/templates/refresh", data={"_csrf_token": csrf}, headers=HX
    )
    # Sinch's Provisioning API does not list it (yet): unknown, as it says.
    assert "Refreshed 0 from the provider; 1 unknown to it" in refreshed.text
    sinch.add_template("table_ready", "en_US", changes_status="IN_PROGRESS")
    refreshed = await client.post(
        "/whatsapp/templates/refresh", data={"_csrf_token": csrf}, headers=HX
    )
    assert "Refreshed 1 from the provider." in refreshed.text and "pending" in refreshed.text


async def test_send_summary_says_who_is_inside_the_window(client, demo):
    config = await integration_for(demo, "sinch_conversation", SINCH, ["whatsapp"])
    await WhatsAppTemplate.insert(
        WhatsAppTemplate(
            account_id=demo["northwind"], integration_id=config.id,
            key=f"{config.id}|table_ready|en_US",
            name="table_ready", language="en_US", body="Hello {{1}}.",
            parameter_fields='["first_name"]', status="approved",
        )
    )  # fmt: skip
    # Jane wrote to the shared number on WhatsApp an hour ago; Omar never did.
    await Message.insert(
        Message(
            account_id=demo["sydney"], direction="in", to_number=SHARED, from_number=JANE,
            body="Hi", channel="whatsapp", status="incoming_message",
            created_at=now() - timedelta(hours=1),
        )
    )  # fmt: skip
    csrf = await login(client, "sender@sydney.test")
    base = {
        "_csrf_token": csrf, "numbers": f"{JANE}\n{OMAR}", "mode": "text", "body": "Any news?",
        "channel": "whatsapp", "sender": SHARED, "when": "now", "action": "preview",
    }  # fmt: skip
    r = await client.post("/send", data=base)
    assert r.status_code == 200, r.text
    assert "1 recipients accepted, 1 skipped" in r.text
    assert "outside service window: 1" in r.text
    assert "allowed until" in r.text and "only an approved template reaches this person" in r.text
    r = await client.post("/send", data={**base, "numbers": OMAR}, headers=HX)
    assert r.status_code == 422 and "customer service window" in r.text
    r = await client.post(
        "/send", data={**base, "mode": "whatsapp_template", "wa_template": "table_ready|en_US"}
    )
    assert r.status_code == 200 and "2 recipients accepted, 0 skipped" in r.text
    assert await Message.count().where(Message.direction == "out") == 0


async def test_the_composer_counts_characters_on_whatsapp_and_rcs(client, demo):
    csrf = await login(client, "sender@sydney.test")
    text = "ł" * 100  # 2 UCS-2 segments as SMS, one message on WhatsApp
    sms = await client.post("/composer/count", data={"_csrf_token": csrf, "body": text}, headers=HX)
    assert '<dd data-stat="segments">2</dd>' in sms.text
    wa = await client.post(
        "/composer/count",
        data={"_csrf_token": csrf, "body": text, "channel": "whatsapp"},
        headers=HX,
    )
    assert "100 of 4,096" in wa.text and '<dd data-stat="segments">1</dd>' in wa.text
    rcs = await client.post(
        "/composer/count",
        data={"_csrf_token": csrf, "body": "x" * 3100, "channel": "rcs"},
        headers=HX,
    )
    assert "3100 of 3,072" in rcs.text and "28 characters over the limit" in rcs.text


async def test_the_message_page_shows_the_card_and_the_channel_that_delivered_it(client, demo):
    rows = await Message.insert(
        Message(
            account_id=demo["sydney"], to_number=JANE, from_number=SHARED, body="Table",
            channel="rcs", status="delivered",
        )
    ).returning(Message.id)  # fmt: skip
    message_id = rows[0]["id"]
    payload = {"title": "Table", "suggestions": [{"text": "On my way"}], "fallback_text": "Ready"}
    await RichContent.insert(
        RichContent(
            message_id=message_id, account_id=demo["sydney"], kind="card",
            payload=json.dumps(payload), delivered_channel="sms",
        )
    )  # fmt: skip
    await login(client, "sender@sydney.test")
    page = await client.get(f"/messages/{message_id}")
    assert "delivered as SMS (fallback)" in page.text
    assert "On my way" in page.text and "SMS fallback: Ready" in page.text
