"""/api/v1/consent and /api/v1/contacts: shapes and status codes of CONTRACT.md."""

from __future__ import annotations

from urllib.parse import quote


async def test_post_consent_then_get_trace(client, make_key, world):
    auth = await make_key("alpha-one", "Owner")
    r = await client.post(
        "/api/v1/consent", json={"phone": "0412 345 678", "action": "opt_out"}, headers=auth
    )
    assert r.status_code == 201, r.text
    # The master (same scope) sees the opt-out received by its sub-account.
    master = await make_key("alpha", "Owner")
    r = await client.get(f"/api/v1/consent/{quote('+61412345678')}?channel=sms", headers=master)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["phone"] == "+61412345678"
    assert body["status"] == "opted_out"
    assert body["scope_account_id"] == world.accounts["alpha"]
    assert [(e["action"], e["source"], e["account_id"]) for e in body["events"]] == [
        ("opt_out", "api", world.accounts["alpha-one"])
    ]
    assert body["events"][0]["at"]
    r = await client.get("/api/v1/consent/+61412345678?channel=whatsapp", headers=master)
    assert r.json()["status"] == "unknown"
    # Another master's tree is another scope.
    other = await make_key("beta", "Owner")
    r = await client.get("/api/v1/consent/+61412345678", headers=other)
    assert r.json()["status"] == "unknown" and r.json()["events"] == []


async def test_patch_consent_mode_rederives(client, make_key, world):
    auth = await make_key("alpha", "Owner")
    sub = await make_key("alpha-one", "Owner")
    await client.post(
        "/api/v1/consent", json={"phone": "+61412345678", "action": "opt_out"}, headers=auth
    )
    r = await client.patch(
        f"/api/v1/accounts/{world.accounts['alpha-one']}",
        json={"consent_mode": "isolated"},
        headers=auth,
    )
    assert r.status_code == 200
    r = await client.get("/api/v1/consent/+61412345678", headers=sub)
    assert r.json()["status"] == "unknown"
    assert r.json()["scope_account_id"] == world.accounts["alpha-one"]
    await client.patch(
        f"/api/v1/accounts/{world.accounts['alpha-one']}",
        json={"consent_mode": "inherit"},
        headers=auth,
    )
    r = await client.get("/api/v1/consent/+61412345678", headers=sub)
    assert r.json()["status"] == "opted_out"
    # A sub-account cannot set itself apart from its tree's opt-outs.
    r = await client.patch(
        f"/api/v1/accounts/{world.accounts['alpha-one']}",
        json={"consent_mode": "isolated"},
        headers=sub,
    )
    assert r.status_code == 409 and r.json()["code"] == "own_account"


async def test_consent_errors(client, make_key):
    auth = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/consent", json={"phone": "12", "action": "opt_out"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "phone"
    r = await client.post(
        "/api/v1/consent", json={"phone": "+61412345678", "action": "maybe"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "action"
    r = await client.post(
        "/api/v1/consent",
        json={"phone": "+61412345678", "action": "opt_out", "channel": "fax"},
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["field"] == "channel"
    viewer = await make_key("alpha", "Viewer")
    r = await client.post(
        "/api/v1/consent", json={"phone": "+61412345678", "action": "opt_out"}, headers=viewer
    )
    assert r.status_code == 403


async def test_create_contact_and_export_needs_permission(client, make_key, world):
    auth = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/contacts",
        json={"phone": "0412 345 678", "first_name": "Ann", "fields": {"store": "Bondi"}},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["phone"] == "+61412345678" and body["first_name"] == "Ann"
    assert body["fields"] == {"store": "Bondi"} and isinstance(body["id"], int)
    r = await client.post("/api/v1/contacts", json={"phone": "+61412345678"}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "phone"
    r = await client.post("/api/v1/contacts", json={"phone": "nope"}, headers=auth)
    assert r.status_code == 422
    r = await client.get(f"/api/v1/contacts/{body['id']}", headers=auth)
    assert r.status_code == 200 and r.json()["phone"] == "+61412345678"
    other = await make_key("beta", "Owner")
    assert (await client.get(f"/api/v1/contacts/{body['id']}", headers=other)).status_code == 404
    r = await client.get("/api/v1/contacts/export", headers=auth)
    assert r.status_code == 200 and "+61412345678" in r.text
    support = await make_key("alpha", "Support")
    r = await client.get("/api/v1/contacts/export", headers=support)
    assert r.status_code == 403
