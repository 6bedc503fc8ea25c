"""In Chromium: sign in, expand the tree, create a sub-account without a page reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_sign_in_expand_and_create_without_reload(page: Page):
    sign_in(page, "owner@northwind.test")
    assert page.locator("h1").inner_text() == "Northwind Messaging"

    page.goto("/accounts")
    page.evaluate("window.__noReload = true")
    melbourne = page.locator('li[data-slug="melbourne"]')
    assert page.locator('li[data-slug="melbourne-events"]').count() == 0
    melbourne.locator("button.toggle").first.click()
    page.wait_for_selector('li[data-slug="melbourne-events"]')

    page.fill("#acc-name", "")
    page.fill("#acc-slug", "Not A Slug")
    page.click("#create-account-form button[type=submit]")
    page.wait_for_selector("#acc-name-error")
    assert "Name is required" in page.locator("#acc-name-error").inner_text()

    page.fill("#acc-name", "Perth Branch")
    page.fill("#acc-slug", "perth")
    page.click("#create-account-form button[type=submit]")
    page.wait_for_selector("#create-account-form .alert.success")
    page.wait_for_selector('li[data-slug="perth"]')
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
