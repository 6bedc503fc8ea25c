"""Tracked links in Chromium, 390 px wide with JavaScript off: send a campaign with
"Track links", follow a short link, and read the click figures on the campaign and
message pages, which fit the screen."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"
LONG = "https://shop.example.com/campaigns/2026/a-very-long-path-for-the-summer-sale?utm_source=sms&utm_medium=text"


@pytest.fixture
def narrow_no_js(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= 390)


def test_a_tracked_campaign_shows_its_clicks_at_390px_without_javascript(narrow_no_js: Page):
    page = narrow_no_js
    page.goto("/login")
    page.fill("#email", "sender@sydney.test")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/send")
    page.fill("#numbers", "+61400000101\n+61400000102")
    page.fill("#body", f"Summer sale: {LONG}. Reply STOP to opt out")
    page.check("#body-track-links")
    page.fill("#campaign_name", "Tracked summer")
    page.click("button[value=send]")
    expect(page.locator("#send-result")).to_contain_text("2 accepted")
    assert _fits(page)
    page.locator("#send-result a", has_text="Follow the campaign").click()
    campaign_url = page.url
    expect(page.locator("#click-stats [data-stat=clicks]")).to_have_text("0")

    page.goto(page.locator("a", has_text="Messages of this campaign").get_attribute("href"))
    page.locator("#messages-table a[href^='/messages/']").first.click()
    body = page.locator(".message-body").inner_text()
    short = re.search(r"https?://\S+/l/[A-Za-z0-9]{12}", body).group(0)
    # As a phone would ask (the headless browser's own agent counts as a bot).
    answer = page.request.get(
        short.replace(short.split("/l/")[0], ""), max_redirects=0, headers={"User-Agent": IPHONE}
    )
    assert answer.status == 302 and answer.headers["location"] == LONG
    page.reload()
    expect(page.locator("#message-links [data-stat=link-clicks]")).to_have_text("1")
    assert _fits(page), "the message page is wider than the screen"

    page.goto(campaign_url)
    expect(page.locator("#click-stats [data-stat=clicks]")).to_have_text("1")
    expect(page.locator("#click-stats [data-stat=click-rate]")).to_have_text("50.0%")
    assert _fits(page), "the campaign page is wider than the screen"
