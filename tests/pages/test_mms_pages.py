"""The send page with JavaScript off: an MMS with an uploaded image (a plain multipart form
post), previewed (the file is kept and shown), then sent at the MMS price; the message page
and the inbox show the media; a file that is no image is refused naming `media`."""

from __future__ import annotations

import re

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.media.tables import MediaBlob, MediaItem
from tenants.messaging import inbound
from tenants.messaging.tables import Message
from tenants.numbers import numbers
from tests import media_samples as samples
from tests.conftest import login


def fields(csrf: str, **values: str) -> dict[str, str]:
    base = {
        "_csrf_token": csrf,
        "numbers": "+61400000001",
        "mode": "text",
        "body": "Our new menu",
        "channel": "mms",
        "subject": "Menu",
        "when": "now",
        "action": "preview",
    }
    return {**base, **values}


async def test_an_mms_with_an_upload_previews_sends_and_shows(client, world):
    await ledger.adjust(world.accounts["alpha"], 10, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    page = await client.get("/send")
    assert 'enctype="multipart/form-data"' in page.text and 'name="media_file"' in page.text
    upload = {"media_file": ("menu.png", samples.png(), "image/png")}
    preview = await client.post("/send", data=fields(csrf), files=upload)
    assert preview.status_code == 200, preview.text
    assert "total cost 3 credits" in preview.text
    assert 'id="attached-media"' in preview.text and "menu.png" in preview.text
    src = re.search(r'<img src="(/media/[^"]+)"', preview.text)
    assert src, preview.text
    assert (await client.get(src.group(1))).content == samples.png()
    media_id = re.search(r'name="media_id" value="(\d+)"', preview.text).group(1)
    assert await Message.count() == 0 and await ledger.balance(world.accounts["alpha"]) == 10
    sent = await client.post("/send", data={**fields(csrf, action="send"), "media_id": media_id})
    assert sent.status_code == 201, sent.text
    assert await ledger.balance(world.accounts["alpha"]) == 7
    assert await MediaItem.count() == 1  # the preview's copy is the one sent
    message_id = (await Message.select(Message.id).first())["id"]
    shown = await client.get(f"/messages/{message_id}")
    assert 'id="message-media"' in shown.text and "Subject:</strong> Menu" in shown.text
    assert re.search(r'<img src="/media/[^"]+" alt="menu.png"', shown.text)


async def test_a_file_that_is_no_image_is_refused_naming_media(client, world):
    await ledger.adjust(world.accounts["alpha"], 10, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    upload = {"media_file": ("photo.png", b"<script>alert(1)</script>", "image/png")}
    r = await client.post("/send", data=fields(csrf, action="send"), files=upload)
    assert r.status_code == 422
    assert 'id="media-error"' in r.text
    assert await Message.count() == 0 and await MediaBlob.count() == 0
    assert await ledger.balance(world.accounts["alpha"]) == 10
    missing = await client.post("/send", data=fields(csrf, action="send"))
    assert missing.status_code == 422 and "An MMS needs at least one" in missing.text


async def test_inbound_mms_media_shows_in_the_inbox(client, world):
    alpha = world.accounts["alpha"]
    await numbers.add_number(
        actor=SYSTEM, owner_account_id=alpha, number="+61480000055", kind="long_code"
    )
    await inbound.route_inbound(
        "mo-1", "+61400000009", "+61480000055", "photo", "mms",
        media_urls=("https://media.provider.example/abc.jpg",),
    )  # fmt: skip
    await login(client, world.users["Sender"])
    inbox = await client.get("/inbox")
    conversation = re.search(r'href="/inbox/(\d+)"', inbox.text).group(1)
    thread = await client.get(f"/inbox/{conversation}")
    assert 'href="https://media.provider.example/abc.jpg"' in thread.text
    message_id = (await Message.select(Message.id).where(Message.direction == "in").first())["id"]
    page = await client.get(f"/messages/{message_id}")
    assert "https://media.provider.example/abc.jpg" in page.text
