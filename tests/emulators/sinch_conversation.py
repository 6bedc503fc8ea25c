"""Sinch's Conversation API (v1, OAuth2 client credentials), emulated.

Sources read (github:sinch/sinch-sdk-python):
- sinch/domains/authentication/sinch_events/v1/authentication_validation.py: webhooks carry
  x-sinch-webhook-signature = base64(HMAC-SHA256(secret as UTF-8, "{raw body}.{nonce}.
  {timestamp}")), with x-sinch-webhook-signature-nonce and -timestamp (Unix seconds);
  tests/unit/domains/conversation/v1/sinch_events/test_conversation_sinch_event.py gives a
  known vector (secret foo_secret1234, nonce 01FJA8B4A7BM43YGWSG9GBV067, timestamp
  1634579353, signature Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk=), used in the tests;
- sinch/domains/conversation/models/v1/sinch_events/events/*.py: the event envelope
  (app_id, project_id, accepted_time, event_time, message_metadata, correlation_id), the
  message_delivery_report (message_id, conversation_id, status QUEUED_ON_CHANNEL /
  DELIVERED / READ / FAILED / SWITCHING_CHANNEL, channel_identity, contact_id, metadata,
  processing_mode, reason) and message_inbound (message.contact_message, ...);
- .../messages/internal/request/send_message_request.py: callback_url "Overwrites the
  default event destination target for delivery receipts for this message". The SDK
  docs (developers.sinch.com/sdk/sinch-sdk-node/1.5.0/interfaces/
  Conversation.CallbackSettings.html) add that such receipts are signed with the app's
  callback_settings.secret_for_overridden_callback_urls, not with the webhook's secret:
  this emulator keeps the two secrets apart (`webhook_secret`, `override_secret`).

Rich messages (developers.sinch.com/docs/conversation/channel-support/whatsapp/
template-support, .../message-types card_message and choices, the SDK's TemplateMessage /
ChannelSpecificTemplateReference models): a WhatsApp template is template_message.
channel_template.WHATSAPP {template_id: the template's name, language_code in the
underscored form (en_US; required for WhatsApp), parameters keyed
<component>[<index>]<field> such as body[1]text, every value a string}; a card_message has
a title and/or description, optional media_message.url, height, and choices, each one of
text_message (a suggested reply, with postback_data), url_message {title, url},
call_message {title, phone_number} or location_message; RCS takes at most 4 suggestions on
a card. explicit_channel_message maps a channel of the app to the string sent on it instead
of the transcoded message (the SMS fallback text). A delivery report names the channel
that carried the message in channel_identity.channel (SMS after a fallback from RCS). A tap
on a suggestion comes back as contact_message.choice_response_message {message_id,
postback_data}.

WhatsApp template approvals (Provisioning API, developers.sinch.com/docs/provisioning-api/
api-reference/provisioning-api/whatsapp-templates): GET https://provisioning.api.sinch.com/
v1/projects/{projectId}/whatsapp/templates with Basic or Bearer auth, query pageToken,
pageSize (1 to 1000), fieldMask, filterStates, filterStatuses and templateName; the answer
is {totalSize, pageSize, previousPageToken, nextPageToken, templates: [{whatsappId, state
(APPROVED, DISABLED, PAUSED, REJECTED), name, language (the upper-case enum: EN, EN_US...),
category, rejectionCode (when REJECTED), qualityScore, changes {status DRAFT / IN_PROGRESS
/ REJECTED, allowCategoryChange, details}, details {components}}]}; `changes` empty once
the changes were approved and applied. Only the list is emulated (add_template fills it).

Checked: token POST https://auth.sinch.com/oauth2/token with HTTP Basic (key id, key
secret) and form grant_type=client_credentials; API host {region}.conversation.api.sinch
.com of the app's region; Bearer = an issued, unexpired token; path project id; JSON body
with app_id of this app, recipient.identified_by.channel_identities [{channel, identity}]
(or recipient.contact_id), a message with exactly one kind (text_message.text a
non-empty string), channel names and channel_priority_order among the app's channels,
callback_url an http(s) URL. The docs I read do not say whether identities carry a "+",
nor the maximum lengths of correlation_id / message_metadata: not checked. Whether the
send request's message_metadata comes back as message_delivery_report.metadata or as the
envelope's message_metadata is not stated in what I read: the emulator puts it in both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.emulators.base import Emulator, Request, Response, Target, url_ok

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MESSAGE_KINDS = {
    "text_message",
    "media_message",
    "template_message",
    "choice_message",
    "card_message",
    "carousel_message",
    "location_message",
    "contact_info_message",
    "list_message",
}


def ulid() -> str:
    return "01" + "".join(secrets.choice(CROCKFORD) for _ in range(24))


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def sign(secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    signed = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def signature_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    nonce = ulid()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "x-sinch-webhook-signature": sign(secret, body, nonce, stamp),
        "x-sinch-webhook-signature-nonce": nonce,
        "x-sinch-webhook-signature-timestamp": stamp,
        "x-sinch-webhook-signature-algorithm": "HmacSHA256",
    }


TEMPLATE_PARAMETER = re.compile(
    r"(header|body)\[\d+\]text|button\[\d+\](quick_reply|url)\[\d+\](payload|text)"
)
MAX_CARD_CHOICES = 4


def _template_problem(template: Any) -> str | None:
    whatsapp = ((template or {}).get("channel_template") or {}).get("WHATSAPP")
    if not isinstance(whatsapp, dict):
        return "template_message: channel_template.WHATSAPP or omni_template"
    if not whatsapp.get("template_id"):
        return "template_message.channel_template.WHATSAPP.template_id: the template's name"
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z][A-Za-z]{1,3})?", str(whatsapp.get("language_code"))):
        return "WHATSAPP templates need language_code in the underscored form (en_US)"
    parameters = whatsapp.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(
        TEMPLATE_PARAMETER.fullmatch(str(k)) and isinstance(v, str) for k, v in parameters.items()
    ):
        return f"template parameters: keys like body[1]text with string values, not {parameters!r}"
    return None


def _card_problem(card: Any) -> str | None:
    if not isinstance(card, dict) or not (card.get("title") or card.get("description")):
        return "card_message: a title or a description"
    media = card.get("media_message")
    if media is not None and not url_ok(str((media or {}).get("url"))):
        return "card_message.media_message.url: a URL"
    choices = card.get("choices") or []
    if len(choices) > MAX_CARD_CHOICES:
        return f"card_message.choices: RCS takes at most {MAX_CARD_CHOICES}"
    kinds = {"text_message", "url_message", "call_message", "location_message"}
    for choice in choices:
        kind = set(choice) - {"postback_data"}
        if len(kind) != 1 or not kind <= kinds:
            return f"a choice is exactly one of {sorted(kinds)}: {choice!r}"
        (name,) = kind
        body = choice[name] or {}
        if name == "url_message" and not (body.get("title") and url_ok(str(body.get("url")))):
            return "url_message: title and url"
        if name == "call_message" and not (body.get("title") and body.get("phone_number")):
            return "call_message: title and phone_number"
        if name == "text_message" and not body.get("text"):
            return "a suggested reply needs text_message.text"
    return None


def rich_problem(message: dict[str, Any], channels: frozenset[str]) -> str | None:
    """What is wrong with a template, card or explicit channel message, as Sinch documents."""
    if "template_message" in message:
        return _template_problem(message["template_message"])
    if "card_message" in message:
        problem = _card_problem(message["card_message"])
        if problem:
            return problem
    explicit = message.get("explicit_channel_message")
    if explicit is not None and (
        not isinstance(explicit, dict)
        or set(explicit) - channels
        or not all(isinstance(v, str) and v for v in explicit.values())
    ):
        return "explicit_channel_message: {channel of the app: non-empty string}"
    return None


def _error(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": reason, "details": []}}


@dataclass
class ConversationMessage:
    id: str
    channel: str
    identity: str
    text: str
    correlation_id: str | None
    metadata: str | None
    callback_url: str | None
    accepted: datetime
    payload: dict[str, Any]
    status: str = "QUEUED"
    conversation_id: str = ""
    contact_id: str = ""

    def resource(self, app_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": "TO_CONTACT",
            "app_message": {"text_message": {"text": self.text}},
            "channel_identity": {"channel": self.channel, "identity": self.identity, "app_id": ""},
            "conversation_id": self.conversation_id,
            "contact_id": self.contact_id,
            "metadata": self.metadata or "",
            "accept_time": iso(self.accepted),
            "processing_mode": "DISPATCH",
            "injected": False,
            "app_id": app_id,
        }


class SinchConversationEmulator(Emulator):
    name = "Sinch Conversation API"

    def __init__(
        self,
        project_id: str,
        app_id: str,
        key_id: str,
        key_secret: str,
        *,
        region: str = "eu",
        channels: frozenset[str] = frozenset({"SMS", "WHATSAPP", "RCS"}),
        webhook_secret: str | None = None,
        override_secret: str | None = None,
        token_lifetime: int = 3599,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.app_id = app_id
        self.key_id = key_id
        self.key_secret = key_secret
        self.region = region
        self.channels = channels
        self.webhook_secret = webhook_secret
        self.override_secret = override_secret
        self.token_lifetime = token_lifetime
        self.tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self.accepted: list[ConversationMessage] = []
        self.route("POST", r"auth\.sinch\.com", "/oauth2/token", self.token)
        host = r"(?P<region>[a-z]+)\.conversation\.api\.sinch\.com"
        base = r"/v1/projects/(?P<project>[^/]+)"
        self.route("POST", host, base + "/messages:send", self.send)
        self.route("GET", host, base + "/messages", self.list)
        self.route("GET", host, base + r"/messages/(?P<mid>[^/:]+)", self.fetch)
        self.route("GET", host, base + r"/apps/(?P<app>[^/]+)", self.app)
        self.wa_templates: list[dict[str, Any]] = []
        self.route(
            "GET", r"provisioning\.api\.sinch\.com", base + "/whatsapp/templates", self.templates
        )

    # --- auth ------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        if request.basic_auth() != (self.key_id, self.key_secret):
            return self.violation(
                401,
                {"error": "invalid_client", "error_description": "bad client credentials"},
                "Sinch auth: bad key id / secret",
            )
        form = request.form()
        if request.content_type != "application/x-www-form-urlencoded" or form.get(
            "grant_type"
        ) != ["client_credentials"]:
            return self.violation(
                400,
                {"error": "unsupported_grant_type", "error_description": "client_credentials"},
                "Sinch auth: grant_type=client_credentials (form) expected",
            )
        value = secrets.token_urlsafe(32)
        self.tokens[value] = time.time() + self.token_lifetime
        return Response(
            200,
            {
                "access_token": value,
                "expires_in": self.token_lifetime,
                "scope": "",
                "token_type": "bearer",
            },
        )

    def expire_tokens(self) -> None:
        """Make every issued token expired (the next call gets a 401)."""
        self.tokens = {token: 0.0 for token in self.tokens}

    def _auth(self, request: Request, region: str, project: str) -> Response | None:
        token = request.bearer()
        if token is None or self.tokens.get(token, 0.0) <= time.time():
            # An expired token is the client's normal life, not a shape violation.
            body = _error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
            if token is None or token not in self.tokens:
                return self.violation(401, body, "Sinch Conversation: no or unknown Bearer token")
            return Response(401, body)
        if region != self.region or project != self.project_id:
            return self.violation(
                404,
                _error(404, "NOT_FOUND", "project not found"),
                f"Sinch Conversation: project {project} in region {region}",
            )
        return None

    # --- API -------------------------------------------------------------------------------

    def _bad(self, message: str) -> Response:
        return self.violation(
            400, _error(400, "INVALID_ARGUMENT", message), f"Sinch Conversation: {message}"
        )

    def send(self, request: Request, region: str, project: str) -> Response:
        refused = self._auth(request, region, project)
        if refused:
            return refused
        try:
            data = request.json()
        except ValueError:
            return self._bad("body is not JSON")
        if request.content_type != "application/json" or not isinstance(data, dict):
            return self._bad("send a JSON object")
        if data.get("app_id") != self.app_id:
            return self._bad(f"unknown app_id {data.get('app_id')!r}")
        recipient = data.get("recipient") or {}
        identities = (recipient.get("identified_by") or {}).get("channel_identities")
        if not identities and not recipient.get("contact_id"):
            return self._bad("recipient: identified_by.channel_identities or contact_id")
        if identities:
            if not isinstance(identities, list) or not all(
                isinstance(i, dict) and i.get("channel") and i.get("identity") for i in identities
            ):
                return self._bad("channel_identities: [{channel, identity}]")
            unknown = {i["channel"] for i in identities} - self.channels
            if unknown:
                return self._bad(f"channels not configured on the app: {sorted(unknown)}")
        message = data.get("message")
        kinds = set(message) & MESSAGE_KINDS if isinstance(message, dict) else set()
        if len(kinds) != 1 or set(message) - MESSAGE_KINDS - {"explicit_channel_message"}:
            return self._bad("message: exactly one message kind")
        if kinds == {"text_message"}:
            text = (message["text_message"] or {}).get("text")
            if not isinstance(text, str) or not text:
                return self._bad("text_message.text: required")
        else:
            text = ""
        problem = rich_problem(message, self.channels)
        if problem:
            return self._bad(problem)
        order = data.get("channel_priority_order")
        if order is not None and (not isinstance(order, list) or set(order) - self.channels):
            return self._bad(f"channel_priority_order: {order!r}")
        callback = data.get("callback_url")
        if callback is not None and not url_ok(str(callback)):
            return self._bad("callback_url: not a URL")
        known = {
            "app_id", "recipient", "message", "callback_url", "channel_priority_order",
            "channel_properties", "message_metadata", "conversation_metadata", "queue",
            "ttl", "processing_strategy", "correlation_id", "conversation_metadata_update_strategy",
            "message_content_type",
        }  # fmt: skip
        if set(data) - known:
            self.violations.append(
                f"Sinch Conversation: unknown fields {sorted(set(data) - known)}"
            )
        first = (identities or [{"channel": "SMS", "identity": ""}])[0]
        channel = (order or [first["channel"]])[0]
        identity = next((i["identity"] for i in identities or [] if i["channel"] == channel), "")
        now = datetime.now(UTC)
        record = ConversationMessage(
            id=ulid(),
            channel=channel,
            identity=identity,
            text=text,
            correlation_id=data.get("correlation_id"),
            metadata=data.get("message_metadata"),
            callback_url=callback,
            accepted=now,
            payload=data,
            conversation_id=ulid(),
            contact_id=ulid(),
        )
        self.accepted.append(record)
        return Response(200, {"accepted_time": iso(now), "message_id": record.id})

    def list(self, request: Request, region: str, project: str) -> Response:
        refused = self._auth(request, region, project)
        if refused:
            return refused
        query = {k: v[-1] for k, v in request.query.items()}
        found = [
            m
            for m in reversed(self.accepted)
            if ("app_id" not in query or query["app_id"] == self.app_id)
            and ("channel_identity" not in query or m.identity == query["channel_identity"])
            and (
                "start_time" not in query
                or m.accepted >= datetime.fromisoformat(query["start_time"].replace("Z", "+00:00"))
            )
        ][: int(query.get("page_size") or 10)]
        return Response(
            200,
            {
                "messages": [m.resource(self.app_id) for m in found],
                "next_page_token": "",
                "total_size": len(found),
            },
        )

    def message(self, mid: str) -> ConversationMessage | None:
        return next((m for m in self.accepted if m.id == mid), None)

    def fetch(self, request: Request, region: str, project: str, mid: str) -> Response:
        refused = self._auth(request, region, project)
        if refused:
            return refused
        found = self.message(mid)
        if found is None:
            return Response(404, _error(404, "NOT_FOUND", f"message {mid} not found"))
        return Response(200, found.resource(self.app_id))

    def app(self, request: Request, region: str, project: str, app: str) -> Response:
        refused = self._auth(request, region, project)
        if refused:
            return refused
        if app != self.app_id:
            return Response(404, _error(404, "NOT_FOUND", f"app {app} not found"))
        return Response(
            200,
            {
                "id": self.app_id,
                "display_name": "Emulated app",
                "channel_credentials": [{"channel": c} for c in sorted(self.channels)],
                "processing_mode": "DISPATCH",
            },
        )

    # --- Provisioning API: WhatsApp templates ----------------------------------------------

    def add_template(
        self,
        name: str,
        language: str,
        *,
        state: str | None = None,
        changes_status: str | None = None,
        rejection_code: str | None = None,
    ) -> dict[str, Any]:
        """A template of the project as the list shows it (state: WhatsApp's verdict;
        changes_status: a submission still under review)."""
        item: dict[str, Any] = {
            "whatsappId": str(1_000_000 + len(self.wa_templates)),
            "name": name,
            "language": language.upper(),
            "category": "UTILITY",
            "qualityScore": "QUALITY_SCORE_UNKNOWN",
            "details": {"components": [{"type": "BODY", "text": "Hello {{1}}"}]},
        }
        if state is not None:
            item["state"] = state
        if rejection_code is not None:
            item["rejectionCode"] = rejection_code
        if changes_status is not None:
            item["changes"] = {"status": changes_status, "allowCategoryChange": False}
        self.wa_templates.append(item)
        return item

    def templates(self, request: Request, project: str) -> Response:
        refused = self._auth(request, self.region, project)
        if refused:
            return refused
        size = (request.query.get("pageSize") or ["50"])[0]
        if not size.isdigit() or not 1 <= int(size) <= 1000:
            return self._bad("pageSize: 1 to 1000")
        wanted = (request.query.get("templateName") or [None])[0]
        items = [t for t in self.wa_templates if wanted in (None, t["name"])]
        return Response(
            200,
            {
                "totalSize": len(items),
                "pageSize": int(size),
                "previousPageToken": "",
                "nextPageToken": "",
                "templates": items[: int(size)],
            },
        )

    # --- callbacks -------------------------------------------------------------------------

    def _envelope(self, now: datetime) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "accepted_time": iso(now),
            "event_time": iso(now),
            "project_id": self.project_id,
        }

    async def _post(
        self, target: Target, url: str, event: dict[str, Any], secret: str | None
    ) -> httpx.Response:
        content = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        if secret:
            headers.update(signature_headers(secret, content))
        return await self.deliver(target, url, content=content, headers=headers)

    async def post_status(
        self,
        target: Target,
        message_id: str,
        status: str,
        *,
        reason: str | None = None,
        at: datetime | None = None,
        webhook_url: str | None = None,
        channel: str | None = None,
    ) -> httpx.Response:
        """A message_delivery_report. It goes to the message's callback_url, signed with the
        override secret, or else to the app's webhook (`webhook_url`) with its secret."""
        found = self.message(message_id)
        if found is None:
            raise LookupError(message_id)
        found.status = status
        if channel is not None:  # e.g. SMS: the RCS card fell back
            order = found.payload.get("channel_priority_order") or [found.channel]
            if channel not in order:
                raise ValueError(f"{channel} is not in the message's channel_priority_order")
            found.channel = channel
        now = at or datetime.now(UTC)
        report: dict[str, Any] = {
            "message_id": found.id,
            "conversation_id": found.conversation_id,
            "status": status,
            "channel_identity": {
                "channel": found.channel,
                "identity": found.identity,
                "app_id": "",
            },
            "contact_id": found.contact_id,
            "metadata": found.metadata or "",
            "processing_mode": "DISPATCH",
        }
        if status == "FAILED":
            report["reason"] = {
                "code": reason or "RECIPIENT_NOT_REACHABLE",
                "description": "emulated failure",
                "sub_code": "UNSPECIFIED_SUB_CODE",
            }
        event = {
            **self._envelope(now),
            "message_delivery_report": report,
            "message_metadata": found.metadata or "",
            "correlation_id": found.correlation_id or "",
        }
        if found.callback_url:
            return await self._post(target, found.callback_url, event, self.override_secret)
        if not webhook_url:
            raise ValueError("the message has no callback_url: give the app's webhook_url")
        return await self._post(target, webhook_url, event, self.webhook_secret)

    async def post_inbound(
        self,
        target: Target,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        channel: str = "SMS",
        postback_data: str | None = None,
        in_reply_to: str | None = None,
    ) -> httpx.Response:
        """A message_inbound event to the app's webhook, signed with the webhook secret.
        `to` is not part of the event (the app is the recipient); it is accepted for a
        common signature with the other emulators."""
        channel = channel.upper()
        if channel not in self.channels:
            raise ValueError(f"{channel} is not configured on the app")
        now = datetime.now(UTC)
        contact_message: dict[str, Any] = {"text_message": {"text": body}}
        if postback_data is not None:  # a tap on a suggestion or a button
            contact_message = {
                "choice_response_message": {
                    "message_id": in_reply_to or "",
                    "postback_data": postback_data,
                }
            }
        event = {
            **self._envelope(now),
            "message": {
                "id": ulid(),
                "direction": "TO_APP",
                "contact_message": contact_message,
                "channel_identity": {"channel": channel, "identity": from_, "app_id": self.app_id},
                "conversation_id": ulid(),
                "contact_id": ulid(),
                "metadata": "",
                "accept_time": iso(now),
                "processing_mode": "DISPATCH",
                "injected": False,
            },
            "message_metadata": "",
            "correlation_id": "",
        }
        return await self._post(target, url, event, self.webhook_secret)
