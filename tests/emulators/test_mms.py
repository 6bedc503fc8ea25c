"""MMS through each real provider's emulator: the send is accepted with its media (charged
at the account's MMS price), the outbox hands the provider the request it publishes for MMS
(Twilio: repeated MediaUrl; MessageMedia: format MMS with media and subject; Sinch SMS:
mt_media with body {url, message}), and each URL serves the file by its signed token. What a
provider would refuse is refused before anything is reserved."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tasks import gateways, media_fetch
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.errors import ValidationFailed
from tenants.media import store
from tenants.media.tables import BatchMedia, InboundMedia, MediaBlob
from tenants.media.views import media_of_messages
from tenants.messaging import accept as sending
from tenants.messaging import inbound
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.outbox import submit_chunk
from tenants.messaging.tables import Batch, Message
from tenants.numbers import numbers
from tenants.providers import integrations as providers
from tenants.providers.tables import ProviderIntegration
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


@pytest.mark.parametrize("kind", ["twilio", "sinch_sms"])
async def test_an_inbound_mms_keeps_its_media_on_the_message(kind, client, world, emulators):
    emu = emulators(kind)
    alpha = await mms_through(kind, world)
    integration = await ProviderIntegration.select(ProviderIntegration.id).first()
    config = await providers.load_config(integration["id"])
    media = [("https://media.provider.example/a.jpg", "image/jpeg")]
    answer = await emu.post_inbound(
        client, config.inbound_url(), PHONE, NUMBER, "look", media=media
    )
    assert answer.status_code == 200, answer.text
    row = await Message.select().where(Message.direction == "in").first()
    assert (row["account_id"], row["channel"], row["body"]) == (alpha, "mms", "look")
    assert "https://media.provider.example/a.jpg" in row["media_urls"]
    assert emu.violations == []
    # The worker then keeps our own copy (the provider's URL may expire).
    served = httpx.MockTransport(
        lambda request: (
            httpx.Response(200, content=samples.JPEG)
            if request.url.path == "/a.jpg"
            else httpx.Response(404)
        )
    )

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    media_fetch.use_transport(served, public)
    try:
        assert await media_fetch.keep_inbound_media(row["id"]) == 1
        assert await media_fetch.keep_inbound_media(row["id"]) == 0  # kept once
    finally:
        media_fetch.use_transport(None)
    shown = (await media_of_messages(alpha, [row["id"]]))[row["id"]]
    assert [f.content_type for f in shown.files] == ["image/jpeg"] and shown.remote_urls == []
    kept = await InboundMedia.select().first()
    assert kept["error"] == "" and kept["media_id"] == shown.files[0].id


async def test_inbound_media_that_breaks_the_rules_is_not_fetched(world):
    alpha = world.accounts["alpha"]
    await numbers.add_number(actor=SYSTEM, owner_account_id=alpha, number=NUMBER, kind="long_code")
    result = await inbound.route_inbound(
        "mo-9", PHONE, NUMBER, "see", "mms", media_urls=("http://10.0.0.1/secret.jpg",)
    )
    assert await media_fetch.keep_inbound_media(result.message_id or 0) == 0
    kept = await InboundMedia.select().first()
    assert kept["media_id"] is None and "https" in kept["error"]
    shown = (await media_of_messages(alpha, [result.message_id or 0]))[result.message_id or 0]
    assert shown.files == [] and shown.remote_urls == ["http://10.0.0.1/secret.jpg"]
