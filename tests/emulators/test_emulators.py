"""The emulators against the providers' published shapes and signatures, then each portal
gateway against its emulator: what it sends, what it looks up, how it reads the signed
callbacks the provider would post."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, parse_qsl

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from twilio.request_validator import RequestValidator

from tasks.gateways.http import CallbackRequest
from tasks.gateways.messagemedia import MessageMediaGateway
from tasks.gateways.sinch import SinchConversationGateway, SinchSmsGateway
from tasks.gateways.twilio import TwilioGateway
from tenants.errors import PermissionDenied
from tenants.messaging.inbound import InboundResult
from tenants.messaging.outbox import OutboundMessage
from tenants.providers.integrations import IntegrationConfig
from tests.emulators import sinch_conversation
from tests.emulators.conftest import (
    APP,
    KEY_ID,
    KEY_SECRET,
    MM_KEY,
    MM_SECRET,
    PROJECT,
    SINCH_PLAN,
    SINCH_TOKEN,
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
)
from tests.emulators.messagemedia import MessageMediaEmulator, signed_message
from tests.emulators.sinch_sms import SinchSmsEmulator
from tests.emulators.twilio import TwilioEmulator, sign

STATUS_URL = "http://testserver.local/hooks/providers/7/tok-secret/status"
INBOUND_URL = "http://testserver.local/hooks/providers/7/tok-secret/inbound"
TWILIO_API = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}"


def config(kind: str, settings: dict, secrets: dict) -> IntegrationConfig:
    return IntegrationConfig(
        id=7,
        kind=kind,
        name=kind,
        status="active",
        settings=settings,
        secrets=secrets,
        callback_token="tok-secret",
        rate_limit=0,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def msg(message_id: int, to: str, body: str = "Hello", sender: str = "Alpha", channel="sms"):
    return OutboundMessage(message_id, to, sender, body, channel, 1)


def as_callback(request: httpx.Request) -> CallbackRequest:
    """What the portal's hook hands the gateway for a request the emulator posted."""
    body = request.content
    form = {}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    headers = {k.lower(): v for k, v in request.headers.items()}
    return CallbackRequest(url=str(request.url), headers=headers, body=body, form=form)


# --- Twilio: the emulator -----------------------------------------------------------------


async def test_twilio_emulator_accepts_the_published_shape_and_refuses_others(twilio_emu):
    async with httpx.AsyncClient(transport=twilio_emu.transport()) as client:
        ok = await client.post(
            f"{TWILIO_API}/Messages.json",
            auth=(TWILIO_SID, TWILIO_TOKEN),
            data={"To": "+61400000001", "From": "+15005550006", "Body": "Hi"},
        )
        assert ok.status_code == 201 and twilio_emu.violations == []
        sid = ok.json()["sid"]
        assert sid.startswith("SM") and len(sid) == 34 and ok.json()["status"] == "queued"
        assert (
            await client.get(f"{TWILIO_API}/Messages/{sid}.json", auth=(TWILIO_SID, TWILIO_TOKEN))
        ).json()["to"] == "+61400000001"

        no_from = await client.post(
            f"{TWILIO_API}/Messages.json",
            auth=(TWILIO_SID, TWILIO_TOKEN),
            data={"To": "+61400000001", "Body": "Hi"},
        )
        bad_auth = await client.post(
            f"{TWILIO_API}/Messages.json",
            auth=(TWILIO_SID, "0" * 32),
            data={"To": "+61400000001", "From": "+15005550006", "Body": "Hi"},
        )
        as_json = await client.post(
            f"{TWILIO_API}/Messages.json",
            auth=(TWILIO_SID, TWILIO_TOKEN),
            json={"To": "+61400000001", "From": "+15005550006", "Body": "Hi"},
        )
    assert no_from.status_code == 400 and no_from.json()["code"] == 21603
    assert bad_auth.status_code == 401 and bad_auth.json()["code"] == 20003
    assert as_json.status_code == 400
    assert len(twilio_emu.violations) == 3 and len(twilio_emu.accepted) == 1


def test_twilio_signature_is_the_one_twilio_python_computes_and_validates():
    url = f"{STATUS_URL}?ref=12"
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": "+61400000001"}
    validator = RequestValidator(TWILIO_TOKEN)
    assert sign(TWILIO_TOKEN, url, params) == validator.compute_signature(url, params)
    assert validator.validate(url, params, sign(TWILIO_TOKEN, url, params))
    # Twilio may sign the URL with its default port; its validator accepts both.
    with_port = url.replace("testserver.local", "testserver.local:80")
    assert validator.validate(url, params, sign(TWILIO_TOKEN, with_port, params))


async def test_twilio_emulator_callbacks_validate_with_twilio_python(twilio_emu, catcher):
    async with httpx.AsyncClient(transport=twilio_emu.transport()) as client:
        created = await client.post(
            f"{TWILIO_API}/Messages.json",
            auth=(TWILIO_SID, TWILIO_TOKEN),
            data={
                "To": "+61400000001",
                "From": "Alpha",
                "Body": "Hi",
                "StatusCallback": f"{STATUS_URL}?ref=5",
            },
        )
    await twilio_emu.post_status(catcher, created.json()["sid"], "undelivered", error_code=30005)
    posted = catcher.last
    form = {k: v[0] for k, v in parse_qs(posted.content.decode()).items()}
    assert form["MessageStatus"] == "undelivered" and form["ErrorCode"] == "30005"
    assert RequestValidator(TWILIO_TOKEN).validate(
        str(posted.url), form, posted.headers["x-twilio-signature"]
    )


# --- Twilio: the portal's gateway -----------------------------------------------------------


def twilio_gateway(emu: TwilioEmulator, **settings: str) -> TwilioGateway:
    return TwilioGateway(
        config("twilio", {"account_sid": TWILIO_SID, **settings}, {"auth_token": TWILIO_TOKEN}),
        transport=emu.transport(),
    )


async def test_twilio_gateway_sends_what_twilio_publishes(twilio_emu, catcher):
    gateway = twilio_gateway(twilio_emu)
    results = await gateway.submit(
        [
            msg(1, "+61400000001"),
            msg(2, "+61400000002", body="Second"),
            msg(3, "+61400000003", sender="+15005550006", channel="whatsapp"),
        ]
    )
    assert twilio_emu.violations == []
    assert all(r.accepted for r in results)
    sent = {m.to: m for m in twilio_emu.accepted}
    assert set(sent) == {"+61400000001", "+61400000002", "whatsapp:+61400000003"}
    assert sent["+61400000001"].from_ == "Alpha" and sent["+61400000001"].body == "Hello"
    assert sent["whatsapp:+61400000003"].from_ == "whatsapp:+15005550006"
    assert sent["+61400000002"].status_callback == f"{STATUS_URL}?ref=2"
    refs = {r.message_id: r.provider_ref for r in results}
    assert refs[1] == sent["+61400000001"].sid

    # Lookup finds the message an earlier attempt created, by its own SID (learnt from the
    # answer or a callback naming it), not by its text.
    known = OutboundMessage(2, "+61400000002", "Alpha", "Second", "sms", 1, provider_ref=refs[2])
    assert await gateway.lookup([known]) == {2: refs[2]}
    assert await gateway.lookup([msg(2, "+61400000002", body="Second")]) == {}
    assert (await gateway.test_connection()).message == "Connected to Twilio account Acme (active)."

    await twilio_emu.post_status(catcher, refs[1], "delivered")
    callback = as_callback(catcher.last)
    gateway.verify(callback)
    (event,) = gateway.parse_status(callback)
    assert (event.message_id, event.status, event.provider_ref) == (1, "delivered", refs[1])

    await twilio_emu.post_status(catcher, refs[2], "undelivered", error_code=30003)
    callback = as_callback(catcher.last)
    gateway.verify(callback)
    (event,) = gateway.parse_status(callback)
    assert (event.message_id, event.status, event.error_code) == (2, "failed", "twilio:30003")

    await twilio_emu.post_inbound(catcher, INBOUND_URL, "+61400000009", "+15005550006", "STOP")
    callback = as_callback(catcher.last)
    gateway.verify(callback)
    (inbound,) = gateway.parse_inbound(callback)
    assert (inbound.sender, inbound.to, inbound.body) == ("+61400000009", "+15005550006", "STOP")
    assert twilio_emu.violations == []


async def test_twilio_advanced_opt_out_keywords_come_with_their_opt_out_type(twilio_emu, catcher):
    service = "MG" + "c" * 32
    twilio_emu.enable_advanced_opt_out(service, ALTO="STOP")
    gateway = twilio_gateway(twilio_emu)
    sent = {}
    for body, via in (
        ("alto", service),
        ("Stop please", service),
        ("STOP", None),
        ("Help", service),
    ):
        await twilio_emu.post_inbound(
            catcher, INBOUND_URL, "+61400000009", "+15005550006", body, messaging_service_sid=via
        )
        callback = as_callback(catcher.last)
        gateway.verify(callback)
        (inbound,) = gateway.parse_inbound(callback)
        sent[body] = (callback.form.get("OptOutType"), inbound.provider_keyword)
    # Whole bodies only, and only on a service with Advanced Opt-Out.
    assert sent == {
        "alto": ("STOP", "opt_out"),
        "Stop please": (None, None),
        "STOP": (None, None),
        "Help": ("HELP", "help"),
    }


async def test_twilio_gateway_with_a_messaging_service(twilio_emu):
    service = "MG" + "b" * 32
    gateway = twilio_gateway(twilio_emu, messaging_service_sid=service)
    (result,) = await gateway.submit([msg(1, "+61400000001", sender="")])
    assert result.accepted and twilio_emu.violations == []
    (sent,) = twilio_emu.accepted
    assert sent.messaging_service_sid == service and sent.from_ is None


async def test_twilio_gateway_accepts_a_signature_over_the_url_with_its_port(twilio_emu, catcher):
    gateway = twilio_gateway(twilio_emu)
    (result,) = await gateway.submit([msg(1, "+61400000001")])
    await twilio_emu.post_status(catcher, result.provider_ref, "delivered", sign_with_port=True)
    callback = as_callback(catcher.last)
    gateway.verify(callback)  # twilio-python's validator accepts this too
    forged = CallbackRequest(
        callback.url, callback.headers, callback.body, {**callback.form, "MessageStatus": "read"}
    )
    with pytest.raises(PermissionDenied):
        gateway.verify(forged)


# --- Sinch SMS ----------------------------------------------------------------------------


SINCH_BATCHES = f"https://eu.sms.api.sinch.com/xms/v1/{SINCH_PLAN}/batches"


async def test_sinch_sms_emulator_refuses_what_sinch_would(sinch_sms_emu):
    async with httpx.AsyncClient(transport=sinch_sms_emu.transport()) as client:
        headers = {"authorization": f"Bearer {SINCH_TOKEN}"}
        ok = await client.post(
            SINCH_BATCHES, headers=headers, json={"to": ["+61400000001"], "from": "A", "body": "x"}
        )
        too_many = await client.post(
            SINCH_BATCHES,
            headers=headers,
            json={"to": [f"+614{i:08d}" for i in range(1001)], "from": "A", "body": "x"},
        )
        no_token = await client.post(SINCH_BATCHES, json={"to": ["+614"], "body": "x"})
        us = await client.post(
            SINCH_BATCHES.replace("eu.", "us."), headers=headers, json={"to": ["+61400000001"]}
        )
    assert ok.status_code == 201 and ok.json()["to"] == ["61400000001"]
    assert too_many.status_code == 400 and no_token.status_code == 401 and us.status_code == 401
    assert len(sinch_sms_emu.violations) == 3


def sinch_sms_gateway(emu) -> SinchSmsGateway:
    return SinchSmsGateway(
        config(
            "sinch_sms", {"service_plan_id": SINCH_PLAN, "region": "eu"}, {"api_token": SINCH_TOKEN}
        ),
        transport=emu.transport(),
    )


async def test_sinch_sms_gateway_against_the_emulator(sinch_sms_emu, catcher):
    gateway = sinch_sms_gateway(sinch_sms_emu)
    results = await gateway.submit(
        [msg(1, "+61400000001"), msg(2, "+61400000002"), msg(3, "+61400000003", body="Other")]
    )
    assert sinch_sms_emu.violations == []
    assert [len(b.to) for b in sinch_sms_emu.accepted] == [2, 1]
    first = sinch_sms_emu.accepted[0]
    assert first.payload["delivery_report"] == "per_recipient"
    assert first.callback_url == STATUS_URL and first.client_reference == "portal:1,2"
    assert {r.message_id: r.provider_ref for r in results}[2] == f"{first.id}:61400000002"

    assert await gateway.lookup([msg(2, "+61400000002")]) == {2: f"{first.id}:61400000002"}
    assert (await gateway.test_connection()).ok

    await sinch_sms_emu.post_status(catcher, first.id, "+61400000002", "Failed", code=404)
    callback = as_callback(catcher.last)
    gateway.verify(callback)
    (event,) = gateway.parse_status(callback)
    assert (event.status, event.recipient, event.candidates, event.error_code) == (
        "failed",
        "+61400000002",
        (1, 2),
        "sinch:404",
    )
    await sinch_sms_emu.post_status(catcher, first.id, "+61400000001", "Delivered")
    (event,) = gateway.parse_status(as_callback(catcher.last))
    assert event.status == "delivered" and event.provider_ref == f"{first.id}:61400000001"

    await sinch_sms_emu.post_inbound(catcher, INBOUND_URL, "+61400000009", "+61480000000", "Hi")
    (inbound,) = gateway.parse_inbound(as_callback(catcher.last))
    assert (inbound.sender, inbound.to, inbound.body) == ("+61400000009", "+61480000000", "Hi")
    assert sinch_sms_emu.violations == []


async def test_sinch_sms_signed_callbacks_use_the_conversation_scheme(catcher):
    emu = SinchSmsEmulator(SINCH_PLAN, SINCH_TOKEN, region="eu", callback_secret="KayakingTheSwell")
    gateway = sinch_sms_gateway(emu)
    (result,) = await gateway.submit([msg(1, "+61400000001")])
    await emu.post_status(catcher, result.provider_ref.split(":")[0], "+61400000001", "Delivered")
    posted = catcher.last
    headers = posted.headers
    assert headers["x-sinch-webhook-signature"] == sinch_conversation.sign(
        "KayakingTheSwell",
        posted.content,
        headers["x-sinch-webhook-signature-nonce"],
        headers["x-sinch-webhook-signature-timestamp"],
    )


# --- Sinch Conversation API ------------------------------------------------------------------


def test_sinch_webhook_signature_matches_the_sdk_vector():
    body = (
        b'{"app_id":"01EB37HMH1M6SV18BSNS3G135H","accepted_time":"2020-11-17T15:09:11.659Z",'
        b'"project_id":"c36f3d3d-1513-2edd-ae42-11995557ff61",'
        b'"message_delivery_report":{"message_id":"01EQBC1A3BEK731GY4YXEN0C2R",'
        b'"conversation_id":"01EPYATA64TMNZ1FV02JKF12JF","status":"QUEUED_ON_CHANNEL",'
        b'"contact_id":"01EXA07N79THJ20WSN6AS30TMW"}}'
    )
    nonce, stamp = "01FJA8B4A7BM43YGWSG9GBV067", "1634579353"
    expected = "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk="
    assert sinch_conversation.sign("foo_secret1234", body, nonce, stamp) == expected


def test_the_conversation_gateway_verifies_the_sdk_vector(monkeypatch):
    gateway = conversation_gateway_for(None)
    body = (
        b'{"app_id":"01EB37HMH1M6SV18BSNS3G135H","accepted_time":"2020-11-17T15:09:11.659Z",'
        b'"project_id":"c36f3d3d-1513-2edd-ae42-11995557ff61",'
        b'"message_delivery_report":{"message_id":"01EQBC1A3BEK731GY4YXEN0C2R",'
        b'"conversation_id":"01EPYATA64TMNZ1FV02JKF12JF","status":"QUEUED_ON_CHANNEL",'
        b'"contact_id":"01EXA07N79THJ20WSN6AS30TMW"}}'
    )
    headers = {
        "x-sinch-webhook-signature": "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk=",
        "x-sinch-webhook-signature-nonce": "01FJA8B4A7BM43YGWSG9GBV067",
        "x-sinch-webhook-signature-timestamp": "1634579353",
    }
    monkeypatch.setattr(time, "time", lambda: 1634579353.0 + 10)
    gateway.verify(CallbackRequest(STATUS_URL, headers, body, {}))


def conversation_gateway_for(emu) -> SinchConversationGateway:
    return SinchConversationGateway(
        config(
            "sinch_conversation",
            {"project_id": PROJECT, "app_id": APP, "key_id": KEY_ID, "region": "us"},
            {"key_secret": KEY_SECRET, "webhook_secret": WEBHOOK_SECRET},
        ),
        transport=emu.transport() if emu is not None else None,
    )


async def test_conversation_gateway_against_the_emulator(sinch_conversation_emu, catcher):
    emu = sinch_conversation_emu
    gateway = conversation_gateway_for(emu)
    results = await gateway.submit(
        [
            msg(5, "+61400000005", channel="rcs"),
            msg(6, "+61400000006", channel="whatsapp"),
            msg(7, "+61400000007", channel="sms", body="Plain"),
        ]
    )
    assert emu.violations == [] and all(r.accepted for r in results)
    assert len(emu.tokens) == 1  # one token for the whole batch
    by_id = {m.correlation_id: m for m in emu.accepted}
    assert {k: (m.channel, m.identity) for k, m in by_id.items()} == {
        "5": ("RCS", "+61400000005"),
        "6": ("WHATSAPP", "+61400000006"),
        "7": ("SMS", "+61400000007"),
    }
    assert by_id["7"].text == "Plain" and by_id["7"].callback_url == STATUS_URL
    refs = {r.message_id: r.provider_ref for r in results}
    assert refs[5] == by_id["5"].id

    assert await gateway.lookup([msg(6, "+61400000006", channel="whatsapp")]) == {6: refs[6]}
    assert (await gateway.test_connection()).ok

    # A token that expired in flight is renewed once.
    emu.expire_tokens()
    (again,) = await gateway.submit([msg(8, "+61400000008", channel="rcs")])
    assert again.accepted and len(emu.tokens) == 2

    await emu.post_status(catcher, refs[5], "DELIVERED")
    callback = as_callback(catcher.last)
    assert callback.url == STATUS_URL  # the message's callback_url
    gateway.verify(callback)
    (event,) = gateway.parse_status(callback)
    assert (event.message_id, event.status, event.provider_ref) == (5, "delivered", refs[5])

    await emu.post_status(catcher, refs[6], "FAILED", reason="RECIPIENT_NOT_REACHABLE")
    callback = as_callback(catcher.last)
    gateway.verify(callback)
    (event,) = gateway.parse_status(callback)
    assert (event.message_id, event.status, event.error_code) == (
        6,
        "failed",
        "RECIPIENT_NOT_REACHABLE",
    )

    for channel in ("SMS", "WHATSAPP", "RCS"):
        await emu.post_inbound(
            catcher, INBOUND_URL, "+61400000009", "", f"via {channel}", channel=channel
        )
        callback = as_callback(catcher.last)
        gateway.verify(callback)
        (inbound,) = gateway.parse_inbound(callback)
        assert (inbound.sender, inbound.body) == ("+61400000009", f"via {channel}")
    assert emu.violations == []


async def test_conversation_receipts_signed_with_the_override_secret_only(catcher):
    """Receipts to a message's callback_url are signed with the app's
    secret_for_overridden_callback_urls: the portal's one webhook secret must equal it."""
    emu = sinch_conversation.SinchConversationEmulator(
        PROJECT, APP, KEY_ID, KEY_SECRET, region="us",
        webhook_secret=WEBHOOK_SECRET, override_secret="another-secret",
    )  # fmt: skip
    gateway = conversation_gateway_for(emu)
    (result,) = await gateway.submit([msg(1, "+61400000001", channel="rcs")])
    await emu.post_status(catcher, result.provider_ref, "DELIVERED")
    with pytest.raises(PermissionDenied):
        gateway.verify(as_callback(catcher.last))


# --- MessageMedia -------------------------------------------------------------------------


async def test_messagemedia_emulator_refuses_a_batch_with_one_bad_message(messagemedia_emu):
    async with httpx.AsyncClient(transport=messagemedia_emu.transport()) as client:
        bad = await client.post(
            "https://api.messagemedia.com/v1/messages",
            auth=(MM_KEY, MM_SECRET),
            json={
                "messages": [
                    {"content": "ok", "destination_number": "+61400000001"},
                    {"content": "bad", "destination_number": "0400"},
                ]
            },
        )
        over = await client.post(
            "https://api.messagemedia.com/v1/messages",
            auth=(MM_KEY, MM_SECRET),
            json={"messages": [{"content": "x", "destination_number": "+61400000001"}] * 101},
        )
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid message format"
    assert over.status_code == 400 and messagemedia_emu.accepted == []
    assert len(messagemedia_emu.violations) == 2


def messagemedia_gateway(emu) -> MessageMediaGateway:
    return MessageMediaGateway(
        config("messagemedia", {"api_key": MM_KEY}, {"api_secret": MM_SECRET}),
        transport=emu.transport(),
    )


async def test_messagemedia_gateway_against_the_emulator(messagemedia_emu, catcher):
    emu = messagemedia_emu
    gateway = messagemedia_gateway(emu)
    results = await gateway.submit(
        [
            msg(1, "+61400000001"),
            msg(2, "+61400000002", sender="+61480000000"),
            msg(3, "+61400000003", sender=""),
        ]
    )
    assert emu.violations == [] and all(r.accepted for r in results)
    items = {m.item["destination_number"]: m for m in emu.accepted}
    assert items["+61400000001"].item["source_number_type"] == "ALPHANUMERIC"
    assert items["+61400000002"].item["source_number_type"] == "INTERNATIONAL"
    assert "source_number" not in items["+61400000003"].item
    assert items["+61400000001"].item["metadata"] == {"portal_message_id": "1"}
    refs = {r.message_id: r.provider_ref for r in results}
    assert refs[2] == items["+61400000002"].message_id

    await emu.post_status(catcher, refs[1], "delivered")
    (event,) = gateway.parse_status(as_callback(catcher.last))
    assert (event.message_id, event.status, event.provider_ref) == (1, "delivered", refs[1])
    await emu.post_status(catcher, refs[2], "undeliverable")
    (event,) = gateway.parse_status(as_callback(catcher.last))
    assert (event.message_id, event.status) == (2, "failed")

    # Lookup reads the unconfirmed delivery reports.
    assert await gateway.lookup([msg(1, "+61400000001"), msg(3, "+61400000003")]) == {1: refs[1]}
    assert (await gateway.test_connection()).ok

    # An account-level reply (not tied to a message) to the inbound URL.
    await emu.post_inbound(catcher, INBOUND_URL, "+61400000009", "+61480000000", "Hi")
    (inbound,) = gateway.parse_inbound(as_callback(catcher.last))
    assert (inbound.sender, inbound.to, inbound.body) == ("+61400000009", "+61480000000", "Hi")
    assert emu.violations == []


async def test_messagemedia_reply_to_a_message_comes_to_its_callback_url(messagemedia_emu, catcher):
    """MessageMedia pushes replies to the message's callback_url, which is the status URL:
    the status endpoint must take them as inbound messages."""
    gateway = messagemedia_gateway(messagemedia_emu)
    (result,) = await gateway.submit([msg(1, "+61400000001")])
    await messagemedia_emu.post_inbound(
        catcher, None, "+61400000001", "+61480000000", "STOP", in_reply_to=result.provider_ref
    )
    callback = as_callback(catcher.last)
    assert callback.url == STATUS_URL
    assert gateway.parse_status(callback) == []
    (inbound,) = gateway.parse_inbound(callback)
    assert (inbound.sender, inbound.body) == ("+61400000001", "STOP")


async def test_messagemedia_signed_webhooks_verify_with_the_public_key(catcher):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    emu = MessageMediaEmulator(MM_KEY, MM_SECRET, signing_key=key)
    (result,) = await messagemedia_gateway(emu).submit([msg(1, "+61400000001")])
    await emu.post_status(catcher, result.provider_ref, "delivered")
    posted = catcher.last
    key.public_key().verify(
        base64.b64decode(posted.headers["x-messagemedia-signature"]),
        signed_message(str(posted.url), posted.headers["date"], posted.content),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert json.loads(posted.content)["status"] == "delivered"


async def test_the_status_hook_takes_messagemedia_replies_as_inbound(
    client, world, messagemedia_emu, monkeypatch
):
    """End to end through the portal's hook: the reply MessageMedia pushes to the
    message's callback_url (the status URL) reaches the one inbound road (route_report)."""
    from portal.controllers import hooks
    from tenants.audit.record import SYSTEM
    from tenants.providers import integrations as providers

    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="messagemedia",
        name="Platform MessageMedia",
        values={"api_key": MM_KEY, "api_secret": MM_SECRET},
    )
    loaded = await providers.load_config(created.integration.id)
    gateway = MessageMediaGateway(loaded, transport=messagemedia_emu.transport())
    (result,) = await gateway.submit([msg(1, "+61400000001")])
    received = []

    async def receive(report):
        received.append(report)
        return InboundResult(message_id=None, account_id=None, route="unknown_number")

    monkeypatch.setattr(hooks, "route_report", receive)
    answer = await messagemedia_emu.post_inbound(
        client, None, "+61400000001", "+61480000000", "STOP", in_reply_to=result.provider_ref
    )
    assert answer.status_code == 200, answer.text
    assert [(r.sender, r.to, r.body) for r in received] == [
        ("+61400000001", "+61480000000", "STOP")
    ]
    assert messagemedia_emu.violations == []


# --- rich messages: what the emulators refuse, as the providers document -------------------


async def test_twilio_emulator_checks_content_templates(twilio_emu):
    sid = twilio_emu.add_content("order_ready", 2)
    send = {"To": "whatsapp:+61400000001", "From": "whatsapp:+15005550006", "ContentSid": sid}
    async with httpx.AsyncClient(transport=twilio_emu.transport()) as client:

        async def post(**extra: str) -> httpx.Response:
            return await client.post(
                f"{TWILIO_API}/Messages.json",
                auth=(TWILIO_SID, TWILIO_TOKEN),
                data={**send, **extra},
            )

        ok = await post(ContentVariables=json.dumps({"1": "Jane", "2": "A-17"}))
        assert ok.status_code == 201 and twilio_emu.violations == []
        not_strings = await post(ContentVariables=json.dumps({"1": 7}))
        unknown_place = await post(ContentVariables=json.dumps({"3": "x"}))
        unknown_sid = await post(ContentSid="HX" + "0" * 32)
        approval = await client.get(
            f"https://content.twilio.com/v1/Content/{sid}/ApprovalRequests",
            auth=(TWILIO_SID, TWILIO_TOKEN),
        )
    assert not_strings.json()["code"] == 21656 and unknown_place.json()["code"] == 21656
    assert unknown_sid.status_code == 404
    assert approval.json()["whatsapp"]["status"] == "approved"
    # Free-form WhatsApp text to someone who never wrote: accepted, then failed (63016).
    async with httpx.AsyncClient(transport=twilio_emu.transport()) as client:
        await client.post(
            f"{TWILIO_API}/Messages.json",
            auth=(TWILIO_SID, TWILIO_TOKEN),
            data={**{k: v for k, v in send.items() if k != "ContentSid"}, "Body": "Hi"},
        )
    assert twilio_emu.accepted[-1].error_code == 63016


async def test_sinch_template_approval_is_read_from_the_provisioning_api(sinch_conversation_emu):
    """WhatsApp's state when it has one (approved stays approved while later changes are
    reviewed), else the submission's; the rejection code as the reason; a name or language
    Sinch does not list is unknown (None)."""
    emu = sinch_conversation_emu
    emu.add_template("order_ready", "en_US", state="APPROVED", changes_status="IN_PROGRESS")
    emu.add_template("order_ready", "de", state="REJECTED", rejection_code="INVALID_FORMAT")
    emu.add_template("new_offer", "en", changes_status="IN_PROGRESS")
    emu.add_template("draft_one", "en", changes_status="DRAFT")
    emu.add_template("held_back", "en", state="PAUSED")
    gateway = conversation_gateway_for(emu)
    assert await gateway.template_approval("order_ready", "en_US") == ("approved", "")
    assert await gateway.template_approval("order_ready", "de") == ("rejected", "INVALID_FORMAT")
    assert await gateway.template_approval("new_offer", "en") == ("pending", "")
    assert await gateway.template_approval("draft_one", "en") == ("unsubmitted", "")
    assert await gateway.template_approval("held_back", "en") == ("paused", "")
    assert await gateway.template_approval("order_ready", "fr") is None
    assert await gateway.template_approval("nobody", "en") is None
    asked = [r for r in emu.requests if r.host == "provisioning.api.sinch.com"]
    assert {r.query["templateName"][0] for r in asked} >= {"order_ready", "nobody"}
    assert all(r.bearer() in emu.tokens for r in asked)
    assert emu.violations == []


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (
            {
                "template_message": {
                    "channel_template": {"WHATSAPP": {"template_id": "t", "language_code": "en-US"}}
                }
            },
            "underscored",
        ),
        (
            {
                "template_message": {
                    "channel_template": {
                        "WHATSAPP": {
                            "template_id": "t",
                            "language_code": "en_US",
                            "parameters": {"1": "x"},
                        }
                    }
                }
            },
            "body[1]text",
        ),
        (
            {"card_message": {"title": "T", "choices": [{"text_message": {"text": "a"}}] * 5}},
            "at most 4",
        ),
        (
            {"card_message": {"title": "T", "choices": [{"url_message": {"url": "https://x"}}]}},
            "url_message",
        ),
        (
            {"card_message": {"title": "T"}, "explicit_channel_message": {"SMS": ""}},
            "explicit_channel_message",
        ),
    ],
)
async def test_conversation_emulator_refuses_rich_messages_sinch_would(
    sinch_conversation_emu, message, why
):
    emu = sinch_conversation_emu
    gateway = conversation_gateway_for(emu)
    token = await gateway._token()
    async with httpx.AsyncClient(transport=emu.transport()) as client:
        r = await client.post(
            f"https://us.conversation.api.sinch.com/v1/projects/{PROJECT}/messages:send",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "app_id": APP,
                "recipient": {
                    "identified_by": {
                        "channel_identities": [{"channel": "RCS", "identity": "+61400000001"}]
                    }
                },
                "message": message,
            },
        )
    assert r.status_code == 400 and why in emu.violations[-1]


async def test_conversation_gateway_sends_cards_and_templates_and_reads_taps(
    sinch_conversation_emu, catcher
):
    emu = sinch_conversation_emu
    gateway = conversation_gateway_for(emu)
    card = {
        "kind": "card", "title": "Table", "description": "", "media_url": "",
        "suggestions": [{"kind": "dial", "text": "Call", "value": "+61400000000"}],
        "fallback_text": "Table ready",
    }  # fmt: skip
    template = {"kind": "template", "name": "t_ready", "language": "en_US", "parameters": ["Jo"]}
    results = await gateway.submit(
        [
            OutboundMessage(1, "+61400000001", "Alpha", "Table", "rcs", 1, rich=card),
            OutboundMessage(2, "+61400000002", "Alpha", "Hi Jo", "whatsapp", 1, rich=template),
        ]
    )
    assert all(r.accepted for r in results) and emu.violations == []
    by_id = {m.correlation_id: m.payload for m in emu.accepted}
    assert by_id["1"]["message"]["card_message"]["choices"] == [
        {"call_message": {"title": "Call", "phone_number": "+61400000000"}}
    ]
    assert by_id["2"]["message"]["template_message"]["channel_template"]["WHATSAPP"][
        "parameters"
    ] == {"body[1]text": "Jo"}
    ref = results[0].provider_ref
    assert ref is not None
    await emu.post_status(catcher, ref, "DELIVERED", channel="SMS")
    assert gateway.delivered_channels(as_callback(catcher.last)) == [(ref, "sms")]
    await emu.post_inbound(
        catcher,
        INBOUND_URL,
        "+61400000001",
        "",
        "",
        channel="RCS",
        postback_data="yes",
        in_reply_to=ref,
    )
    (tap,) = gateway.parse_inbound(as_callback(catcher.last))
    assert (tap.body, tap.channel, dict(tap.tapped)) == (
        "yes", "rcs", {"text": "yes", "payload": "yes", "message_id": ref},
    )  # fmt: skip
