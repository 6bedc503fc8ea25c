"""In Chromium: a branch sender attaches an image to an MMS on the send page, sends it, and
sees the image (loaded through its signed URL) and the subject on the message page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests import media_samples as samples
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_image_attached_to_an_mms_shows_on_the_message_page(page: Page):
    sign_in(page, "sender@sydney.test")
    page.goto("/send")
    page.fill("#numbers", "+61412000111")
    page.fill("#body", "Our shop opens at 9")
    page.select_option("#channel", "mms")
    page.fill("#subject", "Opening")
    page.set_input_files(
        "#media_file",
        files=[{"name": "shop.png", "mimeType": "image/png", "buffer": samples.png(8, 8)}],
    )
    page.click("#send-form button[value=send]")
    expect(page.locator("#send-result")).to_contain_text("1 accepted")
    expect(page.locator("#send-result")).to_contain_text("3 credits reserved")
    page.click("#send-result a")
    page.wait_for_url(re.compile(r".*/messages\?batch_id=\d+"))
    hrefs = page.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    message = next(h for h in hrefs if h and re.fullmatch(r"/messages/\d+", h))
    page.goto(message)
    picture = page.locator("#message-media img")
    expect(picture).to_have_attribute("alt", "shop.png")
    expect(page.locator("#message-media")).to_contain_text("Subject: Opening")
    picture.wait_for()
    # Loaded, not broken: the signed URL served the PNG itself (8 px wide).
    for _ in range(50):
        if picture.evaluate("img => img.complete && img.naturalWidth") == 8:
            break
        page.wait_for_timeout(100)
    assert picture.evaluate("img => img.naturalWidth") == 8
