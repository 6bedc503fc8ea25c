"""What each gateway's parse_inbound reads from its provider's inbound callback: the
channel it came on (sms, mms, whatsapp, rcs), its media URLs and the provider's id."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from tasks.gateways.http import CallbackRequest
from tasks.gateways.messagemedia import MessageMediaGateway
from tasks.gateways.sinch import SinchConversationGateway, SinchSmsGateway
from tasks.gateways.twilio import TwilioGateway
from tests.emulators.test_emulators import config

URL = "http://testserver.local/hooks/providers/7/tok-secret/inbound"


def form_request(params: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(URL, {}, urlencode(params).encode(), params)


def json_request(data: object) -> CallbackRequest:
    return CallbackRequest(URL, {}, json.dumps(data).encode(), {})


def twilio() -> TwilioGateway:
    return TwilioGateway(
        config("twilio", {"account_sid": "AC" + "a" * 32}, {"auth_token": "f" * 32})
    )


def test_twilio_reads_whatsapp_and_mms_with_their_media():
    base = {"MessageSid": "SM1", "From": "+61412345678", "To": "+61480000000", "Body": "hi"}
    (sms,) = twilio().parse_inbound(form_request(base))
    assert (sms.channel, sms.media_urls, sms.provider_ref) == ("sms", (), "SM1")
    media = {
        "NumMedia": "2",
        "MediaUrl0": "https://a.example/0",
        "MediaUrl1": "https://a.example/1",
    }
    (mms,) = twilio().parse_inbound(form_request({**base, **media}))
    assert (mms.channel, mms.media_urls) == ("mms", ("https://a.example/0", "https://a.example/1"))
    wa = {**base, "From": "whatsapp:+61412345678", "To": "whatsapp:+61480000000"}
    (whatsapp,) = twilio().parse_inbound(form_request(wa))
    assert (whatsapp.channel, whatsapp.sender, whatsapp.to) == (
        "whatsapp",
        "+61412345678",
        "+61480000000",
    )


def test_sinch_sms_keeps_mms_replies_with_their_media():
    gateway = SinchSmsGateway(config("sinch_sms", {"service_plan_id": "p" * 8}, {"api_token": "t"}))
    mo_media = {
        "type": "mo_media",
        "id": "01MMS",
        "from": "61412345678",
        "to": "61480000000",
        "body": {"message": "look", "media": [{"url": "https://m.example/cat.jpg"}]},
    }
    mo_text = {
        "type": "mo_text",
        "id": "01TXT",
        "from": "61412345678",
        "to": "61480000000",
        "body": "hi",
    }
    mms, sms = gateway.parse_inbound(json_request([mo_media, mo_text]))
    assert (mms.channel, mms.body, mms.media_urls, mms.sender) == (
        "mms",
        "look",
        ("https://m.example/cat.jpg",),
        "+61412345678",
    )
    assert (sms.channel, sms.body, sms.provider_ref) == ("sms", "hi", "01TXT")


def test_sinch_conversation_keeps_the_channel_it_came_on():
    gateway = SinchConversationGateway(
        config("sinch_conversation", {"app_id": "A" * 26, "sender_id": "+61480000000"}, {})
    )

    def event(channel: str, contact: dict) -> CallbackRequest:
        message = {
            "id": f"id-{channel}",
            "direction": "TO_APP",
            "contact_message": contact,
            "channel_identity": {"channel": channel, "identity": "61412345678"},
        }
        return json_request({"message": message})

    text = {"text_message": {"text": "STOP"}}
    read = {
        ch: gateway.parse_inbound(event(ch, text))[0].channel for ch in ("SMS", "WHATSAPP", "RCS")
    }
    assert read == {"SMS": "sms", "WHATSAPP": "whatsapp", "RCS": "rcs"}
    (media,) = gateway.parse_inbound(
        event("WHATSAPP", {"media_message": {"url": "https://w.example/1"}})
    )
    assert (media.channel, media.media_urls, media.to) == (
        "whatsapp",
        ("https://w.example/1",),
        "+61480000000",
    )
    assert gateway.parse_inbound(event("MESSENGER", text)) == []  # a channel we do not offer


def test_messagemedia_replies_are_sms():
    gateway = MessageMediaGateway(
        config("messagemedia", {"api_key": "KEY12345"}, {"api_secret": "x"})
    )
    reply = {
        "reply_id": "r1",
        "source_number": "+61412345678",
        "destination_number": "+61480000000",
        "content": "STOP",
    }
    (report,) = gateway.parse_inbound(json_request(reply))
    assert (report.channel, report.body, report.provider_ref) == ("sms", "STOP", "r1")
