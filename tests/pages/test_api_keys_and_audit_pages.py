"""/api-keys (secret shown once, stored only as a hash, revoke is immediate) and /audit
(filterable, before/after shown)."""

from __future__ import annotations

import re

from tenants.access import members as people
from tenants.access.tables import ApiKey
from tenants.audit.tables import AuditEvent
from tests.api.conftest import basic
from tests.conftest import another_client, login
from tests.factories import HX

KEY_RE = re.compile(r'id="new-key-id" readonly value="([^"]+)"')
SECRET_RE = re.compile(r'id="new-key-secret" readonly value="([^"]+)"')


async def test_key_secret_is_shown_once_and_not_recoverable_from_the_database(client, world):
    token = await login(client, world.users["Admin"])
    r = await client.post(
        "/api-keys", data={"_csrf_token": token, "name": "CRM sync", "role": "Sender"}, headers=HX
    )
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    key_id, secret = KEY_RE.search(r.text).group(1), SECRET_RE.search(r.text).group(1)
    # Nothing the database holds contains the secret, in any column of any key row.
    rows = await ApiKey.select()
    assert len(rows) == 1 and secret not in repr(rows)
    assert rows[0]["secret_hash"].startswith("$argon2")
    audit_rows = await AuditEvent.select()
    assert secret not in repr(audit_rows)
    # The list shows who made it, and never the secret again.
    page = await client.get("/api-keys")
    assert key_id in page.text and world.users["Admin"] in page.text
    assert secret not in page.text and "never" in page.text


async def test_revoked_key_gets_401_at_once(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/api-keys", data={"_csrf_token": token, "name": "Robot", "role": "Viewer"}, headers=HX
    )
    headers = basic(KEY_RE.search(r.text).group(1), SECRET_RE.search(r.text).group(1))
    async with another_client() as api:
        assert (await api.get("/api/v1/account", headers=headers)).status_code == 200
        # Second call within the cache window: still checked against the key row.
        assert (await api.get("/api/v1/account", headers=headers)).status_code == 200
        page = await client.get("/api-keys")
        assert "never" not in page.text  # last used is shown
        row = await ApiKey.select(ApiKey.id).first()
        revoked = await client.post(
            f"/api-keys/{row['id']}/revoke", data={"_csrf_token": token}, headers=HX
        )
        assert revoked.status_code == 200 and "revoked" in revoked.text
        gone = await api.get("/api/v1/account", headers=headers)
        assert gone.status_code == 401 and gone.json()["code"] == "unauthorized"
    event = await AuditEvent.select().where(AuditEvent.action == "api_key.revoke").first()
    assert '"active": true' in event["before"] and '"active": false' in event["after"]


async def test_key_role_cannot_exceed_the_creator(client, world):
    token = await login(client, world.users["Admin"])
    r = await client.post(
        "/api-keys", data={"_csrf_token": token, "name": "Buyer", "role": "Owner"}, headers=HX
    )
    assert r.status_code == 422 and "credits.buy" in r.text
    r = await client.post(
        "/api-keys", data={"_csrf_token": token, "name": "", "role": "Viewer"}, headers=HX
    )
    assert r.status_code == 422 and "Name is required" in r.text
    assert await ApiKey.count() == 0


async def test_another_tenants_key_cannot_be_revoked(client, world):
    from tenants.access.apikeys import create_api_key
    from tenants.audit.record import SYSTEM

    await create_api_key(actor=SYSTEM, account_id=world.accounts["beta"], name="b", role="Sender")
    token = await login(client, world.users["Owner"])
    row = await ApiKey.select(ApiKey.id).first()
    r = await client.post(f"/api-keys/{row['id']}/revoke", data={"_csrf_token": token}, headers=HX)
    assert r.status_code == 404
    assert (await ApiKey.select(ApiKey.revoked_at).first())["revoked_at"] is None


async def test_audit_page_filters_and_shows_before_and_after(client, world):
    owner = world.users["Owner"]
    token = await login(client, owner)
    sender_id = world.user_ids[world.users["Sender"]]
    await client.post(
        f"/users/{sender_id}/overrides",
        data={"_csrf_token": token, "permission": "contacts.export", "effect": "deny"},
        headers=HX,
    )
    await client.post(
        "/teams", data={"_csrf_token": token, "name": "Front desk", "role": "Support"}, headers=HX
    )
    page = await client.get("/audit")
    assert page.status_code == 200
    assert 'data-action="override.deny"' in page.text and 'data-action="team.create"' in page.text
    only = await client.get("/audit?action=team.create", headers=HX)
    assert 'data-action="team.create"' in only.text and "override.deny" not in only.text
    assert "<html" not in only.text
    # The IP and both sides of the change are shown.
    ip = (
        await AuditEvent.select(AuditEvent.ip).where(AuditEvent.action == "override.deny").first()
    )["ip"]
    assert ip and ip in page.text
    assert "contacts.export" in page.text and "→ deny" in page.text
    by_actor = await client.get("/audit?actor=nobody-like-this")
    assert "Nothing matches" in by_actor.text
    by_actor = await client.get(f"/audit?actor={owner.split('@')[0].upper()}")
    assert 'data-action="team.create"' in by_actor.text
    future = await client.get("/audit?since=2999-01-01")
    assert "Nothing matches" in future.text
    today = await client.get("/audit?until=2999-01-01&since=2000-01-01")
    assert 'data-action="team.create"' in today.text
    bad = await client.get("/audit?since=yesterday")
    assert "Use a date like" in bad.text


async def test_audit_of_another_tenant_is_not_shown_and_viewer_is_refused(client, world):
    owner_b = "owner@beta.test"
    g = await people.member_grants(world.accounts["beta"], world.user_ids[owner_b])
    from tenants.audit.record import Actor

    await people.create_team(Actor(label=owner_b), g, name="Beta team", role="Viewer")
    await login(client, world.users["Owner"])
    page = await client.get("/audit")
    assert "Beta team" not in page.text and "team.create" not in page.text
    token = await login(client, world.users["Viewer"])
    assert token and (await client.get("/audit")).status_code == 403
