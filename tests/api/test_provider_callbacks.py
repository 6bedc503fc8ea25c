"""Provider callbacks through the portal's hooks: verified exactly as each provider signs
(a wrong secret, a changed body or a missing header is a 403 that changes nothing), scoped
to the messages the integration carried, and every provider's inbound message taking the
one inbound road (parametrised over the simulator and every integration kind)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from twilio.request_validator import RequestValidator

from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.consent.filter import statuses
from tenants.credits import ledger as credits
from tenants.errors import ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging.tables import InboundReply, InboundRoute, Message
from tenants.providers import integrations as providers
from tests.api.test_provider_scenarios import (
    OVERRIDE_SECRET,
    SHARED,
    SMS_CALLBACK_SECRET,
    WEBHOOK_SECRET,
    make_provider,
)
from tests.emulators.conftest import MM_KEY, MM_SECRET, Catcher
from tests.emulators.messagemedia import MessageMediaEmulator
from tests.emulators.sinch_conversation import signature_headers

KINDS = ["twilio", "sinch_sms", "sinch_conversation", "messagemedia"]
PHONE = "+61412345678"


async def integration_of(kind: str, owner: int) -> providers.IntegrationConfig:
    created = await providers.create_integration(
        SYSTEM,
        account_id=owner,
        kind=kind,
        name=f"Platform {kind}",
        values=make_provider(kind).values,
    )
    return await providers.load_config(created.integration.id)


def path(url: str) -> str:
    return url.removeprefix("http://testserver.local")


async def inbound_count() -> int:
    return await Message.count().where(Message.direction == "in")


# --- Twilio ------------------------------------------------------------------------------


async def test_a_request_signed_by_twilios_request_validator_is_accepted(client, demo):
    config = await integration_of("twilio", demo["platform"])
    token = config.value("auth_token")
    url = config.inbound_url()
    params = {"MessageSid": "SM" + "1" * 32, "From": PHONE, "To": SHARED, "Body": "hello"}
    signature = RequestValidator(token).compute_signature(url, params)
    headers = {"X-Twilio-Signature": signature}
    wrong = RequestValidator("0" * 32).compute_signature(url, params)
    # A wrong token, a changed body or no header: 403 and no message.
    for bad_headers, data in (
        ({"X-Twilio-Signature": wrong}, params),
        (headers, {**params, "Body": "hello!"}),
        ({}, params),
    ):
        answer = await client.post(path(url), data=data, headers=bad_headers)
        assert answer.status_code == 403, answer.text
    assert await inbound_count() == 0
    answer = await client.post(path(url), data=params, headers=headers)
    assert answer.status_code == 200, answer.text
    assert await inbound_count() == 1


async def test_twilio_json_bodies_are_verified_by_body_sha256(client, demo):
    """Twilio signs JSON bodies by the URL alone, with the body's SHA-256 in bodySHA256."""
    config = await integration_of("twilio", demo["platform"])
    validator = RequestValidator(config.value("auth_token"))
    body = json.dumps({"MessageSid": "SMx", "MessageStatus": "delivered"}).encode()
    url = config.status_url() + "?bodySHA256=" + hashlib.sha256(body).hexdigest()
    signature = validator.compute_signature(url, {})
    assert validator.validate(url, body.decode(), signature)  # what Twilio would check
    headers = {"X-Twilio-Signature": signature, "content-type": "application/json"}
    ok = await client.post(path(url), content=body, headers=headers)
    assert ok.status_code == 200, ok.text
    changed = await client.post(path(url), content=body + b" ", headers=headers)
    assert changed.status_code == 403


async def test_a_signed_twilio_status_naming_another_tenants_message_changes_nothing(client, demo):
    config = await integration_of("twilio", demo["platform"])
    other = await create_root_account(name="Contoso", slug="contoso")
    await credits.adjust(other.id, 10, reason="test credits", actor=SYSTEM)
    # The platform holds a real provider, so Contoso must choose the simulator outright.
    await providers.set_channel_default(
        SYSTEM, account_id=other.id, channel="sms", choice=providers.USE_BUILTIN
    )
    accepted = await sending.accept_send(
        sending.SendRequest(
            account_id=other.id,
            numbers=["+61499000111"],
            body="Contoso",
            permissions=sending.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    victim = accepted.accepted[0].message_id
    balance = await credits.balance(other.id)
    url = f"{config.status_url()}?ref={victim}"
    params = {"MessageSid": "SM" + "2" * 32, "MessageStatus": "failed", "ErrorCode": "30003"}
    signature = RequestValidator(config.value("auth_token")).compute_signature(url, params)
    answer = await client.post(path(url), data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    row = await Message.select().where(Message.id == victim).first()
    assert (row["status"], row["refunded"], row["provider"]) == ("enqueued", False, "simulator")
    assert await credits.balance(other.id) == balance


async def test_the_simulator_hook_touches_only_messages_the_simulator_carried(client, demo):
    config = await integration_of("twilio", demo["platform"])
    await credits.adjust(demo["northwind"], 10, reason="test credits", actor=SYSTEM)
    await providers.set_channel_default(
        SYSTEM, account_id=demo["northwind"], channel="sms", choice=str(config.id)
    )
    accepted = await sending.accept_send(
        sending.SendRequest(
            account_id=demo["northwind"],
            numbers=[PHONE],
            body="Hi",
            permissions=sending.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    theirs = accepted.accepted[0].message_id
    answer = await client.post(
        "/hooks/simulator/status",
        json={"message_id": theirs, "status": "failed", "error_code": "X"},
        headers={"X-Simulator-Secret": "simulator-secret"},
    )
    assert answer.status_code == 200 and answer.json()["unknown"] == 1, answer.text
    row = await Message.select().where(Message.id == theirs).first()
    assert (row["status"], row["refunded"]) == ("enqueued", False)


# --- Sinch --------------------------------------------------------------------------------


def _conversation_event(phone: str, text: str, mid: str = "01HZX") -> bytes:
    return json.dumps(
        {
            "app_id": "x",
            "message": {
                "id": mid,
                "direction": "TO_APP",
                "contact_message": {"text_message": {"text": text}},
                "channel_identity": {"channel": "WHATSAPP", "identity": phone},
            },
        }
    ).encode()


async def test_sinch_conversation_accepts_either_secret_within_the_replay_window(client, demo):
    config = await integration_of("sinch_conversation", demo["platform"])
    url = path(config.inbound_url())
    json_type = {"content-type": "application/json"}
    refused = []
    for secret, stamp in (
        ("not-the-secret", None),
        (WEBHOOK_SECRET, int(time.time()) - 301),  # outside the 5 minute window
        (OVERRIDE_SECRET, int(time.time()) + 301),
    ):
        body = _conversation_event(PHONE, "hi", f"bad-{len(refused)}")
        headers = {**json_type, **signature_headers(secret, body, timestamp=stamp)}
        refused.append((await client.post(url, content=body, headers=headers)).status_code)
    body = _conversation_event(PHONE, "hi", "bad-missing")
    headers = {**json_type, **signature_headers(WEBHOOK_SECRET, body)}
    del headers["x-sinch-webhook-signature-nonce"]
    refused.append((await client.post(url, content=body, headers=headers)).status_code)
    tampered = {**json_type, **signature_headers(WEBHOOK_SECRET, body)}
    refused.append((await client.post(url, content=body + b" ", headers=tampered)).status_code)
    assert refused == [403] * 5
    assert await inbound_count() == 0
    for n, secret in enumerate((WEBHOOK_SECRET, OVERRIDE_SECRET)):
        body = _conversation_event(PHONE, "hi", f"ok-{n}")
        headers = {**json_type, **signature_headers(secret, body)}
        assert (await client.post(url, content=body, headers=headers)).status_code == 200
    assert await inbound_count() == 2


@pytest.mark.parametrize("secret", [SMS_CALLBACK_SECRET, ""])
async def test_sinch_sms_is_signed_when_a_callback_secret_is_set(client, demo, secret):
    values = {**make_provider("sinch_sms").values, "callback_secret": secret}
    created = await providers.create_integration(
        SYSTEM, account_id=demo["platform"], kind="sinch_sms", name="Sinch", values=values
    )
    config = await providers.load_config(created.integration.id)
    mo = {"type": "mo_text", "id": "01MO", "from": PHONE[1:], "to": SHARED[1:], "body": "hi"}
    body = json.dumps(mo).encode()
    unsigned = await client.post(
        path(config.inbound_url()), content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == (403 if secret else 200)
    if secret:
        headers = {"content-type": "application/json", **signature_headers(secret, body)}
        signed = await client.post(path(config.inbound_url()), content=body, headers=headers)
        assert signed.status_code == 200
    assert await inbound_count() == 1


# --- MessageMedia -------------------------------------------------------------------------


async def _messagemedia_reply(url: str, emu: MessageMediaEmulator) -> httpx.Request:
    """A reply as MessageMedia posts it to `url`, signed by the emulator's key (if any)."""
    catcher = Catcher()
    await emu.post_inbound(catcher, url, PHONE, SHARED, "hello")
    return catcher.last


async def test_messagemedia_signed_callbacks_are_verified_with_the_signature_key(client, demo):
    """Signed with the account's signature key (RSA, the key's digest, over the request line,
    the Date header and the body): accepted on the status and the inbound URL; a changed
    body, another key's signature, a changed Date, no signature or no Date is a 403 and no
    message is written."""
    provider = make_provider("messagemedia")
    config = await integration_of("messagemedia", demo["platform"])
    stranger = MessageMediaEmulator(
        "KEY99999", "SECRET999", signing_key=rsa.generate_private_key(65537, 2048), digest="SHA224"
    )
    request = await _messagemedia_reply(config.inbound_url(), provider.emu)
    forged = await _messagemedia_reply(config.inbound_url(), stranger)
    headers = dict(request.headers)
    no_signature = {k: v for k, v in headers.items() if k != "x-messagemedia-signature"}
    no_date = {k: v for k, v in headers.items() if k != "date"}
    later = {**headers, "date": "Wed, 02 Dec 2026 01:00:00 GMT"}
    for content, sent in (
        (request.content.replace(b"hello", b"HELLO"), headers),
        (forged.content, dict(forged.headers)),
        (request.content, later),
        (request.content, no_signature),
        (request.content, no_date),
    ):
        answer = await client.post(path(str(request.url)), content=content, headers=sent)
        assert answer.status_code == 403, answer.text
    assert await inbound_count() == 0
    answer = await client.post(path(str(request.url)), content=request.content, headers=headers)
    assert answer.status_code == 200, answer.text
    on_status = await _messagemedia_reply(config.status_url() + "?ref=7", provider.emu)
    answer = await client.post(
        path(str(on_status.url)), content=on_status.content, headers=dict(on_status.headers)
    )
    assert answer.status_code == 200, answer.text
    assert await inbound_count() == 2


async def test_messagemedia_without_a_signature_key_relies_on_the_secret_url(client, demo):
    values = {"api_key": MM_KEY, "api_secret": MM_SECRET}
    created = await providers.create_integration(
        SYSTEM, account_id=demo["platform"], kind="messagemedia", name="MM", values=values
    )
    config = await providers.load_config(created.integration.id)
    request = await _messagemedia_reply(
        config.inbound_url(), MessageMediaEmulator(MM_KEY, MM_SECRET)
    )
    assert "x-messagemedia-signature" not in request.headers
    answer = await client.post(
        path(str(request.url)), content=request.content, headers=dict(request.headers)
    )
    assert answer.status_code == 200, answer.text
    assert await inbound_count() == 1


def test_a_messagemedia_signature_key_is_checked_and_kept_as_base64_der():
    emu = MessageMediaEmulator(MM_KEY, MM_SECRET, signing_key=rsa.generate_private_key(65537, 2048))
    bare = emu.public_key()
    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        + "\n".join(bare[i : i + 64] for i in range(0, len(bare), 64))
        + "\n-----END PUBLIC KEY-----\n"
    )
    base = {"api_key": MM_KEY, "api_secret": MM_SECRET}
    settings, _sealed = providers.validate_values(
        "messagemedia", {**base, "signature_public_key": pem, "signature_digest": "SHA512"}
    )
    assert settings["signature_public_key"] == bare
    assert settings["signature_digest"] == "sha512"
    small = rsa.generate_private_key(65537, 1024)
    for values, field in (
        ({"signature_public_key": "not a key"}, "signature_public_key"),
        ({"signature_public_key": bare[:-8], "signature_digest": "sha256"}, "signature_public_key"),
        ({"signature_public_key": bare}, "signature_digest"),
        ({"signature_public_key": bare, "signature_digest": "md5"}, "signature_digest"),
        (
            {
                "signature_public_key": MessageMediaEmulator(
                    "a", "b", signing_key=small
                ).public_key(),
                "signature_digest": "sha256",
            },
            "signature_public_key",
        ),
    ):
        with pytest.raises(ValidationFailed) as refused:
            providers.validate_values("messagemedia", {**base, **values})
        assert set(refused.value.errors) == {field}, (values, refused.value.errors)


# --- one inbound road for every provider -------------------------------------------------


async def _captured(kind: str, url: str, phone: str, body: str, channel: str) -> httpx.Request:
    """The inbound request the provider would post (captured, to be replayed)."""
    catcher = Catcher()
    if kind == "simulator":
        payload = {"id": "sim-1", "from": phone, "to": SHARED, "body": body, "channel": channel}
        return httpx.Request(
            "POST",
            url,
            content=json.dumps(payload).encode(),
            headers={"X-Simulator-Secret": "simulator-secret", "content-type": "application/json"},
        )
    provider = make_provider(kind)
    await provider.inbound(catcher, url, phone, body, channel)
    return catcher.last


CHANNEL_OF = {"twilio": "whatsapp", "sinch_conversation": "whatsapp", "simulator": "whatsapp"}


@pytest.mark.parametrize("kind", ["simulator", *KINDS])
async def test_every_provider_takes_the_one_inbound_road(client, demo, kind: str):
    """A STOP from a phone nobody messaged (Sinch SMS writes it without the +; E.164 is
    restored):
    the number holder's opt-out in the group of the channel it came on, one confirmation;
    the provider's redelivery of the same message is the same message."""
    if kind == "simulator":
        url = "http://testserver.local/hooks/simulator/inbound"
    else:
        url = (await integration_of(kind, demo["platform"])).inbound_url()
    channel = CHANNEL_OF.get(kind, "sms")
    request = await _captured(kind, url, PHONE, "STOP", channel)
    for _ in range(2):
        answer = await client.post(
            path(str(request.url)), content=request.content, headers=dict(request.headers)
        )
        assert answer.status_code in (200, 202), answer.text
    rows: list[dict[str, Any]] = await Message.select().where(Message.direction == "in")
    assert [(r["from_number"], r["account_id"], r["channel"]) for r in rows] == [
        (PHONE, demo["northwind"], channel)
    ]
    route = await InboundRoute.select().where(InboundRoute.message_id == rows[0]["id"]).first()
    assert route["rule"] == "opt_out"
    assert await statuses(demo["northwind"], [PHONE]) == {(PHONE, channel): "opted_out"}
    replies = await InboundReply.select().where(InboundReply.route_id == route["id"])
    assert [r["kind"] for r in replies] == ["confirmation"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"channel": "fax"}, "channel"), ({"media_urls": ["file:///etc/passwd"]}, "media_urls")],
)
async def test_bad_inbound_channel_or_media_is_a_422_naming_the_field(client, demo, extra, field):
    payload = {"id": "sim-bad", "from": PHONE, "to": SHARED, "body": "hi", **extra}
    answer = await client.post(
        "/hooks/simulator/inbound", json=payload, headers={"X-Simulator-Secret": "simulator-secret"}
    )
    assert answer.status_code == 422 and field in answer.text, answer.text
    assert await inbound_count() == 0


async def test_inbound_media_is_kept_on_the_message(client, demo):
    payload = {
        "id": "sim-mms",
        "from": PHONE,
        "to": SHARED,
        "body": "look",
        "channel": "mms",
        "media_urls": ["https://m.example/cat.jpg"],
    }
    answer = await client.post(
        "/hooks/simulator/inbound", json=payload, headers={"X-Simulator-Secret": "simulator-secret"}
    )
    assert answer.status_code == 202, answer.text
    row = await Message.select().where(Message.direction == "in").first()
    assert (row["channel"], json.loads(row["media_urls"])) == ("mms", ["https://m.example/cat.jpg"])
