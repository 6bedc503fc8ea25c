"""In Chromium: bulk actions on the contacts list swap the list in place (htmx), and a
delete asks first; the contacts made here are deleted again by the test itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def _add(page: Page, phone: str, first: str) -> None:
    page.fill("#c-phone", phone)
    page.fill("#c-first_name", first)
    page.click("#create-contact-form button[type=submit]")
    expect(page.locator("#create-contact-form .alert.success")).to_contain_text(phone)


def test_tick_rows_tag_them_then_delete_all_matching(page: Page) -> None:
    sign_in(page, "sender@sydney.test")
    page.goto("/contacts")
    _add(page, "+61412999001", "Bulkbrowser")
    _add(page, "+61412999002", "Bulkbrowser")
    page.fill("#q", "Bulkbrowser")
    rows = page.locator("#results input[name=ids]")
    # The search swaps the list in after a pause: wait for exactly its two rows (the
    # unfiltered list's "12 contacts" would also contain "2 contacts").
    expect(rows).to_have_count(2)
    expect(page.locator("#results")).to_contain_text("2 contacts")
    url = page.url

    rows.nth(0).check()
    rows.nth(1).check()
    page.select_option("#bulk-action", "tag")
    page.fill("#bulk-tag", "walk-in")
    page.click("#bulk-form button[type=submit]")
    expect(page.locator("#bulk-notice")).to_have_text("2 contacts tagged.")
    expect(page.locator("#results .badge", has_text="walk-in")).to_have_count(2)
    assert page.url == url  # swapped in place, no navigation

    page.check("#bulk-all")
    page.select_option("#bulk-action", "delete")
    page.click("#bulk-form button[type=submit]")
    expect(page.locator("#bulk-confirm")).to_contain_text("Delete 2 contacts?")
    page.click("#bulk-confirm button[type=submit]")
    expect(page.locator("#bulk-notice")).to_have_text("2 contacts deleted.")
    expect(page.locator("#results")).to_contain_text("0 contacts")
