"""In Chromium: with a slowed simulator, a sent message's row on the messages log goes
enqueued → sent → delivered without a reload, the polling stops once all are final, and
failed and delivered badges differ in colour and in words."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tasks.gateways.simulator import SECRET_HEADER
from tenants.settings import get_settings
from tests.browser.conftest import LiveServer, css_rgb, sign_in

pytestmark = pytest.mark.browser

PHONE = "+61400007777"
FAILING = "+61400007778"


def _simulator(server: LiveServer, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{server.url}/simulator{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={
            SECRET_HEADER: get_settings().simulator.secret,
            "content-type": "application/json",
        },
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def slow_simulator(live_server: LiveServer) -> Iterator[None]:
    """A provider that answers in 3 s and reports sent 6 s later, delivered 3 s after that
    (no duplicates, no shuffling); the server's own configuration comes back afterwards."""
    before = _simulator(live_server, "/config")
    _simulator(
        live_server,
        "/config",
        {
            "latency_ms": 3000,
            "callback_delay_ms": 6000,
            "duplicate_rate": 0,
            "reorder_rate": 0,
            "outcomes": {**before["outcomes"], PHONE: "delivered", FAILING: "failed"},
        },
    )
    try:
        yield
    finally:
        _simulator(live_server, "/config", before)


def test_the_log_row_moves_to_delivered_without_a_reload(page: Page, slow_simulator: None):
    sign_in(page, "owner@northwind.test")
    page.goto("/send")
    page.fill("#numbers", f"{PHONE}\n{FAILING}")
    page.fill("#body", "Live status check")
    page.click("#send-form button[value=send]")
    page.locator("#send-result").wait_for()
    page.click("#send-result a")
    page.wait_for_url("**/messages?batch_id=*")
    page.evaluate("window.__noReload = true")
    badge = page.locator(f'#message-rows tr:has(td:text-is("{PHONE}")) .badge')
    failed = page.locator(f'#message-rows tr:has(td:text-is("{FAILING}")) .badge')
    seen: list[str] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and (not seen or seen[-1] != "delivered"):
        status = badge.inner_text()
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.2)
    assert seen == ["enqueued", "sent", "delivered"], seen
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
    # Everything shown is final: the answer came without the trigger, so polling stopped.
    expect(failed).to_have_text("failed")
    expect(page.locator("#results")).not_to_have_attribute("data-live", "polling")
    assert "status-delivered" in (badge.get_attribute("class") or "")
    # Failed and delivered look different, and each says what it is in words.
    colours = [b.evaluate("e => getComputedStyle(e).backgroundColor") for b in (badge, failed)]
    assert colours == [css_rgb("#e3f4e5"), css_rgb("#fde2e1")], colours
