"""The media store: type read from the bytes (never the name), each file stored once by
hash and owned per account, signed URLs that expire and break when touched, and the MMS
rules of a send (media required, per-provider limits, the MMS price) before any reserve."""

from __future__ import annotations

import time

import pytest

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.errors import ValidationFailed
from tenants.media import store
from tenants.media.limits import LIMITS, Candidate, media_problem
from tenants.media.tables import BatchMedia, MediaBlob, MediaItem
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.tables import Batch, Message
from tests import media_samples as samples


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.png(), "image/png"),
        (samples.JPEG, "image/jpeg"),
        (samples.GIF, "image/gif"),
        (samples.PDF, "application/pdf"),
        (samples.MP4, "video/mp4"),
        (samples.THREE_GP, "video/3gpp"),
        (samples.VCARD, "text/vcard"),
        (samples.QUICKTIME, None),
        (b"<html><script>alert(1)</script>", None),
        (b"MZ\x90\x00 an executable", None),
    ],
)
def test_the_type_comes_from_the_bytes(data, expected):
    assert store.sniff_type(data) == expected


def test_a_file_named_like_an_image_is_refused_by_its_bytes():
    with pytest.raises(ValidationFailed) as refused:
        store.read_file(b"<svg onload=alert(1)>", "cat.png")
    assert "media" in refused.value.errors
    assert store.read_file(samples.GIF, "no-extension").content_type == "image/gif"


async def test_a_file_is_stored_once_and_owned_per_account(world):
    alpha, beta = world.accounts["alpha"], world.accounts["beta"]
    picture = store.read_file(samples.png(), "a.png")
    first = await store.store_media(alpha, picture)
    again = await store.store_media(alpha, store.read_file(samples.png(), "b.png"))
    theirs = await store.store_media(beta, picture)
    assert first.id == again.id and theirs.id != first.id
    assert (first.content_type, first.size) == ("image/png", len(samples.png()))
    assert await MediaBlob.count() == 1 and await MediaItem.count() == 2
    # another account's media is not found by id
    with pytest.raises(ValidationFailed) as refused:
        await store.owned_media(alpha, [theirs.id])
    assert "media" in refused.value.errors


async def test_signed_urls_expire_and_refuse_tampering(world, settings_env):
    settings_env(PORTAL_BASE_URL="https://portal.example")
    item = await store.store_media(world.accounts["alpha"], store.read_file(samples.GIF))
    url = item.url()
    assert url.startswith("https://portal.example/media/") and "/data" not in url
    token = url.rsplit("/", 1)[1]
    assert store.verify_token(token) == item.id
    media_id, expires, signature = token.split(".")
    assert store.verify_token(f"{int(media_id) + 1}.{expires}.{signature}") is None
    assert store.verify_token(f"{media_id}.{int(expires) + 60}.{signature}") is None
    assert store.verify_token(f"{media_id}.{expires}.{signature[:-2]}AA") is None
    assert store.verify_token("nonsense") is None
    expired = store.media_token(item.id, ttl=-1)
    assert store.verify_token(expired) is None
    assert int(expires) > time.time()


def test_provider_limits():
    twilio, sinch = LIMITS["twilio"], LIMITS["sinch_sms"]
    assert media_problem(twilio, [Candidate("image/png", 1000)] * 10) is None
    assert "at most 10" in (media_problem(twilio, [Candidate("image/png", 10)] * 11) or "")
    assert "5.0 MB in all" in (media_problem(twilio, [Candidate("image/png", 3_000_000)] * 2) or "")
    assert "at most 1" in (media_problem(sinch, [Candidate("image/png", 10)] * 2) or "")
    mm = LIMITS["messagemedia"]
    assert "MessageMedia takes" in (media_problem(mm, [Candidate("application/pdf", 10)]) or "")


async def _balance(account_id: int) -> int:
    return await ledger.balance(account_id)


async def test_an_mms_is_priced_as_mms_and_keeps_its_media(world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["+61400000001", "+61400000002"],
            body="Look!",
            channel="mms",
            subject="Our new shop",
            new_media=[store.read_file(samples.png(), "shop.png")],
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    assert result.total_cost == 6  # the MMS price (3) per message, not per segment
    assert await _balance(account) == 94
    attached = await store.media_of_batches([result.batch_id])
    (media,) = attached[result.batch_id].media
    assert attached[result.batch_id].subject == "Our new shop"
    assert media.content_type == "image/png" and media.account_id == account


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"channel": "mms"}, "media"),
        ({"channel": "mms", "media_ids": [999_999]}, "media"),
        ({"channel": "sms", "new_media": "png"}, "media"),
        ({"channel": "mms", "new_media": "png", "subject": "x" * 65}, "subject"),
        ({"channel": "mms", "new_media": "png11"}, "media"),
    ],
)
async def test_a_refused_mms_changes_nothing(world, extra, field):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    files = {
        "png": [store.read_file(samples.png())],
        "png11": [store.read_file(samples.png(shade=i)) for i in range(11)],
    }
    if "new_media" in extra:
        extra = {**extra, "new_media": files[extra["new_media"]]}
    with pytest.raises(ValidationFailed) as refused:
        await sending.accept_send(
            SendRequest(
                account_id=account, numbers=["+61400000001"], body="Hi",
                permissions=PLATFORM_SEND, **extra,
            ),
            actor=SYSTEM,
        )  # fmt: skip
    assert field in refused.value.errors
    assert await _balance(account) == 100
    assert await Batch.count() == 0 and await Message.count() == 0
    assert await BatchMedia.count() == 0 and await MediaBlob.count() == 0
