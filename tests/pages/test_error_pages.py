"""Refusals in the browser: a 403 or a 404 page keeps the person's layout (navigation,
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
