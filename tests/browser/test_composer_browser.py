"""In Chromium: the template editor's composer counts as the user types, offers the
GSM-7 look-alike in one click, and shows the exact count for sample values."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def _stat(page: Page, name: str, kind: str = "stat") -> str:
    return page.locator(f'[data-{kind}="{name}"]').inner_text().split()[0]


def test_live_counter_replacement_and_sample(page: Page):
    sign_in(page, "owner@northwind.test")
    page.goto("/templates/new")

    page.locator("#tpl-body").press_sequentially("See you at 10")
    # expect() polls without evaluating a string, which the page's CSP would refuse.
    expect(page.locator("[data-stat=characters]")).to_have_text("13")
    assert _stat(page, "encoding") == "GSM-7" and _stat(page, "remaining") == "147"

    page.locator("#tpl-body").press_sequentially(" – it’s booked")
    page.wait_for_selector(".composer-ucs2")
    assert _stat(page, "encoding") == "UCS-2"
    assert page.locator("mark.ucs2").first.inner_text() == "–"
    page.click("text=Replace every look-alike")
    expect(page.locator(".composer-ucs2")).to_have_count(0)
    assert page.input_value("#tpl-body") == "See you at 10 - it's booked"
    assert _stat(page, "encoding") == "GSM-7"

    page.locator("#tpl-body").press("Control+End")
    page.locator("#tpl-body").press_sequentially(", {{first_name|there}}")
    page.wait_for_selector("#tpl-body-sample-first_name")
    sample = page.locator("#tpl-body-sample-first_name")
    sample.fill("")
    sample.press_sequentially("Zoë")
    expect(page.locator("[data-sample=text]")).to_have_text(re.compile(r"Zoë$"))
    assert _stat(page, "encoding", "sample") == "UCS-2"
    # The swap kept the cursor where the user was typing.
    assert page.evaluate("document.activeElement.id") == "tpl-body-sample-first_name"

    page.fill("#tpl-name", "Booking confirmation")
    page.click("#template-editor button[type=submit]")
    page.wait_for_selector("#pending-version")
    assert "See you at 10 - it's booked, {{first_name|there}}" in page.inner_text(
        "#pending-version"
    )


def test_support_in_the_branch_sees_the_shared_template_read_only(page: Page):
    sign_in(page, "support@sydney.test")
    page.goto("/templates")
    page.click("text=Appointment reminder")
    page.wait_for_selector("#approved-version")
    assert "only Northwind Messaging can change it" in page.inner_text("#template-detail")
    assert page.locator("#template-editor").count() == 0
