"""In Chromium with the portal's Content-Security-Policy on: the main pages, signed in, load
and work (htmx swaps, the branding preview, the tree toggle) without one CSP violation; at
390 px wide and with JavaScript off the same pages fit the screen and their forms still
answer with the field's message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser

# Main pages of issue 14, with the user of the demo data who may open each.
PAGES = {
    "/": "owner@northwind.test",
    "/send": "owner@northwind.test",
    "/composer": "owner@northwind.test",
    "/contacts": "sender@sydney.test",
    "/credits": "owner@northwind.test",
    "/branding": "admin@melbourne.test",
    "/messages": "owner@northwind.test",
    "/inbox": "owner@northwind.test",
    "/templates": "owner@northwind.test",
    "/accounts": "owner@northwind.test",
}
# Runs before any page script: the page's own CSP cannot refuse it.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class CspWatch:
    """Violations reported by the page and CSP complaints in the console."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(WATCH_CSP)
        page.on("console", self._console)

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "CSP" in text):
            self.console.append(text)

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp || []")) + self.console


@pytest.fixture
def watched(page: Page) -> Iterator[tuple[Page, CspWatch]]:
    yield page, CspWatch(page)


def test_main_pages_load_and_work_without_a_csp_violation(watched):
    page, watch = watched
    signed_in_as = None
    seen: dict[str, list[str]] = {}
    for path, email in PAGES.items():
        if email != signed_in_as:
            page.context.clear_cookies()
            sign_in(page, email)
            signed_in_as = email
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        # The brand colours arrived through the theme stylesheet, not inline CSS.
        primary = page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--primary')"
        )
        assert primary.strip().startswith("#"), path
        if path == "/branding":
            page.fill("#brand-primary_color", "#137333")
            expect(page.locator("#preview-header")).to_have_css(
                "background-color", "rgb(19, 115, 51)"
            )
            expect(page.locator(".brand-source svg.swatch").first).to_be_visible()
        if path == "/accounts":
            toggle = page.locator('li[data-slug="melbourne"] button.toggle').first
            toggle.click()
            page.wait_for_selector('li[data-slug="melbourne-events"]')
            expect(toggle).to_have_attribute("aria-expanded", "true")
            toggle.click()
            expect(toggle).to_have_attribute("aria-expanded", "false")
            expect(page.locator('li[data-slug="melbourne-events"]')).to_be_hidden()
        if path == "/contacts":
            page.fill("#c-phone", "12")
            page.click("#create-contact-form button[type=submit]")
            expect(page.locator("#c-phone")).to_have_attribute("aria-invalid", "true")
        seen[path] = watch.violations()
    assert all(not v for v in seen.values()), seen
    # The watcher itself works: an image from another site, which the CSP refuses, is reported.
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<img src=\"https://example.invalid/x.png\">')"
    )
    # (wait_for_function would evaluate a string: the very thing the CSP forbids.)
    expect(page.locator("img[src^='https://example.invalid']")).to_be_attached()
    page.wait_for_timeout(200)
    assert any("img-src" in v for v in watch.violations()), watch.violations()


@pytest.fixture
def narrow_no_js(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 844},
        java_script_enabled=False,
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _fits(page: Page) -> bool:
    width = page.evaluate("document.documentElement.scrollWidth")
    return bool(width <= 390)


def test_at_390px_without_javascript_pages_fit_and_forms_name_the_field(narrow_no_js: Page):
    page = narrow_no_js
    page.goto("/login")
    page.fill("#email", "sender@sydney.test")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/")
    assert page.locator("head script").count() == 2  # present, but JavaScript is off
    for path in ("/", "/contacts", "/send", "/credits", "/templates", "/messages", "/inbox"):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert _fits(page), f"{path} is wider than the screen"

    page.goto("/contacts")
    page.fill("#c-phone", "12")
    page.fill("#c-first_name", "Zed")
    page.click("#create-contact-form button[type=submit]")
    expect(page.locator("#c-phone")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#c-first_name")).to_have_value("Zed")
    expect(page.locator("#c-phone-error")).to_be_visible()
    assert _fits(page)

    page.locator("#results a[href^='/contacts/']").first.click()
    page.fill("#e-phone", "12")
    page.click("#edit-contact-form button[type=submit]")
    expect(page.locator("#e-phone")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("h2", has_text="Consent")).to_be_visible()
    assert _fits(page)


def test_the_tree_opens_without_javascript(browser: Browser, live_server: LiveServer):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    page = context.new_page()
    try:
        page.goto("/login")
        page.fill("#email", "owner@northwind.test")
        page.fill("#password", DEMO_PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url("**/")
        page.goto("/accounts")
        page.locator('li[data-slug="melbourne"] a', has_text="Sub-accounts").first.click()
        expect(page.locator("text=Sub-accounts of Melbourne Branch")).to_be_visible()
        expect(page.locator('li[data-slug="melbourne-events"]')).to_be_visible()
        assert _fits(page)
    finally:
        context.close()
