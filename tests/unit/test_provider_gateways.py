"""Each real gateway against the request and response shapes of its provider's public API
(respx): batching limits, auth headers, error bodies -> rejected / enqueued_failed with the
provider's code, 429/5xx and timeouts retried or handed back, callbacks verified and mapped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
import respx

from tasks.gateways.http import CallbackRequest
from tasks.gateways.messagemedia import MessageMediaGateway
from tasks.gateways.simulator import SimulatorGateway
from tasks.gateways.sinch import SinchConversationGateway, SinchSmsGateway
from tasks.gateways.twilio import TwilioGateway
from tenants.messaging.outbox import OutboundMessage, TransientProviderError
from tenants.providers.integrations import IntegrationConfig

SID = "AC" + "a" * 32
TOKEN = "f" * 32
PLAN = "jd63jf88477ll123ab4567cd89012ef3"


@pytest.fixture(autouse=True)
def _fast_retries(settings_env):
    settings_env(PROVIDER_RETRY_BACKOFF="0.001")


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


def msg(message_id: int, to: str, body: str = "Hello", sender: str = "Alpha", channel: str = "sms"):
    return OutboundMessage(message_id, to, sender, body, channel, 1)


STATUS_URL = "http://testserver.local/hooks/providers/7/tok-secret/status"


# --- Sinch SMS -------------------------------------------------------------------------


def sinch_sms() -> SinchSmsGateway:
    return SinchSmsGateway(
        config("sinch_sms", {"service_plan_id": PLAN, "region": "eu"}, {"api_token": "t" * 32})
    )


@respx.mock
async def test_sinch_sms_batches_one_text_per_request_with_bearer_token():
    route = respx.post(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        side_effect=lambda request: httpx.Response(
            201,
            json={
                "id": f"01BATCH{len(json.loads(request.content)['to'])}",
                "to": json.loads(request.content)["to"],
            },
        )
    )
    results = await sinch_sms().submit(
        [msg(1, "+61400000001"), msg(2, "+61400000002"), msg(3, "+61400000003", body="Other")]
    )
    assert route.call_count == 2  # the two "Hello"s share a batch
    first = json.loads(route.calls[0].request.content)
    assert route.calls[0].request.headers["authorization"] == "Bearer " + "t" * 32
    assert first == {
        "to": ["+61400000001", "+61400000002"],
        "from": "Alpha",
        "body": "Hello",
        "type": "mt_text",
        "delivery_report": "per_recipient",
        "callback_url": STATUS_URL,
        "client_reference": "portal:1,2",
    }
    assert [(r.message_id, r.accepted, r.provider_ref) for r in results] == [
        (1, True, "01BATCH2:61400000001"),
        (2, True, "01BATCH2:61400000002"),
        (3, True, "01BATCH1:61400000003"),
    ]


@respx.mock
async def test_sinch_sms_caps_a_batch_at_100_recipients():
    route = respx.post(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        return_value=httpx.Response(201, json={"id": "01B"})
    )
    batch = [msg(i, f"+614000{i:05d}") for i in range(1, 151)]
    results = await sinch_sms().submit(batch)
    sizes = [len(json.loads(c.request.content)["to"]) for c in route.calls]
    assert sizes == [100, 50] and all(r.accepted for r in results)


@respx.mock
async def test_sinch_sms_refused_batch_is_split_until_the_bad_number_stands_alone():
    def answer(request: httpx.Request) -> httpx.Response:
        if "+61499999999" in json.loads(request.content)["to"]:
            return httpx.Response(
                400, json={"code": "syntax_invalid_parameter_format", "text": "Invalid recipient"}
            )
        return httpx.Response(201, json={"id": "01OK"})

    respx.post(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(side_effect=answer)
    results = await sinch_sms().submit(
        [msg(1, "+61400000001"), msg(2, "+61499999999"), msg(3, "+61400000003")]
    )
    by_id = {r.message_id: r for r in results}
    assert by_id[1].accepted and by_id[3].accepted
    assert not by_id[2].accepted and by_id[2].error_code == "sinch:syntax_invalid_parameter_format"


@respx.mock
async def test_sinch_sms_bad_token_fails_without_sending():
    respx.post(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        return_value=httpx.Response(401, json={"code": "unauthorized", "text": "Unauthorized"})
    )
    (result,) = await sinch_sms().submit([msg(1, "+61400000001")])
    assert result.not_submitted and result.error_code == "PROVIDER_AUTH_FAILED"


@respx.mock
async def test_sinch_sms_retries_429_and_503_then_succeeds():
    route = respx.post(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}, json={"code": "too_many_requests"}),
            httpx.Response(503),
            httpx.Response(201, json={"id": "01LATE"}),
        ]
    )
    (result,) = await sinch_sms().submit([msg(1, "+61400000001")])
    assert route.call_count == 3 and result.accepted


@respx.mock
async def test_sinch_sms_500_or_timeout_is_not_resent_blindly():
    route = respx.post(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        side_effect=[httpx.Response(500), httpx.ReadTimeout("slow")]
    )
    for _ in range(2):
        with pytest.raises(TransientProviderError):
            await sinch_sms().submit([msg(1, "+61400000001")])
    # one call each: the batch may have gone out, so the dispatcher looks it up first
    assert route.call_count == 2


@respx.mock
async def test_sinch_sms_lookup_finds_messages_by_client_reference():
    route = respx.get(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        return_value=httpx.Response(
            200,
            json={
                "count": 2,
                "page": 0,
                "page_size": 2,
                "batches": [
                    {
                        "id": "01A",
                        "to": ["61400000001", "61400000002"],
                        "client_reference": "portal:11,12",
                    },
                    {"id": "01B", "to": ["61400000003"], "client_reference": "someone-else"},
                ],
            },
        )
    )
    found = await sinch_sms().lookup([msg(12, "+61400000002"), msg(13, "+61400000003")])
    assert found == {12: "01A:61400000002"}
    assert "start_date" in route.calls[0].request.url.params


def test_sinch_sms_delivery_reports_map_to_our_statuses_with_codes_kept():
    gateway = sinch_sms()
    body = json.dumps(
        [
            {
                "type": "recipient_delivery_report_sms",
                "batch_id": "01A",
                "recipient": "61400000001",
                "code": 0,
                "status": "Delivered",
                "at": "2026-01-01T10:00:00.000Z",
                "client_reference": "portal:11,12",
            },
            {
                "type": "recipient_delivery_report_sms",
                "batch_id": "01A",
                "recipient": "61400000002",
                "code": 404,
                "status": "Failed",
                "at": "2026-01-01T10:00:01.000Z",
                "client_reference": "portal:11,12",
            },
            {
                "type": "recipient_delivery_report_sms",
                "batch_id": "01A",
                "recipient": "1",
                "code": 400,
                "status": "Queued",
            },
        ]
    ).encode()
    events = gateway.parse_status(CallbackRequest(STATUS_URL, {}, body, {}))
    assert [(e.status, e.recipient, e.error_code, e.candidates) for e in events] == [
        ("delivered", "+61400000001", None, (11, 12)),
        ("failed", "+61400000002", "sinch:404", (11, 12)),
    ]
    assert events[1].provider_ref == "01A:61400000002"


@respx.mock
async def test_sinch_sms_test_connection_reads_the_batch_list():
    respx.get(f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}/batches").mock(
        side_effect=[httpx.Response(200, json={"count": 4, "batches": []}), httpx.Response(401)]
    )
    ok = await sinch_sms().test_connection()
    assert ok.ok and "4 batches" in ok.message and "(EU)" in ok.message
    bad = await sinch_sms().test_connection()
    assert not bad.ok and "API token" in bad.message


# --- Sinch Conversation API --------------------------------------------------------------

PROJECT = "123e4567-e89b-12d3-a456-426614174000"
APP = "01E8A5B6C7D8E9F0A1B2C3D4E5"
KEY = "223e4567-e89b-12d3-a456-426614174000"


def conversation(webhook_secret: str = "") -> SinchConversationGateway:
    secrets = {"key_secret": "s3cret-value"}
    if webhook_secret:
        secrets["webhook_secret"] = webhook_secret
    return SinchConversationGateway(
        config(
            "sinch_conversation",
            {"project_id": PROJECT, "app_id": APP, "key_id": KEY, "region": "us"},
            secrets,
        )
    )


@respx.mock
async def test_conversation_api_uses_one_oauth_token_and_one_request_per_message():
    token = respx.post("https://auth.sinch.com/oauth2/token").mock(
        return_value=httpx.Response(
            200,
            json={"access_token": "tok-1", "expires_in": 3599, "scope": "", "token_type": "bearer"},
        )
    )
    send = respx.post(
        f"https://us.conversation.api.sinch.com/v1/projects/{PROJECT}/messages:send"
    ).mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={
                "message_id": "M-" + json.loads(request.content)["correlation_id"],
                "accepted_time": "2026-01-01T00:00:00Z",
            },
        )
    )
    gateway = conversation()
    results = await gateway.submit(
        [msg(5, "+61400000005", channel="rcs"), msg(6, "+61400000006", channel="whatsapp")]
    )
    assert token.call_count == 1
    assert (
        token.calls[0].request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{KEY}:s3cret-value".encode()).decode()
    )
    assert parse_qs(token.calls[0].request.content.decode()) == {
        "grant_type": ["client_credentials"]
    }
    sent = [json.loads(c.request.content) for c in send.calls]
    assert {s["recipient"]["identified_by"]["channel_identities"][0]["channel"] for s in sent} == {
        "RCS",
        "WHATSAPP",
    }
    assert all(c.request.headers["authorization"] == "Bearer tok-1" for c in send.calls)
    first = next(s for s in sent if s["correlation_id"] == "5")
    assert first["app_id"] == APP and first["message"] == {"text_message": {"text": "Hello"}}
    assert first["callback_url"] == STATUS_URL
    assert sorted((r.message_id, r.provider_ref) for r in results) == [(5, "M-5"), (6, "M-6")]


@respx.mock
async def test_conversation_api_renews_an_expired_token_once():
    respx.post("https://auth.sinch.com/oauth2/token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "old", "expires_in": 3599}),
            httpx.Response(200, json={"access_token": "new", "expires_in": 3599}),
        ]
    )
    send = respx.post(
        f"https://us.conversation.api.sinch.com/v1/projects/{PROJECT}/messages:send"
    ).mock(
        side_effect=[
            httpx.Response(
                401,
                json={"error": {"code": 401, "message": "expired", "status": "UNAUTHENTICATED"}},
            ),
            httpx.Response(200, json={"message_id": "M1"}),
        ]
    )
    (result,) = await conversation().submit([msg(1, "+61400000001", channel="rcs")])
    assert result.accepted and send.calls[1].request.headers["authorization"] == "Bearer new"


@respx.mock
async def test_conversation_api_error_body_keeps_sinch_status_as_code():
    respx.post("https://auth.sinch.com/oauth2/token").mock(
        return_value=httpx.Response(200, json={"access_token": "t", "expires_in": 3599})
    )
    respx.post(f"https://us.conversation.api.sinch.com/v1/projects/{PROJECT}/messages:send").mock(
        return_value=httpx.Response(
            400,
            json={
                "error": {
                    "code": 400,
                    "message": "bad identity",
                    "status": "INVALID_ARGUMENT",
                    "details": [],
                }
            },
        )
    )
    (result,) = await conversation().submit([msg(1, "+61400000001", channel="whatsapp")])
    assert not result.accepted and result.error_code == "sinch:INVALID_ARGUMENT"


def test_conversation_callbacks_are_checked_with_the_webhook_hmac():
    gateway = conversation(webhook_secret="foo_secret1234")
    body = json.dumps(
        {
            "app_id": APP,
            "event_time": "2026-01-01T10:00:00Z",
            "correlation_id": "42",
            "message_delivery_report": {
                "message_id": "M42",
                "status": "FAILED",
                "reason": {"code": "RECIPIENT_NOT_REACHABLE", "description": "unreachable"},
                "metadata": "portal:42",
            },
        }
    ).encode()
    nonce, stamp = "01FJA8B4A7BM43YGWSG9GBV067", str(int(time.time()))
    signed = base64.b64encode(
        hmac.new(b"foo_secret1234", body + f".{nonce}.{stamp}".encode(), hashlib.sha256).digest()
    ).decode()
    headers = {
        "x-sinch-webhook-signature": signed,
        "x-sinch-webhook-signature-nonce": nonce,
        "x-sinch-webhook-signature-timestamp": stamp,
        "x-sinch-webhook-signature-algorithm": "HmacSHA256",
    }
    request = CallbackRequest(STATUS_URL, headers, body, {})
    gateway.verify(request)
    (event,) = gateway.parse_status(request)
    assert (event.message_id, event.status, event.error_code) == (
        42,
        "failed",
        "RECIPIENT_NOT_REACHABLE",
    )
    from tenants.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        gateway.verify(CallbackRequest(STATUS_URL, headers, body + b" ", {}))


# --- MessageMedia ----------------------------------------------------------------------


def messagemedia() -> MessageMediaGateway:
    return MessageMediaGateway(
        config("messagemedia", {"api_key": "KEY12345"}, {"api_secret": "SECRET123"})
    )


@respx.mock
async def test_messagemedia_sends_up_to_100_messages_per_request_with_basic_auth():
    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["messages"]
        return httpx.Response(
            202,
            json={
                "messages": [
                    {
                        **m,
                        "message_id": f"uuid-{m['metadata']['portal_message_id']}",
                        "status": "queued",
                    }
                    for m in sent
                ]
            },
        )

    route = respx.post("https://api.messagemedia.com/v1/messages").mock(side_effect=answer)
    results = await messagemedia().submit([msg(i, f"+614000{i:05d}") for i in range(1, 151)])
    assert [len(json.loads(c.request.content)["messages"]) for c in route.calls] == [100, 50]
    assert (
        route.calls[0].request.headers["authorization"]
        == "Basic " + base64.b64encode(b"KEY12345:SECRET123").decode()
    )
    first = json.loads(route.calls[0].request.content)["messages"][0]
    assert first == {
        "content": "Hello",
        "destination_number": "+61400000001",
        "format": "SMS",
        "delivery_report": True,
        "callback_url": STATUS_URL,
        "metadata": {"portal_message_id": "1"},
        "source_number": "Alpha",
        "source_number_type": "ALPHANUMERIC",
    }
    assert results[0].provider_ref == "uuid-1" and all(r.accepted for r in results)


@respx.mock
async def test_messagemedia_invalid_request_is_split_and_only_the_bad_message_rejected():
    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["messages"]
        if any(m["destination_number"] == "+999" for m in sent):
            return httpx.Response(
                400, json={"message": "Invalid message format", "details": ["destination_number"]}
            )
        return httpx.Response(202, json={"messages": [{**m, "message_id": "u"} for m in sent]})

    respx.post("https://api.messagemedia.com/v1/messages").mock(side_effect=answer)
    results = {
        r.message_id: r
        for r in await messagemedia().submit([msg(1, "+61400000001"), msg(2, "+999")])
    }
    assert results[1].accepted
    assert not results[2].accepted and results[2].error_code == "messagemedia:400"


@respx.mock
async def test_messagemedia_403_fails_the_messages_without_sending():
    respx.post("https://api.messagemedia.com/v1/messages").mock(return_value=httpx.Response(403))
    (result,) = await messagemedia().submit([msg(1, "+61400000001")])
    assert result.not_submitted and result.error_code == "PROVIDER_REFUSED"


def test_messagemedia_delivery_reports_and_replies_are_read():
    gateway = messagemedia()
    report = json.dumps(
        {
            "delivery_report_id": "dr-1",
            "message_id": "uuid-9",
            "status": "undeliverable",
            "submitted_date": "2026-01-01T10:00:00.000Z",
            "metadata": {"portal_message_id": "9"},
        }
    ).encode()
    (event,) = gateway.parse_status(CallbackRequest(STATUS_URL, {}, report, {}))
    assert (event.message_id, event.status, event.error_code) == (
        9,
        "failed",
        "messagemedia:undeliverable",
    )
    reply = json.dumps(
        {
            "reply_id": "r-1",
            "message_id": "uuid-9",
            "content": "STOP",
            "source_number": "+61400000009",
            "destination_number": "+61480000000",
            "date_received": "2026-01-01T10:01:00.000Z",
        }
    ).encode()
    (inbound,) = gateway.parse_inbound(CallbackRequest(STATUS_URL, {}, reply, {}))
    assert (inbound.sender, inbound.to, inbound.body, inbound.provider_ref) == (
        "+61400000009",
        "+61480000000",
        "STOP",
        "r-1",
    )


# --- Twilio --------------------------------------------------------------------------------


def twilio(**settings: str) -> TwilioGateway:
    return TwilioGateway(config("twilio", {"account_sid": SID, **settings}, {"auth_token": TOKEN}))


MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


@respx.mock
async def test_twilio_posts_one_form_per_message_with_basic_auth():
    route = respx.post(MESSAGES_URL).mock(
        side_effect=lambda request: httpx.Response(
            201,
            json={
                "sid": "SM" + parse_qs(request.content.decode())["To"][0][-4:],
                "status": "queued",
            },
        )
    )
    results = await twilio().submit(
        [msg(1, "+61400000001"), msg(2, "+61400000002", sender="+15005550006", channel="whatsapp")]
    )
    forms = {c.request.url.path: None for c in route.calls}
    assert forms and route.call_count == 2
    sent = sorted(
        (parse_qs(c.request.content.decode()) for c in route.calls), key=lambda f: f["To"][0]
    )
    assert sent[0] == {
        "To": ["+61400000001"],
        "Body": ["Hello"],
        "StatusCallback": [f"{STATUS_URL}?ref=1"],
        "From": ["Alpha"],
    }
    assert sent[1]["To"] == ["whatsapp:+61400000002"] and sent[1]["From"] == [
        "whatsapp:+15005550006"
    ]
    assert route.calls[0].request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (
        route.calls[0].request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    assert sorted((r.message_id, r.provider_ref) for r in results) == [(1, "SM0001"), (2, "SM0002")]


@respx.mock
async def test_twilio_error_bodies_become_rejected_with_twilio_codes():
    respx.post(MESSAGES_URL).mock(
        return_value=httpx.Response(
            400,
            json={
                "code": 21211,
                "message": "The 'To' number +61 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        )
    )
    (result,) = await twilio().submit([msg(1, "+61")])
    assert not result.accepted and result.error_code == "twilio:21211"
    from tenants.providers.codes import explain_error

    assert "not a valid phone number" in explain_error(result.error_code)


@respx.mock
async def test_twilio_429_is_retried_and_a_timeout_hands_the_message_back():
    route = respx.post(MESSAGES_URL).mock(
        side_effect=[
            httpx.Response(
                429, json={"code": 20429, "message": "Too Many Requests", "status": 429}
            ),
            httpx.Response(201, json={"sid": "SM1"}),
            httpx.ReadTimeout("slow"),
        ]
    )
    (first,) = await twilio().submit([msg(1, "+61400000001")])
    assert first.accepted and route.call_count == 2
    with pytest.raises(TransientProviderError):
        await twilio().submit([msg(2, "+61400000002")])
    assert route.call_count == 3  # the timed-out request was not repeated


@respx.mock
async def test_twilio_messaging_service_and_missing_sender():
    route = respx.post(MESSAGES_URL).mock(return_value=httpx.Response(201, json={"sid": "SM9"}))
    service = "MG" + "b" * 32
    (ok,) = await twilio(messaging_service_sid=service).submit([msg(1, "+61400000001", sender="")])
    assert ok.accepted and parse_qs(route.calls[0].request.content.decode())[
        "MessagingServiceSid"
    ] == [service]
    (refused,) = await twilio().submit([msg(2, "+61400000002", sender="")])
    assert refused.error_code == "INVALID_SENDER" and route.call_count == 1


def _twilio_signature(url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_twilio_status_callback_needs_a_valid_signature_and_keeps_the_error_code():
    from tenants.errors import PermissionDenied

    gateway = twilio()
    url = f"{STATUS_URL}?ref=77"
    form = {
        "MessageSid": "SM77",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": SID,
        "To": "+61400000077",
        "From": "Alpha",
    }
    signed = CallbackRequest(
        url, {"x-twilio-signature": _twilio_signature(url, form)}, urlencode(form).encode(), form
    )
    gateway.verify(signed)
    (event,) = gateway.parse_status(signed)
    assert (event.message_id, event.status, event.error_code, event.provider_ref) == (
        77,
        "failed",
        "twilio:30003",
        "SM77",
    )
    forged = CallbackRequest(
        url,
        {"x-twilio-signature": _twilio_signature(url, {**form, "MessageStatus": "delivered"})},
        b"",
        form,
    )
    with pytest.raises(PermissionDenied):
        gateway.verify(forged)
    with pytest.raises(PermissionDenied):
        gateway.verify(CallbackRequest(url, {}, b"", form))


@respx.mock
async def test_twilio_lookup_fetches_the_messages_own_sid_never_its_text():
    # Twilio keeps no client reference: the SID (from its answer or a callback naming the
    # message by ?ref=) is the message's own reference; the same text proves nothing.
    listing = respx.get(MESSAGES_URL).mock(
        return_value=httpx.Response(200, json={"messages": [{"sid": "SMother", "body": "Hello"}]})
    )
    base = MESSAGES_URL.removesuffix(".json")
    respx.get(f"{base}/SMhit.json").mock(return_value=httpx.Response(200, json={"sid": "SMhit"}))
    respx.get(f"{base}/SMgone.json").mock(return_value=httpx.Response(404, json={"code": 20404}))
    known = OutboundMessage(3, "+61400000003", "Alpha", "Hello", "sms", 1, provider_ref="SMhit")
    gone = OutboundMessage(4, "+61400000003", "Alpha", "Hello", "sms", 1, provider_ref="SMgone")
    assert await twilio().lookup([known, gone, msg(5, "+61400000003")]) == {3: "SMhit"}
    assert not listing.called


@respx.mock
async def test_twilio_test_connection_reads_the_account():
    respx.get(f"https://api.twilio.com/2010-04-01/Accounts/{SID}.json").mock(
        side_effect=[
            httpx.Response(200, json={"friendly_name": "Acme", "status": "active", "sid": SID}),
            httpx.Response(401, json={"code": 20003, "message": "Authenticate", "status": 401}),
        ]
    )
    assert (
        await twilio().test_connection()
    ).message == "Connected to Twilio account Acme (active)."
    failed = await twilio().test_connection()
    assert not failed.ok and "auth token" in failed.message


# --- the built-in simulator ------------------------------------------------------------


@respx.mock
async def test_simulator_gateway_talks_to_simulator_url_and_names_the_portal_for_callbacks(
    settings_env,
):
    settings_env(SIMULATOR_URL="http://127.0.0.1:9123/", PORTAL_BASE_URL="http://portal.test")
    submitted = respx.post("http://127.0.0.1:9123/api/messages").respond(
        json={"results": [{"reference": "5", "accepted": True, "provider_ref": "sim_1"}]}
    )
    looked_up = respx.post("http://127.0.0.1:9123/api/lookup").respond(
        json={"found": {"5": "sim_1"}, "statuses": {}}
    )
    gateway = SimulatorGateway.from_settings()
    (result,) = await gateway.submit([msg(5, "+61400000001")])
    assert (result.message_id, result.accepted, result.provider_ref) == (5, True, "sim_1")
    body = json.loads(submitted.calls.last.request.content)
    assert body["callback_url"] == "http://portal.test/hooks/simulator/status"
    assert submitted.calls.last.request.headers["X-Simulator-Secret"] == "simulator-secret"
    assert await gateway.lookup([msg(5, "+61400000001")]) == {5: "sim_1"}
    assert looked_up.called


@respx.mock
async def test_simulator_gateway_uses_the_portals_own_mount_without_simulator_url(
    settings_env,
):
    settings_env(SIMULATOR_URL=None, PORTAL_BASE_URL="http://portal.test")
    submitted = respx.post("http://portal.test/simulator/api/messages").respond(
        json={"results": [{"reference": "6", "accepted": False, "error_code": "X"}]}
    )
    (result,) = await SimulatorGateway.from_settings().submit([msg(6, "+61400000002")])
    assert (result.accepted, result.error_code) == (False, "X")
    assert submitted.called
