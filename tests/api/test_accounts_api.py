"""/api/v1/account(s): shapes and status codes of CONTRACT.md."""

from __future__ import annotations

from tests.api.conftest import basic


async def test_account_and_subtree(client, make_key, world):
    auth = await make_key("alpha", "Owner")
    r = await client.get("/api/v1/account", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("id", "slug", "parent_id", "balance", "consent_mode")} == {
        "id": world.accounts["alpha"],
        "slug": "alpha",
        "parent_id": None,
        "balance": 0,
        "consent_mode": "inherit",
    }
    r = await client.get("/api/v1/accounts", headers=auth)
    assert [a["slug"] for a in r.json()] == ["alpha", "alpha-one"]


async def test_bad_credentials_are_401(client, make_key):
    assert (await client.get("/api/v1/account")).status_code == 401
    r = await client.get("/api/v1/account", headers=basic("key_nope", "nope"))
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


async def test_create_patch_and_errors(client, make_key, world):
    auth = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/accounts", json={"name": "Api Child", "slug": "api-child"}, headers=auth
    )
    assert r.status_code == 201, r.text
    child = r.json()
    assert child["parent_id"] == world.accounts["alpha"]
    r = await client.post("/api/v1/accounts", json={"name": "", "slug": "Bad Slug"}, headers=auth)
    assert r.status_code == 422 and r.json()["code"] == "invalid"
    assert set(r.json()["errors"]) == {"name", "slug"}
    r = await client.patch(
        f"/api/v1/accounts/{child['id']}", json={"consent_mode": "isolated"}, headers=auth
    )
    assert r.status_code == 200 and r.json()["consent_mode"] == "isolated"
    r = await client.patch(
        f"/api/v1/accounts/{world.accounts['beta']}", json={"name": "x"}, headers=auth
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/accounts",
        json={"name": "X", "slug": "xx", "parent_id": world.accounts["beta"]},
        headers=auth,
    )
    assert r.status_code == 404


async def test_role_without_permission_is_403(client, make_key):
    auth = await make_key("alpha", "Sender")
    r = await client.post("/api/v1/accounts", json={"name": "N", "slug": "nn"}, headers=auth)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
