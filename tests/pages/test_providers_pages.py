"""The provider pages end to end: the operator adds a Twilio integration (fields checked,
secret shown once, callback URLs to copy, test connection), chooses it in Settings ›
Channels, a send goes out through Twilio (respx) and Twilio's signed callbacks come back;
masters need the operator's permission; webhooks page with log and resend."""

from __future__ import annotations

import re

import httpx
import respx

from tenants.audit.record import SYSTEM
from tenants.providers import integrations as providers
from tenants.webhooks.deliveries import list_subscriptions
from tenants.webhooks.tables import WebhookDelivery
from tests.conftest import login
from tests.factories import HX

SID = "AC" + "c" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{SID}"


def twilio_form(csrf: str, **values: str) -> dict[str, str]:
    return {
        "_csrf_token": csrf,
        "kind": "twilio",
        "name": "Twilio AU",
        "account_sid": SID,
        "auth_token": TOKEN,
        "messaging_service_sid": "",
        "default_sender": "Alpha",
        **values,
    }


async def add_twilio(client, csrf: str) -> int:
    r = await client.post("/providers", data=twilio_form(csrf), headers=HX)
    assert r.status_code == 201, r.text
    return int(re.search(r"/providers/(\d+)/test", r.text).group(1))


async def test_operator_adds_an_integration_and_sees_its_secret_once(client, world):
    csrf = await login(client, "operator@platform.test")
    page = await client.get("/providers")
    assert page.status_code == 200 and "Add an integration" in page.text
    assert 'href="/providers"' in page.text  # the side navigation links here
    fields = await client.get("/providers?kind=twilio", headers=HX)
    assert 'name="account_sid"' in fields.text and 'name="auth_token"' in fields.text
    assert 'type="password"' in fields.text
    bad = await client.post(
        "/providers", data=twilio_form(csrf, account_sid="SK1", auth_token=""), headers=HX
    )
    assert bad.status_code == 422
    assert (
        "AC followed by 32 hexadecimal digits" in bad.text and "Auth token is required" in bad.text
    )
    assert await providers.ProviderIntegration.count() == 0
    created = await client.post("/providers", data=twilio_form(csrf), headers=HX)
    assert created.status_code == 201
    assert "shown once" in created.text and TOKEN in created.text
    integration_id = int(re.search(r"/providers/(\d+)/test", created.text).group(1))
    config = await providers.load_config(integration_id)
    status_url = (
        f"http://testserver.local/hooks/providers/{integration_id}/{config.callback_token}/status"
    )
    assert status_url in created.text and 'data-copy-from="cb-status"' in created.text
    later = await client.get(f"/providers/{integration_id}")
    assert later.status_code == 200 and TOKEN not in later.text
    assert "••••" + TOKEN[-4:] in later.text and status_url in later.text


@respx.mock
async def test_test_connection_reports_what_the_provider_said(client, world):
    respx.get(f"{TWILIO}.json").mock(
        side_effect=[
            httpx.Response(200, json={"friendly_name": "Acme Messaging", "status": "active"}),
            httpx.Response(401, json={"code": 20003, "message": "Authenticate"}),
        ]
    )
    csrf = await login(client, "operator@platform.test")
    integration_id = await add_twilio(client, csrf)
    ok = await client.post(
        f"/providers/{integration_id}/test", data={"_csrf_token": csrf}, headers=HX
    )
    assert (
        "Connected to Twilio account Acme Messaging (active)." in ok.text and "connected" in ok.text
    )
    failed = await client.post(
        f"/providers/{integration_id}/test", data={"_csrf_token": csrf}, headers=HX
    )
    assert "refused the account SID or auth token" in failed.text and "test failed" in failed.text


async def test_masters_need_the_operators_permission(client, world):
    csrf = await login(client, world.users["Owner"])
    page = await client.get("/providers")
    assert "has not allowed this master" in page.text
    r = await client.post("/providers", data=twilio_form(csrf), headers=HX)
    assert r.status_code == 403
    await providers.set_master_permit(SYSTEM, master_id=world.accounts["alpha"], allowed=True)
    assert (await client.post("/providers", data=twilio_form(csrf), headers=HX)).status_code == 201


async def test_operator_allows_a_master_from_the_page(client, world):
    csrf = await login(client, "operator@platform.test")
    alpha = world.accounts["alpha"]
    r = await client.post(
        f"/providers/permits/{alpha}", data={"_csrf_token": csrf, "allowed": "1"}, headers=HX
    )
    assert r.status_code == 200 and "allowed" in r.text
    assert await providers.master_may_own(alpha)


async def test_roles_without_the_permission_and_other_tenants(client, world):
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="twilio",
        name="Platform Twilio",
        values={"account_sid": SID, "auth_token": TOKEN},
    )
    await login(client, world.users["Sender"])
    assert (await client.get("/providers")).status_code == 403
    assert (await client.get("/webhooks")).status_code == 403
    await login(client, world.users["Owner"])
    # the platform's integration is not alpha's to open
    assert (await client.get(f"/providers/{created.integration.id}")).status_code == 404


async def test_settings_channels_choose_a_provider_for_sms(client, world):
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="twilio",
        name="Platform Twilio",
        values={"account_sid": SID, "auth_token": TOKEN},
    )
    csrf = await login(client, world.users["Owner"])
    page = await client.get("/settings/channels")
    assert page.status_code == 200 and "Platform Twilio" in page.text
    r = await client.post(
        "/settings/channels",
        data={
            "_csrf_token": csrf,
            "sms": str(created.integration.id),
            "rcs": str(created.integration.id),
        },
        headers=HX,
    )
    assert r.status_code == 422 and "does not offer RCS" in r.text
    r = await client.post(
        "/settings/channels",
        data={"_csrf_token": csrf, "sms": str(created.integration.id)},
        headers=HX,
    )
    assert r.status_code == 200 and "Saved." in r.text and "chosen by Alpha Master" in r.text
    assert (
        await providers.provider_for(world.accounts["alpha-one"], "sms") == created.integration.key
    )


async def test_webhooks_page_shows_the_secret_once_the_log_and_resends(client, world, settings_env):
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1")
    csrf = await login(client, world.users["Owner"])
    page = await client.get("/webhooks")
    assert page.status_code == 200 and "X-Portal-Signature" in page.text
    bad = await client.post("/webhooks", data={"_csrf_token": csrf, "url": "ftp://x"}, headers=HX)
    assert (
        bad.status_code == 422
        and "http:// or https://" in bad.text
        and "at least one event" in bad.text
    )
    r = await client.post(
        "/webhooks",
        data={"_csrf_token": csrf, "url": "https://hooks.example.com/in", "event_status": "on"},
        headers=HX,
    )
    assert r.status_code == 201 and "shown once" in r.text
    secret = re.search(r'value="(whsec_[^"]+)"', r.text).group(1)
    assert secret not in (await client.get("/webhooks")).text
    from tenants.webhooks.deliveries import queue_status_events
    from tests.unit.test_customer_webhooks import outbox

    ids = await outbox(world.accounts["alpha"], ["+61400000001"])
    from tenants.db import transaction

    async with transaction():
        await queue_status_events([(ids[0], "sent", None)])
    await WebhookDelivery.update(
        {WebhookDelivery.status: "failed", WebhookDelivery.attempts: 12}
    ).where(WebhookDelivery.id > 0)
    log = await client.get("/webhooks")
    assert "message.status" in log.text and "Resend" in log.text
    delivery_id = (await WebhookDelivery.select(WebhookDelivery.id).first())["id"]
    resent = await client.post(
        f"/webhooks/deliveries/{delivery_id}/resend", data={"_csrf_token": csrf}, headers=HX
    )
    assert (
        resent.status_code == 200 and f"Delivery {delivery_id} is being sent again" in resent.text
    )
    row = await WebhookDelivery.select().first()
    assert row["status"] == "pending" and row["attempts"] == 0
    detail = await client.get(f"/webhooks/deliveries/{delivery_id}")
    assert (
        detail.status_code == 200
        and "+61400000001" in detail.text
        and "Not attempted yet" in detail.text
    )
    # another tenant's delivery is not found
    await login(client, "owner@beta.test")
    assert (await client.get(f"/webhooks/deliveries/{delivery_id}")).status_code == 404


async def test_pausing_and_removing_a_webhook_shows_the_list_again_or_goes_back(
    client, world, settings_env
):
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1")
    csrf = await login(client, world.users["Owner"])
    made = await client.post(
        "/webhooks",
        data={"_csrf_token": csrf, "url": "https://hooks.example.com/in", "event_status": "on"},
        headers=HX,
    )
    assert made.status_code == 201
    [sub] = await list_subscriptions(world.accounts["alpha"])
    paused = await client.post(
        f"/webhooks/{sub.id}/active", data={"_csrf_token": csrf, "active": "0"}, headers=HX
    )
    assert paused.status_code == 200 and "Resume" in paused.text and "<html" not in paused.text
    assert not (await list_subscriptions(world.accounts["alpha"]))[0].active
    gone = await client.post(
        f"/webhooks/{sub.id}/remove", data={"_csrf_token": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303 and gone.headers["location"] == "/webhooks"
    assert await list_subscriptions(world.accounts["alpha"]) == []
