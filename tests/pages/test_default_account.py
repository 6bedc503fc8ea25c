"""A person who belongs to several accounts chooses the one sign-in lands in (/me/accounts,
JS off and htmx); a choice outside their memberships is 422 naming the field and changes
nothing; an API key keeps acting for its own account."""

from __future__ import annotations

from tenants.access import apikeys, users
from tenants.access.tables import Membership
from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tests.api.conftest import basic
from tests.conftest import login
from tests.factories import HX


def _working(page_text: str, account_id: int) -> bool:
    return f'<option value="{account_id}" selected>' in page_text


async def _two_memberships(world) -> tuple[str, int, int]:
    email = world.users["Owner"]
    await users.add_membership(
        user_id=world.user_ids[email], account_id=world.accounts["beta"], role="Viewer"
    )
    return email, world.accounts["alpha"], world.accounts["beta"]


async def test_chosen_default_is_where_sign_in_lands_without_javascript(client, world):
    email, alpha, beta = await _two_memberships(world)
    token = await login(client, email)
    assert _working((await client.get("/")).text, alpha)
    page = await client.get("/me/accounts")
    assert page.status_code == 200 and f'id="default-{beta}"' in page.text
    r = await client.post(
        "/me/accounts/default",
        data={"_csrf_token": token, "account_id": str(beta)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/me/accounts?saved=1"
    saved = await client.get(r.headers["location"])
    assert "your next sign-in lands in Beta Master" in saved.text
    assert f'value="{beta}" id="default-{beta}" checked' in saved.text
    # The choice is for the next sign-in: this session stays where it works.
    assert _working((await client.get("/")).text, alpha)
    await client.post("/logout", data={"_csrf_token": token})
    await login(client, email)
    assert _working((await client.get("/")).text, beta)
    event = await AuditEvent.select().where(AuditEvent.action == "user.default_account").first()
    assert event is not None and event["account_id"] == beta


async def test_the_api_key_account_is_unaffected(client, world):
    email, alpha, beta = await _two_memberships(world)
    await users.set_default_account(
        actor=SYSTEM, user_id=world.user_ids[email], account_id=beta, working_account_id=alpha
    )
    key = await apikeys.create_api_key(actor=SYSTEM, account_id=alpha, name="k", role="Owner")
    r = await client.get("/api/v1/account", headers=basic(key.key_id, key.secret))
    assert r.status_code == 200 and r.json()["id"] == alpha


async def test_a_lost_membership_falls_back_to_the_first_account(client, world):
    email, alpha, beta = await _two_memberships(world)
    user_id = world.user_ids[email]
    await users.set_default_account(
        actor=SYSTEM, user_id=user_id, account_id=beta, working_account_id=alpha
    )
    await Membership.delete().where((Membership.user == user_id) & (Membership.account == beta))
    await login(client, email)
    assert _working((await client.get("/")).text, alpha)


async def test_a_choice_outside_the_memberships_is_422_and_changes_nothing(client, world):
    email, alpha, beta = await _two_memberships(world)
    user_id = world.user_ids[email]
    token = await login(client, email)
    for value in (
        str(world.accounts["beta-one"]),
        str(world.accounts["alpha-one"]),
        "abc",
        "9" * 12,
    ):
        r = await client.post(
            "/me/accounts/default", data={"_csrf_token": token, "account_id": value}
        )
        assert r.status_code == 422 and 'id="account_id-error"' in r.text, value
        assert "<html" in r.text
    r = await client.post(
        "/me/accounts/default",
        data={"_csrf_token": token, "account_id": str(world.accounts["beta-one"])},
        headers=HX,
    )
    assert r.status_code == 422 and "<html" not in r.text and "accounts you belong to" in r.text
    assert await users.default_account_id(user_id) is None
    r = await client.post(
        "/me/accounts/default", data={"_csrf_token": token, "account_id": str(beta)}, headers=HX
    )
    assert r.status_code == 200 and 'id="default-saved"' in r.text
    r = await client.post(
        "/me/accounts/default",
        data={"_csrf_token": token, "account_id": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303 and await users.default_account_id(user_id) is None
