"""In Chromium: the dashboard draws its server-side SVG charts for a master (with its
subtree rolled up by sub-account, counts only) and for a branch user; with JavaScript off
at 390 px the same charts and their table equivalents are there and fit the screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser

MASTER = "owner@northwind.test"
BRANCH = "sender@sydney.test"


def send(page: Page, numbers: str, body: str) -> None:
    page.goto("/send")
    page.fill("#numbers", numbers)
    page.fill("#body", body)
    page.click("#send-form button[value=send]")
    page.locator("#send-result").wait_for()


def drawn_bars(page: Page, chart: str) -> int:
    """Bars of the chart that the browser actually laid out with a visible size."""
    figure = page.locator(f"#{chart}")
    expect(figure.locator("svg")).to_be_visible()
    bars = figure.locator("svg rect")
    drawn = 0
    for i in range(bars.count()):
        box = bars.nth(i).bounding_box()
        if box and box["width"] > 0 and box["height"] > 0:
            drawn += 1
    return drawn


@pytest.fixture
def no_script_phone(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 844},
        java_script_enabled=False,
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_master_and_branch_dashboards_draw_the_charts(page: Page, browser: Browser):
    sign_in(page, MASTER)
    send(page, "+61400008801\n+61400008802", "Dashboard chart check")
    page.goto("/")
    assert drawn_bars(page, "activity-chart") >= 1
    subtree = page.locator("#subtree-usage")
    expect(subtree).to_be_visible()
    expect(subtree.locator("tr", has_text="Sydney Branch")).to_have_count(1)
    assert "+6140000880" not in subtree.inner_text()
    assert "Dashboard chart check" not in page.locator("main").inner_text()

    page.context.clear_cookies()
    sign_in(page, BRANCH)
    send(page, "+61400008803", "Branch chart check")
    page.goto("/")
    assert drawn_bars(page, "activity-chart") >= 1
    expect(page.locator("#subtree-usage")).to_have_count(0)


def test_without_javascript_at_390px_the_charts_have_their_tables(no_script_phone: Page):
    page = no_script_phone
    sign_in(page, MASTER)
    page.goto("/send")
    expect(page.locator("#send-form")).to_be_visible()
    page.fill("#numbers", "+61400008804")
    page.fill("#body", "No script chart check")
    page.click("#send-form button[value=send]")
    page.goto("/")
    assert drawn_bars(page, "activity-chart") >= 1
    box = page.locator("#activity-chart svg").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.click("#activity summary")  # <details> opens without any script
    table = page.locator("#activity-table")
    expect(table).to_be_visible()
    assert table.locator("tbody tr").count() >= 28  # a row per day of the period
    scroller = page.locator("#activity .table-scroll").bounding_box()
    assert scroller is not None and scroller["x"] + scroller["width"] <= 390, scroller
    expect(page.locator("#subtree-usage table")).to_be_visible()


def test_the_consent_report_fits_390px_without_javascript(no_script_phone: Page):
    page = no_script_phone
    sign_in(page, MASTER)
    page.goto("/reports/consent")
    page.select_option("#consent-bucket", "week")
    page.click("#consent-form button[type=submit]")  # a plain GET form
    page.wait_for_url("**/reports/consent?*bucket=week*")
    expect(page.locator("#consent-summary")).to_be_visible()
    for part in ("#consent-form", "#consent .table-scroll"):
        box = page.locator(part).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (part, box)
