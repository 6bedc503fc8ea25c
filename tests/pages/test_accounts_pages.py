"""The account tree page: browse, lazy children, inline create with validation, suspend."""

from __future__ import annotations

import pytest

from tenants.accounts import tree as accounts
from tests.conftest import csrf_token, login
from tests.factories import HX


async def test_tree_lists_children_and_loads_grandchildren_on_demand(client, world):
    from tenants.audit.record import SYSTEM

    grand = await accounts.create_sub_account(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        parent_id=world.accounts["alpha-one"],
        name="Grandchild",
        slug="grand",
    )
    await login(client, world.users["Owner"])
    page = await client.get("/accounts")
    assert page.status_code == 200
    assert f'id="account-{world.accounts["alpha-one"]}"' in page.text
    assert f'id="account-{grand.id}"' not in page.text
    frag = await client.get(f"/accounts/{world.accounts['alpha-one']}/children", headers=HX)
    assert frag.status_code == 200
    assert "Grandchild" in frag.text and "<html" not in frag.text


async def test_children_of_another_tenant_is_404(client, world):
    await login(client, world.users["Owner"])
    r = await client.get(f"/accounts/{world.accounts['beta']}/children", headers=HX)
    assert r.status_code == 404
    assert "Beta" not in r.text


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "", "slug": "new-one"}, "name", "Name is required"),
        ({"name": "New", "slug": "Bad Slug"}, "slug", "lowercase"),
        ({"name": "New", "slug": "alpha-one"}, "slug", "already taken"),
    ],
)
async def test_create_validation_is_inline_422_and_writes_nothing(
    client, world, form, field, message
):
    token = await login(client, world.users["Owner"])
    before = len(await accounts.subtree(world.accounts["alpha"]))
    r = await client.post(
        "/accounts",
        data={
            "_csrf_token": token,
            "parent_id": str(world.accounts["alpha"]),
            "consent_mode": "inherit",
            **form,
        },
        headers=HX,
    )
    assert r.status_code == 422
    assert message in r.text
    assert f'id="acc-{field}-error"' in r.text
    assert "<html" not in r.text
    assert len(await accounts.subtree(world.accounts["alpha"])) == before


async def test_create_sub_account_via_htmx(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/accounts",
        data={
            "_csrf_token": token,
            "name": "Perth Branch",
            "slug": "perth",
            "parent_id": str(world.accounts["alpha-one"]),
            "consent_mode": "isolated",
        },
        headers=HX,
    )
    assert r.status_code == 201
    assert r.headers["hx-trigger"] == "tree-changed"
    perth = await accounts.get_account_by_slug("perth")
    assert perth.parent_id == world.accounts["alpha-one"] and perth.consent_mode == "isolated"


async def test_create_under_foreign_parent_is_404(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/accounts",
        data={
            "_csrf_token": token,
            "name": "X",
            "slug": "x-x",
            "parent_id": str(world.accounts["beta"]),
        },
        headers=HX,
    )
    assert r.status_code == 404


async def test_suspend_and_reactivate_fragment(client, world):
    token = await login(client, world.users["Owner"])
    target = world.accounts["alpha-one"]
    r = await client.post(
        f"/accounts/{target}/status", data={"_csrf_token": token, "status": "suspended"}, headers=HX
    )
    assert r.status_code == 200 and "suspended" in r.text and "Reactivate" in r.text
    assert (await accounts.get_account(target)).status == "suspended"
    r = await client.post(
        f"/accounts/{target}/status", data={"_csrf_token": token, "status": "active"}, headers=HX
    )
    assert r.status_code == 200 and "Suspend" in r.text


async def test_sender_cannot_create_or_suspend(client, world):
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/accounts", data={"_csrf_token": token, "name": "N", "slug": "nn"}, headers=HX
    )
    assert r.status_code == 403
    r = await client.post(
        f"/accounts/{world.accounts['alpha-one']}/status",
        data={"_csrf_token": token, "status": "suspended"},
    )
    assert r.status_code == 403


async def test_sub_account_user_gets_404_for_parent_urls(client, world):
    token = await login(client, "sender@alpha-one.test")
    r = await client.get(f"/accounts/{world.accounts['alpha']}/children", headers=HX)
    assert r.status_code == 404
    r = await client.post(
        "/switch-account", data={"_csrf_token": token, "account_id": str(world.accounts["alpha"])}
    )
    assert r.status_code == 404
    assert await csrf_token(client, "/")
