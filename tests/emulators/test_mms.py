"""MMS through each real provider's emulator: the send is accepted with its media (charged
at the account's MMS price), the outbox hands the provider the request it publishes for MMS
(Twilio: repeated MediaUrl; MessageMedia: format MMS with media and subject; Sinch SMS:
mt_media with body {url, message}), and each URL serves the file by its signed token. What a
provider would refuse is refused before anything is reserved."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks import gateways
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.errors import ValidationFailed
from tenants.media import store
from tenants.media.tables import BatchMedia, MediaBlob
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.outbox import submit_chunk
from tenants.messaging.tables import Batch, Message
from tenants.numbers import numbers
from tenants.providers import integrations as providers
from tests import media_samples as samples
from tests.emulators.conftest import (
    MM_KEY,
    MM_SECRET,
    SINCH_PLAN,
    SINCH_TOKEN,
    TWILIO_SID,
    TWILIO_TOKEN,
)

NUMBER = "+61480000055"
PHONE = "+61400000001"
VALUES = {
    "twilio": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
    "sinch_sms": {"service_plan_id": SINCH_PLAN, "api_token": SINCH_TOKEN, "region": "eu"},
    "messagemedia": {"api_key": MM_KEY, "api_secret": MM_SECRET},
}


async def mms_through(kind: str, world: Any) -> int:
    """Alpha's MMS go through a platform integration of `kind`; returns alpha's id."""
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind=kind,
        name=f"Platform {kind}",
        values=VALUES[kind],
    )
    await providers.set_channel_default(
        SYSTEM,
        account_id=world.accounts["platform"],
        channel="mms",
        choice=str(created.integration.id),
    )
    alpha = world.accounts["alpha"]
    await ledger.adjust(alpha, 100, reason="test credits", actor=SYSTEM)
    await numbers.add_number(actor=SYSTEM, owner_account_id=alpha, number=NUMBER, kind="long_code")
    return alpha


async def send_mms(alpha: int, files: list[bytes], subject: str = "") -> sending.SendResult:
    return await sending.accept_send(
        SendRequest(
            account_id=alpha,
            numbers=[PHONE],
            body="See you there",
            sender=NUMBER,
            channel="mms",
            subject=subject,
            new_media=[store.read_file(f) for f in files],
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


@pytest.fixture
def emulators(twilio_emu, sinch_sms_emu, messagemedia_emu):
    chosen = {"twilio": twilio_emu, "sinch_sms": sinch_sms_emu, "messagemedia": messagemedia_emu}

    def use(kind: str) -> Any:
        gateways.use_provider_transport(chosen[kind].transport())
        return chosen[kind]

    yield use
    gateways.reset()


def sent_media(kind: str, emu: Any) -> tuple[list[str], str, str]:
    """(media URLs, text, subject) of the one request the emulator accepted."""
    if kind == "twilio":
        (message,) = emu.accepted
        form = message.form
        assert "Subject" not in form
        return form["MediaUrl"], form["Body"][0], ""
    if kind == "messagemedia":
        (message,) = emu.accepted
        item = message.item
        assert item["format"] == "MMS"
        return item["media"], item["content"], item.get("subject", "")
    (batch,) = emu.accepted
    assert batch.payload["type"] == "mt_media"
    return [batch.payload["body"]["url"]], batch.payload["body"]["message"], ""


@pytest.mark.parametrize("kind", ["twilio", "messagemedia", "sinch_sms"])
async def test_an_mms_goes_out_in_the_providers_shape(kind, world, emulators, settings_env):
    settings_env(PORTAL_BASE_URL="https://portal.example")
    emu = emulators(kind)
    alpha = await mms_through(kind, world)
    files = [samples.png()] if kind == "sinch_sms" else [samples.png(), samples.GIF]
    subject = "" if kind == "sinch_sms" else "Opening night"
    result = await send_mms(alpha, files, subject)
    assert result.total_cost == 3 and await ledger.balance(alpha) == 97
    outcome = await submit_chunk(result.chunks[0], gateways.gateway_for)
    assert outcome.sent == 1, outcome
    assert emu.violations == []
    urls, text, sent_subject = sent_media(kind, emu)
    assert text == "See you there"
    assert sent_subject == ("" if kind in ("sinch_sms", "twilio") else "Opening night")
    assert len(urls) == len(files)
    for url, data in zip(urls, files, strict=True):
        assert url.startswith("https://portal.example/media/")
        content = await store.media_content(store.verify_token(token_of(url)) or 0)
        assert content is not None and content[1] == data
    row = await Message.select(Message.status, Message.cost).first()
    assert row == {"status": "sent", "cost": 3}


@pytest.mark.parametrize(
    ("kind", "files", "word"),
    [
        ("twilio", [samples.png(shade=i) for i in range(10)] + [samples.GIF], "10"),
        ("sinch_sms", [samples.png(), samples.GIF], "at most 1"),
        ("messagemedia", [samples.PDF], "MessageMedia takes"),
    ],
)
async def test_media_the_provider_would_refuse_is_refused_before_the_reserve(
    kind, files, word, world, emulators
):
    emu = emulators(kind)
    alpha = await mms_through(kind, world)
    with pytest.raises(ValidationFailed) as refused:
        await send_mms(alpha, files)
    assert word in refused.value.errors["media"]
    assert await ledger.balance(alpha) == 100
    assert await Batch.count() == 0 and await BatchMedia.count() == 0
    assert await MediaBlob.count() == 0 and emu.accepted == []


async def test_twilio_sends_one_mediaurl_parameter_per_file(world, emulators):
    emu = emulators("twilio")
    alpha = await mms_through("twilio", world)
    result = await send_mms(alpha, [samples.png(), samples.GIF, samples.PDF])
    await submit_chunk(result.chunks[0], gateways.gateway_for)
    (request,) = [r for r in emu.requests if r.method == "POST"]
    form = parse_qs(request.body.decode())
    # The wire form repeats the parameter: MediaUrl=...&MediaUrl=...&MediaUrl=...
    assert request.body.decode().count("MediaUrl=") == 3 and len(set(form["MediaUrl"])) == 3
