"""Branding in a real browser: the dashboard of a Sydney and a Melbourne user (demo data)
is drawn in their effective colours, and the live preview follows typing without saving."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tenants.demo import DEMO_BRANDING
from tests.browser.conftest import LiveServer, css_rgb, png_pixel, sign_in

NORTHWIND = DEMO_BRANDING["northwind"]["primary_color"]
MELBOURNE = DEMO_BRANDING["melbourne"]["primary_color"]

pytestmark = pytest.mark.browser


def header_colour(page: Page) -> str:
    return page.eval_on_selector("header.topbar", "el => getComputedStyle(el).backgroundColor")


def logo_src(page: Page) -> str | None:
    logo = page.locator("header.topbar img.logo")
    if logo.count() == 0:
        return None
    # The image really arrived and decoded, not only the tag.
    expect(logo).to_have_js_property("complete", True)
    assert logo.evaluate("img => img.naturalWidth") > 0
    return logo.get_attribute("src")


def screenshot_header_pixel(page: Page, path: Path) -> tuple[int, int, int]:
    """Screenshot the dashboard and read a pixel of the header's plain background."""
    shot = page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 1000
    box = page.locator("header.topbar").bounding_box()
    assert box is not None
    # Right of the account switcher, left of the signed-in email: only background there.
    return png_pixel(shot, int(box["x"] + box["width"] * 0.55), int(box["y"] + 4))


def test_sydney_and_melbourne_dashboards_use_their_effective_colours(page: Page, tmp_path: Path):
    sign_in(page, "sender@sydney.test")
    expect(page.locator("h1")).to_have_text("Sydney Branch")
    assert header_colour(page) == css_rgb(NORTHWIND)
    assert css_rgb(NORTHWIND) == "rgb({}, {}, {})".format(
        *screenshot_header_pixel(page, tmp_path / "dashboard-sydney.png")
    )
    northwind_logo = logo_src(page)
    assert northwind_logo and northwind_logo.startswith("/branding/logo/")
    expect(page.locator("header .brand-name")).to_have_text("Northwind Connect")

    page.context.clear_cookies()
    sign_in(page, "admin@melbourne.test")
    expect(page.locator("h1")).to_have_text("Melbourne Branch")
    assert header_colour(page) == css_rgb(MELBOURNE)
    assert css_rgb(MELBOURNE) == "rgb({}, {}, {})".format(
        *screenshot_header_pixel(page, tmp_path / "dashboard-melbourne.png")
    )

    page.context.clear_cookies()
    sign_in(page, "events@melbourne.test")
    expect(page.locator("h1")).to_have_text("Melbourne Events")
    assert header_colour(page) == css_rgb(MELBOURNE)
    assert logo_src(page) == northwind_logo  # Melbourne overrides the colour only


def test_sign_in_page_follows_the_login_host(page: Page, live_server: LiveServer):
    page.goto("/login")
    expect(page.locator("h1")).to_have_text("SMS Portal")
    page.goto(f"http://northwind.localhost:{live_server.port}/login")
    expect(page.locator("h1")).to_have_text("Northwind Connect")
    expect(page.locator(".login-card img.login-logo")).to_be_visible()
    colour = page.eval_on_selector(
        "#login-form button.primary", "b => getComputedStyle(b).backgroundColor"
    )
    assert colour == css_rgb(NORTHWIND)


def test_live_preview_follows_typing_and_a_script_svg_is_refused(page: Page, tmp_path: Path):
    sign_in(page, "admin@melbourne.test")
    page.goto("/branding")
    page.fill("#brand-primary_color", "#137333")
    preview = page.locator("#preview-header")
    expect(preview).to_have_css("background-color", css_rgb("#137333"))
    page.fill("#brand-product_name", "Melbourne Live")
    expect(preview).to_contain_text("Melbourne Live")
    assert header_colour(page) == css_rgb(MELBOURNE)  # nothing saved yet

    evil = tmp_path / "evil.svg"
    evil.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    page.set_input_files("#brand-logo", str(evil))
    page.click("#branding-form button.primary")
    expect(page.locator("#brand-logo-error")).to_have_text("SVG logos may not contain scripts.")
    page.reload()
    assert header_colour(page) == css_rgb(MELBOURNE)
    expect(page.locator("#brand-product_name")).to_have_value("")
