"""Sign-in, sessions, CSRF, throttling, sign-out, account switching."""

from __future__ import annotations

from tenants.access.tables import UserSession
from tests.conftest import PASSWORD, csrf_token, login
from tests.factories import HX


async def test_sign_in_sets_httponly_session_and_new_id(client, world):
    await login(client, world.users["Owner"])
    cookie_header = None
    first = await UserSession.select(UserSession.token_hash)
    assert len(first) == 1
    # Signing in again creates a fresh session id rather than reusing the old one.
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
    await login(client, world.users["Owner"])
    second = await UserSession.select(UserSession.token_hash)
    assert len(second) == 1 and second[0]["token_hash"] != first[0]["token_hash"]
    page = await client.get("/")
    assert page.status_code == 200 and "Alpha Master" in page.text
    assert cookie_header is None


async def test_set_cookie_flags(client, world):
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={"_csrf_token": token, "email": world.users["Owner"], "password": PASSWORD},
        follow_redirects=False,
    )
    set_cookie = response.headers.get("set-cookie", "").lower()
    assert (
        "portal_session=" in set_cookie
        and "httponly" in set_cookie
        and "samesite=lax" in set_cookie
    )


async def test_wrong_password_is_refused_without_saying_which(client, world):
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={"_csrf_token": token, "email": world.users["Owner"], "password": "nope-nope-nope"},
    )
    assert response.status_code == 401
    assert "Email or password is wrong" in response.text


async def test_post_without_csrf_token_is_403(client, world):
    response = await client.post(
        "/login", data={"email": world.users["Owner"], "password": PASSWORD}
    )
    assert response.status_code == 403


async def test_eleventh_wrong_password_in_15_minutes_is_429(client, world):
    token = await csrf_token(client)
    for _ in range(10):
        r = await client.post(
            "/login",
            data={
                "_csrf_token": token,
                "email": world.users["Sender"],
                "password": "wrong-password",
            },
        )
        assert r.status_code == 401
    r = await client.post(
        "/login", data={"_csrf_token": token, "email": world.users["Sender"], "password": PASSWORD}
    )
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text
    assert int(r.headers["retry-after"]) > 0
    # Another email from the same place is not locked out.
    r = await client.post(
        "/login",
        data={"_csrf_token": token, "email": world.users["Owner"], "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303


async def test_pages_are_served_as_html(client, world):
    assert (await client.get("/login")).headers["content-type"].startswith("text/html")
    await login(client, world.users["Owner"])
    assert (await client.get("/")).headers["content-type"].startswith("text/html")
    r = await client.get("/accounts/999999/children", headers=HX)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


async def test_pages_need_sign_in(client, world):
    r = await client.get("/accounts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_logout_ends_the_session(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert (await client.get("/", follow_redirects=False)).status_code == 303
    assert await UserSession.count() == 0


async def test_switch_account_between_memberships(client, world):
    from tenants.access import users

    email = world.users["Owner"]
    await users.add_membership(
        user_id=world.user_ids[email], account_id=world.accounts["beta-one"], role="Viewer"
    )
    token = await login(client, email)
    assert "Alpha Master" in (await client.get("/")).text
    r = await client.post(
        "/switch-account",
        data={"_csrf_token": token, "account_id": str(world.accounts["beta-one"])},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = await client.get("/")
    assert "<h1>Beta One</h1>" in page.text
    # Switching to an account reached by nobody is a 404, not a 403.
    r = await client.post(
        "/switch-account", data={"_csrf_token": token, "account_id": str(world.accounts["beta"])}
    )
    assert r.status_code == 404


async def test_suspended_user_cannot_sign_in(client, world):
    from tenants.accounts import tree as accounts
    from tenants.audit.record import SYSTEM

    await accounts.set_status(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        account_id=world.accounts["alpha-one"],
        status="suspended",
    )
    token = await csrf_token(client)
    r = await client.post(
        "/login",
        data={"_csrf_token": token, "email": "sender@alpha-one.test", "password": PASSWORD},
    )
    assert r.status_code == 403
    assert "suspended" in r.text


async def test_an_attacker_elsewhere_cannot_lock_the_person_out(client, world, monkeypatch):
    from portal.controllers import session

    # The test client has one address; let each request say which client it plays.
    monkeypatch.setattr(session, "_client_ip", lambda request: request.headers["x-test-client"])
    attacker = {"x-test-client": "198.51.100.7"}
    token = await csrf_token(client)
    wrong = {"_csrf_token": token, "email": world.users["Sender"], "password": "guess"}
    statuses = [(await client.post("/login", data=wrong, headers=attacker)).status_code]
    for _ in range(11):
        statuses.append((await client.post("/login", data=wrong, headers=attacker)).status_code)
    assert statuses == [401] * 10 + [429] * 2
    right = {**wrong, "password": PASSWORD}
    refused = await client.post("/login", data=right, headers=attacker)
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    # The person, from home, signs in at once with the right password.
    home = await client.post(
        "/login", data=right, headers={"x-test-client": "203.0.113.5"}, follow_redirects=False
    )
    assert home.status_code == 303


def test_the_client_address_is_the_peer_uvicorn_reports():
    from types import SimpleNamespace

    from portal.controllers.session import _client_ip

    assert _client_ip(SimpleNamespace(client=SimpleNamespace(host="192.0.2.1"))) == "192.0.2.1"
    assert _client_ip(SimpleNamespace(client=None)) == ""
