"""Refusals in the browser: a 403, 404, 405 or 500 page keeps the person's layout (navigation,
branding, sign-out) and says what happened; an htmx request gets the same page, whose
message portal.js shows in the page's error region instead of an alert box."""

from __future__ import annotations

from tests.conftest import login

HX = {"HX-Request": "true"}


async def test_a_403_page_keeps_the_navigation_branding_and_sign_out(client, demo):
    await login(client, "sales@sydney.test")
    r = await client.get("/users")
    assert r.status_code == 403
    assert "<html" in r.text and 'class="sidenav"' in r.text
    assert 'action="/logout"' in r.text and "sales@sydney.test" in r.text
    assert 'href="/messages"' in r.text and 'id="page-error"' in r.text
    assert "<h1>Not allowed</h1>" in r.text


async def test_a_404_for_another_accounts_row_keeps_the_layout_and_says_only_not_found(
    client, demo
):
    await login(client, "owner@northwind.test")
    r = await client.get("/messages/987654")
    assert r.status_code == 404
    assert 'class="sidenav"' in r.text and 'action="/logout"' in r.text
    assert "<h1>Not found</h1>" in r.text and 'role="alert">Not found.</p>' in r.text
    # The htmx answer carries the same message where portal.js looks for it.
    fragment = await client.get("/messages/987654", headers=HX)
    assert fragment.status_code == 404
    assert '<main id="main"' in fragment.text and 'role="alert">Not found.</p>' in fragment.text


async def test_signed_out_error_pages_stay_bare(client, demo):
    r = await client.get("/no-such-page")
    assert r.status_code == 404 and 'class="sidenav"' not in r.text


async def test_404_405_and_500_pages_keep_the_layout_too(client, demo, app):
    from litestar import get

    @get("/broken-page", opt={"permission": "account.view"})
    async def broken() -> None:
        raise RuntimeError("a fault nobody should read")

    app.register(broken)
    await login(client, "owner@northwind.test")
    # No route matched: the page itself finds who is signed in and their account.
    missing = await client.get("/no-such-page")
    assert missing.status_code == 404 and 'class="sidenav"' in missing.text
    assert "owner@northwind.test" in missing.text and 'href="/credits"' in missing.text
    wrong = await client.get("/logout")  # sign-out is a POST
    assert wrong.status_code == 405
    assert 'class="sidenav"' in wrong.text and 'action="/logout"' in wrong.text
    fault = await client.get("/broken-page")
    assert fault.status_code == 500 and "a fault nobody" not in fault.text
    assert 'class="sidenav"' in fault.text and 'action="/logout"' in fault.text
    assert fault.headers["x-request-id"] in fault.text
