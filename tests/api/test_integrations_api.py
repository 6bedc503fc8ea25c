"""/api/v1/integrations and PUT /api/v1/channels/{channel}: CONTRACT.md shapes, the
permission and the provider permit, secrets never returned, refusals that change nothing."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.providers import integrations as providers
from tenants.providers.tables import ChannelDefault, ProviderIntegration

SID = "AC" + "a" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
TWILIO = {
    "kind": "twilio",
    "name": "Alpha Twilio",
    "fields": {"account_sid": SID, "auth_token": TOKEN},
}


async def permit(world, slug: str = "alpha") -> None:
    await providers.set_master_permit(SYSTEM, master_id=world.accounts[slug], allowed=True)


async def test_create_list_and_patch_never_return_secrets(client, world, make_key):
    await permit(world)
    auth = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/integrations",
        json={**TWILIO, "api_base_url": "http://127.0.0.1:9911/"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert TOKEN not in r.text
    assert {k: created[k] for k in ("kind", "name", "account_id", "status")} == {
        "kind": "twilio",
        "name": "Alpha Twilio",
        "account_id": world.accounts["alpha"],
        "status": "active",
    }
    assert created["channels"] == ["mms", "sms", "whatsapp"]
    assert created["settings"] == {"account_sid": SID}
    assert created["secrets_set"] == ["auth_token"]
    assert created["api_base_url"] == "http://127.0.0.1:9911"
    assert set(created["callback_urls"]) == {"status", "inbound"}
    assert created["callback_urls"]["status"].startswith(
        f"http://testserver.local/hooks/providers/{created['id']}/"
    )

    listed = await client.get("/api/v1/integrations", headers=auth)
    assert listed.status_code == 200 and [i["id"] for i in listed.json()] == [created["id"]]
    assert TOKEN not in listed.text

    r = await client.patch(
        f"/api/v1/integrations/{created['id']}",
        json={"name": "Renamed", "status": "disabled", "api_base_url": None},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["status"], body["api_base_url"]) == ("Renamed", "disabled", None)
    # The stored secret was kept: the gateway still signs in with it.
    config = await providers.load_config(created["id"])
    assert config.secrets == {"auth_token": TOKEN} and config.settings == {"account_sid": SID}


async def test_the_gateway_goes_to_the_integrations_api_base_url(world):
    from tasks.gateways import build

    await permit(world)
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["alpha"],
        kind="twilio",
        name="Emulated",
        values={"account_sid": SID, "auth_token": TOKEN},
        api_base_url="http://127.0.0.1:9911",
    )
    gateway = build(await providers.load_config(created.integration.id))
    assert gateway.http.base_url == f"http://127.0.0.1:9911/2010-04-01/Accounts/{SID}"  # type: ignore[attr-defined]


async def test_refusals_name_the_field_and_change_nothing(client, world, make_key):
    auth = await make_key("alpha", "Owner")
    # No provider permit yet: 403, and nothing was stored.
    r = await client.post("/api/v1/integrations", json=TWILIO, headers=auth)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert await ProviderIntegration.count() == 0
    await permit(world)
    r = await client.post(
        "/api/v1/integrations",
        json={**TWILIO, "fields": {"account_sid": "nope", "auth_token": TOKEN}},
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["field"] == "account_sid"
    r = await client.post("/api/v1/integrations", json={**TWILIO, "kind": "fax"}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "kind"
    r = await client.post(
        "/api/v1/integrations", json={**TWILIO, "api_base_url": "ftp://x"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "api_base_url"
    r = await client.post(
        "/api/v1/integrations", json={**TWILIO, "name": "bad\x00name"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "name"
    r = await client.post("/api/v1/integrations", json={"kind": "twilio"}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "name"
    assert await ProviderIntegration.count() == 0
    sender = await make_key("alpha", "Sender")
    r = await client.post("/api/v1/integrations", json=TWILIO, headers=sender)
    assert r.status_code == 403
    assert (await client.post("/api/v1/integrations", json=TWILIO)).status_code == 401
    assert await ProviderIntegration.count() == 0

    r = await client.post("/api/v1/integrations", json=TWILIO, headers=auth)
    integration_id = r.json()["id"]
    before = await providers.load_config(integration_id)
    r = await client.patch(
        f"/api/v1/integrations/{integration_id}", json={"status": "paused"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = await client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"name": "", "fields": {"auth_token": "short"}},
        headers=auth,
    )
    assert r.status_code == 422 and set(r.json()["errors"]) == {"name", "auth_token"}
    beta = await make_key("beta", "Owner")
    r = await client.patch(
        f"/api/v1/integrations/{integration_id}", json={"name": "Mine"}, headers=beta
    )
    assert r.status_code == 404
    r = await client.patch(f"/api/v1/integrations/{2**31}", json={"name": "x"}, headers=auth)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert await providers.load_config(integration_id) == before


async def test_put_channel_sets_the_default_and_refuses_what_it_cannot_use(client, world, make_key):
    await permit(world)
    auth = await make_key("alpha", "Owner")
    integration_id = (await client.post("/api/v1/integrations", json=TWILIO, headers=auth)).json()[
        "id"
    ]
    r = await client.put(
        "/api/v1/channels/sms", json={"integration_id": integration_id}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "channel": "sms",
        "integration_id": integration_id,
        "choice": str(integration_id),
    }
    assert await providers.provider_for(world.accounts["alpha-one"], "sms") == (
        providers.provider_key(integration_id)
    )
    # Twilio offers no RCS; another tree's key cannot use it; bad channel and body named.
    r = await client.put(
        "/api/v1/channels/rcs", json={"integration_id": integration_id}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "rcs"
    beta = await make_key("beta", "Owner")
    r = await client.put(
        "/api/v1/channels/sms", json={"integration_id": integration_id}, headers=beta
    )
    assert r.status_code == 422
    r = await client.put("/api/v1/channels/fax", json={"integration_id": "inherit"}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "channel"
    r = await client.put("/api/v1/channels/sms", json={"integration_id": 0}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "integration_id"
    viewer = await make_key("alpha", "Viewer")
    r = await client.put("/api/v1/channels/sms", json={"integration_id": "inherit"}, headers=viewer)
    assert r.status_code == 403
    rows = await ChannelDefault.select(ChannelDefault.account_id, ChannelDefault.integration_id)
    assert rows == [{"account_id": world.accounts["alpha"], "integration_id": integration_id}]
    r = await client.put("/api/v1/channels/sms", json={"integration_id": "inherit"}, headers=auth)
    assert r.status_code == 200 and r.json()["integration_id"] is None
    assert await ChannelDefault.count() == 0


async def test_demo_northwind_holds_a_provider_permit(demo):
    assert await providers.master_may_own(demo["northwind"])


async def test_a_messagemedia_signature_key_that_is_no_key_is_a_422_and_stores_nothing(
    client, world, make_key
):
    await permit(world)
    auth = await make_key("alpha", "Owner")
    fields = {"api_key": "KEY12345", "api_secret": "SECRET123"}
    for extra, field in (
        (
            {"signature_public_key": "MIIBIjAN", "signature_digest": "sha256"},
            "signature_public_key",
        ),
        ({"signature_digest": "md5"}, "signature_digest"),
    ):
        r = await client.post(
            "/api/v1/integrations",
            json={"kind": "messagemedia", "name": "MM", "fields": {**fields, **extra}},
            headers=auth,
        )
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert await ProviderIntegration.count() == 0
