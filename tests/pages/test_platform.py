"""The operator console: only operators get in; creating a master validates inline."""

from __future__ import annotations

from tenants.access import users
from tenants.accounts import tree as accounts
from tests.conftest import login
from tests.factories import HX


async def test_only_the_operator_sees_the_platform_page(client, world):
    await login(client, world.users["Owner"])
    assert (await client.get("/platform")).status_code == 403
    await client.get("/")


async def test_operator_creates_a_master_with_an_existing_owner(client, world):
    token = await login(client, "operator@platform.test")
    page = await client.get("/platform")
    assert page.status_code == 200 and "Alpha Master" in page.text
    r = await client.post(
        "/platform/masters",
        data={
            "_csrf_token": token,
            "name": "Gamma Reseller",
            "slug": "gamma",
            "owner_email": "sender@beta.test",
        },
        headers=HX,
    )
    assert r.status_code == 201 and "Gamma Reseller" in r.text
    gamma = await accounts.get_account_by_slug("gamma")
    assert gamma.kind == "master" and gamma.parent_id is None
    ms = await users.memberships(world.user_ids["sender@beta.test"])
    assert any(m.account_id == gamma.id and m.role == "Owner" for m in ms)


async def test_bad_master_input_is_422_and_writes_nothing(client, world):
    token = await login(client, "operator@platform.test")
    r = await client.post(
        "/platform/masters",
        data={
            "_csrf_token": token,
            "name": "Dup",
            "slug": "alpha",
            "owner_email": "nobody@nowhere.test",
        },
        headers=HX,
    )
    assert r.status_code == 422
    assert "No user has this email" in r.text
    r = await client.post(
        "/platform/masters", data={"_csrf_token": token, "name": "Dup", "slug": "alpha"}, headers=HX
    )
    assert r.status_code == 422 and "already taken" in r.text
    assert len(await accounts.root_accounts(kind="master")) == 2
