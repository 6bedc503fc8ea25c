"""In Chromium, as each demo role: every page its navigation offers (and a record page or
two) opens at 1280 px and at 390 px, nothing scrolls sideways at 390 px, the navigation and
sign-out are reachable on every page (behind "Menu" on a phone), and no page logs a console
error. Screenshots of every page at both widths go to build/screenshots/ (git-ignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.browser.conftest import REPO, LiveServer, sign_in

pytestmark = pytest.mark.browser

SHOTS = REPO / "build" / "screenshots"
ROLES = {
    "owner": "owner@northwind.test",
    "finance": "finance@northwind.test",
    "sender": "sender@sydney.test",
    "support": "support@sydney.test",
    "sales": "sales@sydney.test",
    "admin": "admin@melbourne.test",
    "operator": "operator@portal.test",
}
# Record pages worth a look besides the navigation, when the role's pages link to them.
RECORD_LINKS = {
    "/contacts": "#results a[href^='/contacts/']",
    "/templates": "main a[href^='/templates/']:not([href$='/new'])",
}
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """One context for the module: each role signs out and the next signs in, so the
    browser starts once and every journey reuses its cache."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(base_url=live_server.url, viewport=WIDE, device_scale_factor=1)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


class ConsoleErrors:
    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"{page.url}: {error}"))
        self.page = page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.seen.append(f"{self.page.url}: {message.text}")


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "dashboard"


def _journey(page: Page) -> list[str]:
    """The role's navigation targets, then the first record page each list links to."""
    links = page.locator("#nav-menu a[href]")
    paths = [str(links.nth(i).get_attribute("href")) for i in range(links.count())]
    assert paths, "the navigation offers no page"
    # The header's own pages, for every person signed in.
    paths.append("/me/accounts")
    for listing, selector in RECORD_LINKS.items():
        if listing in paths:
            page.goto(listing)
            record = page.locator(selector).first
            if record.count():
                paths.append(str(record.get_attribute("href")))
    return paths


def _open(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, (
        f"{path}: {response and response.status}"
    )
    page.wait_for_load_state("load")


def _sign_out_reachable(page: Page, width: int) -> None:
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_visible()
    box = sign_out.bounding_box()
    assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= width, page.url


def _fits(page: Page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_of_each_role_fits_and_keeps_navigation_and_sign_out(
    context: BrowserContext, role: str
) -> None:
    context.clear_cookies()
    page = context.new_page()
    errors = ConsoleErrors(page)
    try:
        page.set_viewport_size(WIDE)
        sign_in(page, ROLES[role])
        paths = _journey(page)
        for path in paths:
            _open(page, path)
            # Wide: the list shows without opening anything, the "Menu" summary is hidden.
            expect(page.locator("#nav-menu a[href]").first).to_be_visible()
            expect(page.locator("#nav-menu summary")).to_be_hidden()
            _sign_out_reachable(page, WIDE["width"])
            page.screenshot(path=SHOTS / f"{role}-{_slug(path)}-1280.png", full_page=True)

        page.set_viewport_size(NARROW)
        too_wide: dict[str, tuple[int, int]] = {}
        for path in paths:
            _open(page, path)
            scroll_width, inner_width = _fits(page)
            if scroll_width > inner_width:
                too_wide[path] = (scroll_width, inner_width)
            # Narrow: the list folds behind "Menu" and one tap shows it.
            menu = page.locator("#nav-menu")
            expect(menu.locator("a[href]").first).to_be_hidden()
            menu.locator("summary").click()
            expect(menu.locator("a[href]").first).to_be_visible()
            _sign_out_reachable(page, NARROW["width"])
            page.screenshot(path=SHOTS / f"{role}-{_slug(path)}-390.png", full_page=True)
        assert not too_wide, f"{role}: pages scroll sideways at 390 px: {too_wide}"
        assert not errors.seen, errors.seen
        # Sign-out itself works from the phone layout.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login**")
    finally:
        page.close()


def test_the_phone_navigation_opens_without_javascript(
    browser: Browser, live_server: LiveServer
) -> None:
    ctx = browser.new_context(base_url=live_server.url, viewport=NARROW, java_script_enabled=False)
    page = ctx.new_page()
    try:
        sign_in(page, ROLES["sender"])
        menu = page.locator("#nav-menu")
        expect(menu.locator("a[href='/contacts']")).to_be_hidden()
        menu.locator("summary").click()
        menu.locator("a[href='/contacts']").click()
        page.wait_for_url("**/contacts")
        expect(page.locator("h1")).to_have_text("Contacts")
    finally:
        ctx.close()
