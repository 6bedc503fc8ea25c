"""In Chromium: sign in, expand the tree, create a sub-account without a page reload."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    """`portal demo` on a free port with its own SQLite file and in-process broker."""
    tmp = Path(tempfile.mkdtemp(prefix="portal-browser-"))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp}/demo.db",
        "BROKER_URL": "memory://",
        "DATA_DIR": str(tmp / "data"),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("demo server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield b
        b.close()


def test_sign_in_expand_and_create_without_reload(demo_server, browser):
    page = browser.new_page()
    page.goto(f"{demo_server}/login")
    page.fill("#email", "owner@northwind.test")
    page.fill("#password", "demo-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo_server}/")
    assert page.locator("h1").inner_text() == "Northwind Messaging"

    page.goto(f"{demo_server}/accounts")
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
    page.close()
