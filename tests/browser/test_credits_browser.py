"""In Chromium: allocate and reclaim on the credits page; both balances change in place."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_allocate_and_reclaim_update_both_balances_without_reload(page):  # type: ignore[no-untyped-def]
    sign_in(page, "owner@northwind.test")
    page.goto("/credits")
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
    # expect() polls without evaluating a string, which the page's CSP would refuse.
    expect(page.locator("tr[data-slug=sydney] .credit-balance")).to_have_text("2,000")
    assert own.inner_text() == "10,000"
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
