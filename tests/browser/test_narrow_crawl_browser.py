"""Every page a person can reach by following the portal's own links fits a 390 px phone
screen, with JavaScript off and on, and answers without an error: a crawl from the
dashboard as the owner of the demo master (who sees every menu), as a branch sender after
a send and a reply (messages, campaigns, conversations) and as the operator (platform
pages). Pages that differ only by an id are walked once (the first link to
them); downloads, sign-out and the API are not pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, post_inbound, sign_in

pytestmark = pytest.mark.browser

WIDTH = 390
NOT_PAGES = ("/api/", "/hooks/", "/simulator/", "/static/", "/logout", "/sso/")
MOST_PAGES = 250
# What overflows the screen: elements past its right edge that no scrolling box holds
# (a wide table inside an overflow-x: auto wrapper scrolls by design).
OVERFLOWING = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right <= innerWidth + 1 || getComputedStyle(el).position === 'fixed') continue;
    let up = el.parentElement, held = false;
    while (up && !held) {
      held = ['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX);
      up = up.parentElement;
    }
    if (!held) out.push(`${el.tagName.toLowerCase()}.${el.className}#${el.id} ends at ${Math.round(box.right)}`);
  }
  return out.slice(0, 5);
}"""


def _shape(path: str) -> str:
    return re.sub(r"/\d+", "/{id}", urlsplit(path).path)


def _links(page: Page) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "a[href]:not([download])", "links => links.map(a => a.getAttribute('href'))"
    )
    return [
        href.split("#")[0]
        for href in hrefs
        if href.startswith("/")
        and not href.startswith(("//", *NOT_PAGES))
        and ".csv" not in href
        and "export" not in href
    ]


def crawl(page: Page) -> tuple[set[str], list[str]]:
    """Walk from the dashboard; returns the page shapes seen and what was wrong with them."""
    seen: set[str] = set()
    problems: list[str] = []
    queue = ["/"]
    while queue and len(seen) < MOST_PAGES:
        path = queue.pop(0)
        if (shape := _shape(path)) in seen:
            continue
        seen.add(shape)
        response = page.goto(path)
        assert response is not None, path
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        if response.status >= 400:
            problems.append(f"{path} answered {response.status}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            problems.append(f"{path} is {width} px wide: {page.evaluate(OVERFLOWING)}")
        queue.extend(_links(page))
    return seen, problems


def _phone(browser: Browser, live_server: LiveServer, scripts: bool) -> Page:
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": WIDTH, "height": 844},
        java_script_enabled=scripts,
    )
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture(params=[False, True], ids=["js-off", "js-on"])
def phone(
    request: pytest.FixtureRequest, browser: Browser, live_server: LiveServer
) -> Iterator[Page]:
    page = _phone(browser, live_server, request.param)
    yield page
    page.context.close()


@pytest.fixture
def phone_without_scripts(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    page = _phone(browser, live_server, False)
    yield page
    page.context.close()


def test_every_page_the_owner_reaches_fits_a_phone(phone: Page):
    sign_in(phone, "owner@northwind.test")
    seen, problems = crawl(phone)
    # The walk really went round the product (menus, lists and their detail pages).
    for shape in (
        "/contacts",
        "/messages",
        "/send",
        "/credits",
        "/accounts",
        "/users/{id}/permissions",
    ):
        assert shape in seen, f"{shape} not reached: {', '.join(sorted(seen))}"
    assert len(seen) >= 30, sorted(seen)
    assert not problems, problems


def test_every_page_a_branch_sender_reaches_fits_a_phone(phone: Page, live_server: LiveServer):
    sign_in(phone, "sender@sydney.test")
    phone.goto("/send")
    phone.fill("#numbers", "+61400007701, +61400007702")
    phone.check("input[name=mode][value=template]")
    phone.select_option("#template_id", index=1)
    phone.click("#send-form button[value=send]")  # a page with JS off, a swap with it on
    expect(phone.locator("#send-result")).to_contain_text("2 accepted")
    post_inbound(live_server, "+61400007701", "+61480000000", "Thanks, see you then")
    seen, problems = crawl(phone)
    for shape in ("/messages/{id}", "/inbox/{id}", "/contacts/{id}"):
        assert shape in seen, f"{shape} not reached: {', '.join(sorted(seen))}"
    assert not problems, problems


def test_every_platform_page_fits_a_phone(phone_without_scripts: Page):
    sign_in(phone_without_scripts, "operator@portal.test")
    seen, problems = crawl(phone_without_scripts)
    assert "/credits/prices" in seen, sorted(seen)
    assert not problems, problems
