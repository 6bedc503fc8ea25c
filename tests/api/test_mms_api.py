"""POST /api/v1/messages with `media` (public https URLs, fetched server side under limits)
and `subject`: the MMS is charged at the MMS price, its files are served by signed URLs
(no session, right type, nosniff; a bad or expired token is a 404), and every refusal is a
422 naming the field with nothing charged or stored."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tasks import media_fetch
from tenants.credits import ledger
from tenants.media import store
from tenants.media.tables import MediaBlob
from tenants.messaging.tables import Batch
from tests import media_samples as samples
from tests.factories import fund

PUBLIC = {"cdn.example": ["93.184.216.34"], "inside.example": ["10.0.0.7"]}
FILES = {
    "/cat.png": (200, samples.png()),
    "/cat.gif": (200, samples.GIF),
    "/page.png": (200, b"<html><script>alert(1)</script></html>"),
    "/huge.png": (200, samples.png() + b"\x00" * 6_000_000),
    "/moved.png": (302, b""),
}


def serve(request: httpx.Request) -> httpx.Response:
    status, content = FILES.get(request.url.path, (404, b""))
    if status == 302:
        return httpx.Response(302, headers={"location": "https://inside.example/cat.png"})
    # The header claims an image whatever the bytes are: the portal reads the bytes.
    return httpx.Response(status, content=content, headers={"content-type": "image/png"})


async def resolve(host: str, port: int) -> list[str]:
    if host not in PUBLIC:
        raise OSError("no such host")
    return PUBLIC[host]


@pytest.fixture(autouse=True)
def _fetching():
    media_fetch.use_transport(httpx.MockTransport(serve), resolve)
    yield
    media_fetch.use_transport(None)


def mms(**extra):
    return {"to": ["+61400000001"], "body": "Look", "channel": "mms", **extra}


async def test_an_mms_with_media_urls_is_sent_charged_and_served(client, world, make_key):
    await fund(world.accounts["alpha"], 10)
    headers = await make_key("alpha", "Owner")
    media = ["https://cdn.example/cat.png", "https://cdn.example/cat.gif"]
    r = await client.post(
        "/api/v1/messages", json=mms(media=media, subject="Cats"), headers=headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["total_cost"] == 3
    assert await ledger.balance(world.accounts["alpha"]) == 7
    message_id = r.json()["accepted"][0]["message_id"]
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=headers)).json()
    assert detail["subject"] == "Cats"
    assert [m["content_type"] for m in detail["media"]] == ["image/png", "image/gif"]
    path = urlsplit(detail["media"][0]["url"]).path
    served = await client.get(path)  # no session, no key: the token is the permission
    assert served.status_code == 200 and served.content == samples.png()
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    media_id, expires, signature = path.rsplit("/", 1)[1].split(".")
    for bad in (
        f"{int(media_id) + 1}.{expires}.{signature}",
        f"{media_id}.{int(expires) + 1}.{signature}",
        store.media_token(int(media_id), ttl=-5),
        "../../etc/passwd",
    ):
        answer = await client.get(f"/media/{bad}")
        assert answer.status_code == 404, bad
        assert samples.png() not in answer.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (mms(), "media"),
        (mms(media=["http://cdn.example/cat.png"]), "media"),
        (mms(media=["https://inside.example/cat.png"]), "media"),
        (mms(media=["https://nowhere.example/cat.png"]), "media"),
        (mms(media=["https://cdn.example/moved.png"]), "media"),
        (mms(media=["https://cdn.example/page.png"]), "media"),
        (mms(media=["https://cdn.example/huge.png"]), "media"),
        (mms(media=["https://cdn.example/missing.png"]), "media"),
        ({**mms(media=["https://cdn.example/cat.png"]), "channel": "sms"}, "media"),
        (mms(media=["https://cdn.example/cat.png"], subject="s" * 65), "subject"),
        (mms(media=["https://cdn.example/cat.png"] * 11), "media"),
    ],
)
async def test_refused_media_is_a_422_naming_the_field_and_changes_nothing(
    client, world, make_key, body, field
):
    await fund(world.accounts["alpha"], 10)
    headers = await make_key("alpha", "Owner")
    r = await client.post("/api/v1/messages", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert await ledger.balance(world.accounts["alpha"]) == 10
    assert await Batch.count() == 0 and await MediaBlob.count() == 0
