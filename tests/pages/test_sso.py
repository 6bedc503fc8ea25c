"""Single sign-on against a real OpenID Connect provider on loopback: authorization code with
PKCE S256, the ID token's signature, issuer, audience, expiry and nonce verified; invited
emails linked at first sign-in; strangers refused with a clear page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tenants import secrets_box
from tenants.access import invitations, sso
from tenants.access import members as people
from tenants.access.tables import User, UserSession
from tenants.audit.tables import AuditEvent
from tests.conftest import login
from tests.factories import HX
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalOidcProvider


@pytest.fixture(scope="module")
def provider():
    p = LocalOidcProvider().start()
    yield p
    p.stop()


@pytest.fixture
async def configured(provider, world):
    """Alpha's Owner configures the provider through the security page."""
    provider.reset()
    return provider


async def configure(client, world, provider, secret=CLIENT_SECRET, via_page=False):
    if not via_page:
        from tenants.audit.record import Actor

        owner = world.users["Owner"]
        grants = await people.member_grants(world.accounts["alpha"], world.user_ids[owner])
        await sso.configure_provider(
            Actor(user_id=world.user_ids[owner], label=owner),
            grants,
            issuer=provider.issuer,
            client_id=CLIENT_ID,
            client_secret=secret,
        )
        return
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/security/sso",
        data={
            "_csrf_token": token,
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "enabled": "on",
        },
        headers=HX,
    )
    assert r.status_code == 200, r.text
    await client.post("/logout", data={"_csrf_token": token})
    client.cookies.clear()


async def sso_round_trip(client, provider, slug="alpha", tamper=None):
    """Browser steps: start -> provider authorize -> back to the portal's callback."""
    start = await client.get(f"/sso/{slug}/start?next=/users", follow_redirects=False)
    assert start.status_code == 302, start.text
    authorize_url = start.headers["location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0]
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorize_url)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    assert back.path == "/sso/callback"
    query_string = back.query if tamper is None else tamper(back.query)
    return await client.get(f"/sso/callback?{query_string}", follow_redirects=False)


async def test_client_secret_is_stored_encrypted(client, world, configured):
    await configure(client, world, configured, via_page=True)
    row = await sso.SsoProvider.select().first()
    assert CLIENT_SECRET not in str(row)
    assert secrets_box.decrypt(row["client_secret"]) == CLIENT_SECRET
    event = await AuditEvent.select().where(AuditEvent.action == "sso.configure").first()
    assert CLIENT_SECRET not in str(event)


async def test_member_signs_in_through_the_provider(client, world, configured):
    await configure(client, world, configured)
    configured.state.next_email = world.users["Admin"].upper()
    r = await sso_round_trip(client, configured)
    assert r.status_code == 303 and r.headers["location"] == "/users"
    page = await client.get("/users")
    assert page.status_code == 200 and world.users["Admin"] in page.text
    # The code was redeemed with the PKCE verifier and the client's secret.
    request = configured.state.token_requests[-1]
    assert request["grant_type"] == "authorization_code" and request["code_verifier"]
    # Later sign-ins find the person by the provider's subject.
    assert await sso.SsoIdentity.count() == 1
    client.cookies.clear()
    configured.state.next_email = "renamed-at-the-provider@example.test"
    again = await sso_round_trip(client, configured)
    assert again.status_code == 303
    assert await UserSession.count() == 2


async def test_first_sign_in_of_an_invited_email_links_and_joins(client, world, configured):
    await configure(client, world, configured)
    owner_g = await people.member_grants(
        world.accounts["alpha"], world.user_ids[world.users["Owner"]]
    )
    from tenants.audit.record import Actor

    await invitations.invite_user(
        Actor(user_id=world.user_ids[world.users["Owner"]], label=world.users["Owner"]),
        owner_g,
        email="invited@example.test",
        role="Viewer",
    )
    configured.state.next_email = "invited@example.test"
    r = await sso_round_trip(client, configured)
    assert r.status_code == 303
    home = await client.get("/")
    assert home.status_code == 200 and "Alpha Master" in home.text
    assert await User.count().where(User.email == "invited@example.test") == 1
    invitation = (await invitations.list_invitations(world.accounts["alpha"]))[0]
    assert invitation.status == "accepted"
    actions = [e["action"] for e in await AuditEvent.select(AuditEvent.action)]
    assert "invitation.accept" in actions and "sso.link" in actions


async def test_unknown_email_is_refused_with_a_clear_page(client, world, configured):
    await configure(client, world, configured)
    configured.state.next_email = "stranger@example.test"
    r = await sso_round_trip(client, configured)
    assert r.status_code == 403
    assert "stranger@example.test has no account and no invitation at Alpha Master" in r.text
    assert await User.count().where(User.email == "stranger@example.test") == 0
    assert await UserSession.count() == 0


async def test_member_of_another_tree_is_refused(client, world, configured):
    await configure(client, world, configured)
    configured.state.next_email = "owner@beta.test"
    r = await sso_round_trip(client, configured)
    assert r.status_code == 403 and "no account and no invitation" in r.text


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("bad_signature", "BadSignatureError"),
        ("wrong_nonce", "InvalidClaimError"),
        ("wrong_audience", "InvalidClaimError"),
        ("wrong_issuer", "InvalidClaimError"),
        ("expired", "ExpiredTokenError"),
    ],
)
async def test_untrustworthy_id_tokens_are_refused(client, world, configured, mode, why):
    await configure(client, world, configured)
    configured.state.next_email = world.users["Admin"]
    configured.state.mode = mode
    r = await sso_round_trip(client, configured)
    assert r.status_code == 400
    assert "ID token was refused" in r.text and why in r.text
    assert await UserSession.count() == 0


async def test_callback_with_another_state_or_without_the_cookie_is_refused(
    client, world, configured
):
    await configure(client, world, configured)
    configured.state.next_email = world.users["Admin"]

    def swap_state(query: str) -> str:
        parts = parse_qs(query)
        return f"code={parts['code'][0]}&state=forged"

    r = await sso_round_trip(client, configured, tamper=swap_state)
    assert r.status_code == 400 and "does not match" in r.text
    client.cookies.clear()
    r = await client.get("/sso/callback?code=x&state=y")
    assert r.status_code == 400 and "expired" in r.text
    assert await UserSession.count() == 0


async def test_wrong_client_secret_is_refused_by_the_provider(client, world, configured):
    await configure(client, world, configured, secret="not-the-secret")
    configured.state.next_email = world.users["Admin"]
    r = await sso_round_trip(client, configured)
    assert r.status_code == 400 and "refused the code" in r.text


async def test_sso_settings_validation_and_who_may_change_them(client, world, configured):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/security/sso",
        data={
            "_csrf_token": token,
            "issuer": "http://login.example.com",
            "client_id": "",
            "client_secret": "",
        },
        headers=HX,
    )
    assert r.status_code == 422
    assert "https://" in r.text and "client id is required" in r.text
    assert await sso.SsoProvider.count() == 0
    # Unknown organisation on the SSO sign-in form.
    client.cookies.clear()
    form = await client.get("/login/sso")
    assert form.status_code == 200
    from tests.conftest import csrf_token

    csrf = await csrf_token(client, "/login/sso")
    r = await client.post("/login/sso", data={"_csrf_token": csrf, "organisation": "nowhere"})
    assert r.status_code == 422 and "no single sign-on" in r.text
    assert (await client.get("/sso/alpha/start", follow_redirects=False)).status_code == 404
