"""In Chromium: the send page's composer counts characters against WhatsApp's limit once
WhatsApp is chosen (and while typing after that), and the WhatsApp templates page and the
send page fit 390 px with JavaScript off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DEMO_PASSWORD, LiveServer, sign_in

pytestmark = pytest.mark.browser


def test_the_send_composer_counts_per_channel(page: Page):
    sign_in(page, "sender@sydney.test")
    page.goto("/send")
    page.locator("#body").press_sequentially("Hello")
    expect(page.locator("[data-stat=segments]")).to_have_text("1")
    page.select_option("#channel", "whatsapp")
    expect(page.locator("[data-stat=characters]")).to_have_text("5 of 4,096")
    page.locator("#body").press_sequentially(" there")
    expect(page.locator("[data-stat=characters]")).to_have_text("11 of 4,096")
    page.select_option("#channel", "sms")
    expect(page.locator("[data-stat=characters]")).to_have_text("11")


@pytest.fixture
def narrow_no_js(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_whatsapp_pages_fit_390px_without_javascript(narrow_no_js: Page):
    page = narrow_no_js
    page.goto("/login")
    page.fill("#email", "owner@northwind.test")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/")
    for path in ("/whatsapp/templates", "/send"):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
