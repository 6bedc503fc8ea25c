"""In Chromium: allocate and reclaim on the credits page; both balances change in place."""

from __future__ import annotations

import pytest

from tests.browser.test_account_tree_browser import browser, demo_server  # noqa: F401

pytestmark = pytest.mark.browser


def _sign_in(page, base: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("#email", "owner@northwind.test")
    page.fill("#password", "demo-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_allocate_and_reclaim_update_both_balances_without_reload(demo_server, browser):  # noqa: F811
    page = browser.new_page()
    _sign_in(page, demo_server)
    page.goto(f"{demo_server}/credits")
    page.evaluate("window.__noReload = true")
    sydney = page.locator('tr[data-slug="sydney"]')
    own = page.locator(".stats .credit-balance").first
    assert own.inner_text() == "10,000"
    assert sydney.locator(".credit-balance").inner_text() == "2,000"

    sydney.locator('input[name="amount"]').fill("500")
    sydney.locator('button[value="allocate"]').click()
    sydney.locator(".transfer-msg .alert.success").wait_for()
    assert "Allocated 500 credits to Sydney Branch" in sydney.locator(".transfer-msg").inner_text()
    assert sydney.locator(".credit-balance").inner_text() == "2,500"
    assert own.inner_text() == "9,500"

    sydney.locator('input[name="amount"]').fill("999999")
    sydney.locator('button[value="allocate"]').click()
    sydney.locator(".transfer-msg .alert.error").wait_for()
    assert "not enough" in sydney.locator(".transfer-msg").inner_text()
    assert own.inner_text() == "9,500"

    sydney.locator('input[name="amount"]').fill("500")
    sydney.locator('button[value="reclaim"]').click()
    page.wait_for_function(
        "document.querySelector('tr[data-slug=sydney] .credit-balance').textContent === '2,000'"
    )
    assert own.inner_text() == "10,000"
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
    page.close()
