"""The branding page: sources per field, inline 422 with nothing stored, live preview,
"use inherited", the public logo route, and branding on every page and on sign-in."""

from __future__ import annotations

import re

from tenants.audit.record import SYSTEM
from tenants.branding import branding
from tenants.demo import northwind_logo_png
from tests.conftest import csrf_token, login
from tests.factories import HX

SCRIPT_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def primary_of(html: str, target: str = "") -> str:
    """The primary colour of the theme stylesheet the page links (the CSP allows no inline
    style); `target="preview"` for the branding preview's own."""
    suffix = f"&amp;target={target}" if target else ""
    match = re.search(
        r'<link rel="stylesheet" href="/branding/theme.css\?primary=%23([0-9a-f]{6})'
        r"&amp;accent=%23[0-9a-f]{6}" + re.escape(suffix) + '">',
        html,
    )
    assert match, "page has no brand colour"
    return "#" + match.group(1)


async def brand(world, slug, values=None, **kwargs):
    return await branding.update_branding(
        actor=SYSTEM,
        within_account_id=world.accounts[slug],
        account_id=world.accounts[slug],
        values=values or {},
        **kwargs,
    )


def form(token: str, **values: str) -> dict[str, str]:
    base = dict.fromkeys(branding.TEXT_FIELDS, "")
    return {"_csrf_token": token, **base, **values}


async def test_sub_account_pages_use_the_inherited_branding(client, world):
    await brand(
        world,
        "alpha",
        {"primary_color": "#0b5394", "product_name": "Alpha Connect"},
        logo=northwind_logo_png(),
    )
    await login(client, "sender@alpha-one.test")
    page = await client.get("/")
    # Browsers render the page only if it says it is HTML.
    assert page.headers["content-type"].startswith("text/html")
    assert primary_of(page.text) == "#0b5394"
    assert "Alpha Connect" in page.text
    effective = await branding.effective_branding(world.accounts["alpha"])
    assert f'src="/branding/logo/{effective.logo.digest}"' in page.text


async def test_branding_page_shows_each_field_and_where_it_comes_from(client, world):
    await brand(world, "alpha", {"primary_color": "#0b5394", "support_email": "help@alpha.test"})
    await brand(world, "alpha-one", {"primary_color": "#6a1b9a"})
    await login(client, world.users["Owner"])
    token = await csrf_token(client, "/")
    await client.post(
        "/switch-account",
        data={"_csrf_token": token, "account_id": str(world.accounts["alpha-one"])},
    )
    page = await client.get("/branding")
    assert page.status_code == 200
    assert '<span class="source" data-field="primary_color">set here</span>' in page.text
    assert (
        '<span class="source" data-field="support_email">inherited from Alpha Master</span>'
        in page.text
    )
    assert '<span class="source" data-field="product_name">built-in default</span>' in page.text
    assert 'value="primary_color" formaction="/branding/clear">Use inherited' in page.text
    assert 'placeholder="#0b5394 (inherited)"' in page.text


async def test_roles_without_branding_manage_get_403(client, world):
    await login(client, world.users["Sender"])
    assert (await client.get("/branding")).status_code == 403
    token = await csrf_token(client, "/")
    r = await client.post(
        "/branding", files={"product_name": (None, "X")}, data={"_csrf_token": token}
    )
    assert r.status_code == 403
    assert 'href="/branding"' not in (await client.get("/")).text


async def test_save_applies_to_the_header_at_once(client, world):
    token = await login(client, world.users["Admin"])
    r = await client.post(
        "/branding",
        data=form(token, product_name="Alpha Connect", primary_color="#6A1B9A"),
        files={"logo": ("logo.png", northwind_logo_png(), "image/png")},
        headers=HX,
    )
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/branding?saved=true"
    page = await client.get("/branding?saved=true")
    assert "Branding saved." in page.text
    assert primary_of(page.text) == "#6a1b9a" and "Alpha Connect" in page.text
    effective = await branding.effective_branding(world.accounts["alpha"])
    assert effective.logo is not None and effective["logo"].own


async def test_save_without_javascript_redirects(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/branding",
        data=form(token, accent_color="#137333"),
        files={"logo": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/branding?saved=true"
    assert (await branding.effective_branding(world.accounts["alpha"])).accent_color == "#137333"


async def test_invalid_colour_is_an_inline_422_and_nothing_is_stored(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/branding", data=form(token, product_name="Kept?", primary_color="bluish"), headers=HX
    )
    assert r.status_code == 422
    assert 'id="brand-primary_color-error"' in r.text and "#RRGGBB" in r.text
    assert "Nothing was saved" in r.text and "<html" not in r.text
    assert 'value="bluish"' in r.text  # what was typed stays in the form
    assert all(v is None for v in (await branding.own_settings(world.accounts["alpha"])).values())


async def test_refused_uploads_say_why_and_store_nothing(client, world):
    token = await login(client, world.users["Owner"])
    for name, content, message in (
        ("notes.png", b"this is a text file", "The file is not a PNG, JPEG or SVG image."),
        (
            "huge.png",
            b"\x89PNG\r\n\x1a\n" + bytes(300 * 1024),
            "The logo is 300 KB; the limit is 256 KB.",
        ),
        ("evil.svg", SCRIPT_SVG, "SVG logos may not contain scripts."),
    ):
        r = await client.post(
            "/branding",
            data=form(token, primary_color="#0b5394"),
            files={"logo": (name, content, "image/png")},
            headers=HX,
        )
        assert r.status_code == 422, name
        assert 'id="brand-logo-error"' in r.text and message in r.text
    assert all(v is None for v in (await branding.own_settings(world.accounts["alpha"])).values())


async def test_preview_renders_the_unsaved_look_and_stores_nothing(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/branding/preview",
        data=form(token, product_name="Preview Co", primary_color="#ffcc00"),
        files={"logo": ("l.png", northwind_logo_png(16), "image/png")},
        headers=HX,
    )
    assert r.status_code == 200 and "<html" not in r.text
    assert primary_of(r.text, "preview") == "#ffcc00" and "Preview Co" in r.text
    assert 'src="data:image/png;base64,' in r.text
    assert "WCAG AA" in r.text  # white on yellow is hard to read
    r = await client.post("/branding/preview", data=form(token, accent_color="nope"), headers=HX)
    assert "Accent colour: Enter a colour" in r.text
    assert all(v is None for v in (await branding.own_settings(world.accounts["alpha"])).values())


async def test_use_inherited_clears_the_override(client, world):
    await brand(world, "alpha", {"primary_color": "#0b5394"})
    await brand(world, "alpha-one", {"primary_color": "#6a1b9a"})
    await login(client, world.users["Owner"])
    token = await csrf_token(client, "/")
    await client.post(
        "/switch-account",
        data={"_csrf_token": token, "account_id": str(world.accounts["alpha-one"])},
    )
    r = await client.post(
        "/branding/clear",
        data={"_csrf_token": token, "field": "primary_color"},
        files={"logo": ("", b"")},
        headers=HX,
    )
    assert r.status_code == 204
    assert primary_of((await client.get("/")).text) == "#0b5394"


async def test_logo_is_public_cached_and_revalidated_by_etag(client, world):
    png = northwind_logo_png()
    effective = await brand(world, "alpha", logo=png)
    url = f"/branding/logo/{effective.logo.digest}"
    r = await client.get(url)  # no session: the sign-in page shows it
    assert r.status_code == 200 and r.content == png
    assert r.headers["content-type"] == "image/png"
    assert r.headers["etag"] == f'"{effective.logo.digest}"'
    assert "max-age" in r.headers["cache-control"]
    again = await client.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert (await client.get("/branding/logo/" + "0" * 64)).status_code == 404
    assert (await client.get("/branding/logo/../../etc")).status_code == 404


async def test_svg_logo_is_served_sanitised_with_a_locked_down_policy(client, world):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="urn:x" viewBox="0 0 10 10" x:y="1"><rect width="10" height="10"/></svg>'
    effective = await brand(world, "alpha", logo=svg)
    r = await client.get(f"/branding/logo/{effective.logo.digest}")
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in r.headers["content-security-policy"]
    assert b"urn:x" not in r.content and b"<rect" in r.content


async def test_sign_in_page_uses_the_login_host_branding(client, world):
    await brand(
        world,
        "alpha",
        {
            "product_name": "Alpha Connect",
            "primary_color": "#0b5394",
            "login_host": "portal.alpha.test",
            "support_phone": "+61 2 9000 0000",
        },
    )
    await brand(world, "platform", {"product_name": "Textly"})
    on_host = await client.get("/login", headers={"Host": "portal.alpha.test"})
    assert "Alpha Connect" in on_host.text and primary_of(on_host.text) == "#0b5394"
    assert "+61 2 9000 0000" in on_host.text
    elsewhere = await client.get("/login")
    assert "Textly" in elsewhere.text and "Alpha Connect" not in elsewhere.text


async def test_error_pages_keep_a_default_brand(client, world):
    await login(client, world.users["Owner"])
    r = await client.get("/no-such-page")
    assert r.status_code == 404
    assert (
        "SMS Portal" in r.text and primary_of(r.text) == branding.BUILT_IN_DEFAULTS["primary_color"]
    )


def shown_fields(html: str, name: str) -> dict[str, str]:
    """The colour picker of `name` and the hidden fields that say what the form showed."""
    found = {}
    for field in (f"{name}_picker", f"{name}_shown", f"{name}_picker_shown"):
        match = re.search(rf'name="{field}"\s+value="([^"]*)"', html)
        assert match, f"no {field} on the page"
        found[field] = match.group(1)
    return found


async def test_colour_picker_beside_the_hex_box_works_alone_without_javascript(client, world):
    await brand(world, "alpha", {"accent_color": "#0b5394"})
    token = await login(client, world.users["Owner"])
    page = await client.get("/branding")
    assert 'type="color" class="colour-picker" id="brand-primary_color-picker"' in page.text
    accent = shown_fields(page.text, "accent_color")
    primary = shown_fields(page.text, "primary_color")
    assert accent["accent_color_picker"] == "#0b5394" == accent["accent_color_picker_shown"]
    assert primary["primary_color_shown"] == ""  # inherited: the hex box is empty

    # Only the picker moved (no JavaScript to copy it into the box): the picker wins.
    data = form(token, accent_color="#0b5394", **primary, **accent)
    data["accent_color_picker"] = "#aa3300"
    r = await client.post("/branding", data=data, follow_redirects=False)
    assert r.status_code == 303
    effective = await branding.effective_branding(world.accounts["alpha"])
    assert effective.accent_color == "#aa3300"
    # Nothing moved for the inherited primary colour: it stays inherited, not copied here.
    assert not effective["primary_color"].own

    # The hex box was edited and the picker left as shown: the box wins.
    page = await client.get("/branding")
    accent = shown_fields(page.text, "accent_color")
    data = form(token, accent_color="#137333", **accent)
    r = await client.post("/branding", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert (await branding.effective_branding(world.accounts["alpha"])).accent_color == "#137333"
