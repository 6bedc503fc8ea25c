"""Twilio gateway: the Messages API (account SID + auth token over HTTP Basic, form-encoded
POST, one message per request), status callbacks and inbound messages verified by
X-Twilio-Signature (HMAC-SHA1 of the URL and the sorted form parameters)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from tasks.gateways.base import IntegrationGateway, e164, error_message, refused_one
from tasks.gateways.http import (
    CallbackRequest,
    ConnectionCheck,
    ProviderHttp,
    api_root,
    gather_limited,
    json_or_empty,
)
from tenants.errors import PermissionDenied, ValidationFailed
from tenants.messaging.inbound import InboundReport
from tenants.messaging.outbox import OutboundMessage, SubmitResult, TransientProviderError
from tenants.providers.callbacks import ProviderEvent
from tenants.providers.codes import provider_code
from tenants.providers.integrations import IntegrationConfig

API = "https://api.twilio.com/2010-04-01"
CONTENT_API = "https://content.twilio.com/v1"
# Twilio's MessageStatus -> ours; queued/accepted/sending/scheduled are not applied.
# Advanced Opt-Out: a keyword Twilio answered itself (its OptOutType) as our keyword kinds.
OPT_OUT_TYPES = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}
STATUS = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + each sorted key and value))."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the scheme's default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password or ":" in host:
        return [url]  # credentials or IPv6 literals: only the URL as given
    default = 443 if parts.scheme == "https" else 80
    bare = urlunsplit(parts._replace(netloc=host))
    ported = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return list(dict.fromkeys([url, bare, ported]))


def _address(channel: str, number: str) -> str:
    return f"whatsapp:{number}" if channel == "whatsapp" and number else number


def _content(message: OutboundMessage) -> dict[str, str]:
    """Body for text; a WhatsApp template is its ContentSid with ContentVariables, a JSON
    object of the numbered parameters ({"1": "Jane", ...}) as the Content API reads them."""
    rich = message.rich or {}
    if rich.get("kind") == "template" and rich.get("provider_ref"):
        variables = {str(n): str(v) for n, v in enumerate(rich.get("parameters") or [], start=1)}
        return {"ContentSid": rich["provider_ref"], "ContentVariables": json.dumps(variables)}
    return {"Body": message.body}


class TwilioGateway(IntegrationGateway):
    kind = "twilio"

    def __init__(
        self, config: IntegrationConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self.account_sid = config.value("account_sid")
        self.auth_token = config.value("auth_token")
        self.api = api_root(API, config.api_base_url)
        self.http = ProviderHttp(
            f"{self.api}/Accounts/{self.account_sid}",
            name="Twilio",
            auth=(self.account_sid, self.auth_token),
            transport=transport,
        )
        self.content_http = ProviderHttp(
            api_root(CONTENT_API, config.api_base_url),
            name="Twilio Content API",
            auth=(self.account_sid, self.auth_token),
            transport=transport,
        )

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        results: list[SubmitResult] = await gather_limited(batch, self._send_one)
        if results and all(r.retry for r in results):
            raise TransientProviderError("Twilio did not take any message")
        return results

    async def _send_one(self, message: OutboundMessage) -> SubmitResult:
        sender = message.sender or self.default_sender()
        data: dict[str, Any] = {
            "To": _address(message.channel, message.to),
            **_content(message),
            # Our id rides in the callback URL, so a callback names the message even
            # before the worker recorded Twilio's SID.
            "StatusCallback": f"{self.status_url}?ref={message.message_id}",
        }
        if message.media_urls:
            # MMS: one MediaUrl parameter per file (Twilio takes up to 10); Twilio has no
            # subject field.
            data["MediaUrl"] = list(message.media_urls)
        service = self.config.value("messaging_service_sid")
        if service:
            data["MessagingServiceSid"] = service
            if sender:
                data["From"] = _address(message.channel, sender)
        elif sender:
            data["From"] = _address(message.channel, sender)
        else:
            return SubmitResult(message.message_id, False, error_code="INVALID_SENDER")
        try:
            response = await self.http.send("POST", "/Messages.json", data=data, idempotent=False)
        except TransientProviderError:
            return SubmitResult(message.message_id, False, retry=True)
        answer = json_or_empty(response)
        if response.status_code in (200, 201):
            return SubmitResult(message.message_id, True, provider_ref=str(answer.get("sid") or ""))
        code = answer.get("code") if isinstance(answer, dict) else None
        return refused_one(
            message.message_id, "twilio", response.status_code, code or response.status_code
        )

    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]:
        """Twilio keeps no client reference: a message is recognised by its own SID, learnt
        from Twilio's answer or from a status callback naming it (`?ref=<our id>` in the
        StatusCallback URL). Never by To/From/Body, which two different messages may share."""

        async def one(message: OutboundMessage) -> tuple[int, str | None]:
            if not message.provider_ref:
                return message.message_id, None
            response = await self.http.send(
                "GET", f"/Messages/{message.provider_ref}.json", idempotent=True
            )
            if response.status_code == 404:
                return message.message_id, None
            if response.status_code != 200:
                raise TransientProviderError(f"Twilio lookup answered {response.status_code}")
            return message.message_id, str(json_or_empty(response).get("sid") or "") or None

        pairs = await gather_limited(batch, one)
        return {mid: ref for mid, ref in pairs if ref}

    async def template_approval(self, content_sid: str) -> tuple[str, str] | None:
        """A WhatsApp template's approval as the Content API tells it (GET
        /v1/Content/{ContentSid}/ApprovalRequests: whatsapp.status and rejection_reason);
        None when Twilio does not know the ContentSid."""
        response = await self.content_http.send(
            "GET", f"/Content/{content_sid}/ApprovalRequests", idempotent=True
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TransientProviderError(f"Twilio Content API answered {response.status_code}")
        whatsapp = json_or_empty(response).get("whatsapp") or {}
        if not isinstance(whatsapp, dict) or not whatsapp.get("status"):
            return "unsubmitted", "Not submitted to WhatsApp for approval."
        return str(whatsapp["status"]), str(whatsapp.get("rejection_reason") or "")

    # --- callbacks ------------------------------------------------------------------

    def verify(self, request: CallbackRequest) -> None:
        """X-Twilio-Signature as Twilio signs (twilio-python RequestValidator.validate):
        HMAC-SHA1 with the auth token over the URL and, for a form body, each sorted
        parameter name and value; for a JSON body the URL carries `bodySHA256` (the hex
        SHA-256 of the body), the signature covers the URL alone and the hash must match.
        Twilio signs the URL sometimes with its default port and sometimes without: both
        forms are accepted."""
        given = request.header("x-twilio-signature")
        if not given:
            raise PermissionDenied("missing X-Twilio-Signature")
        params: Mapping[str, str] = request.form
        body_hash = (parse_qs(urlsplit(request.url).query).get("bodySHA256") or [""])[0]
        if body_hash:
            digest = hashlib.sha256(request.body).hexdigest()
            if not hmac.compare_digest(digest, body_hash.lower()):
                raise PermissionDenied("the body does not match bodySHA256")
            params = {}
        valid = any(
            hmac.compare_digest(given, signature(self.auth_token, url, params))
            for url in _port_variants(request.url)
        )
        if not valid:
            raise PermissionDenied("bad X-Twilio-Signature")

    def parse_status(self, request: CallbackRequest) -> list[ProviderEvent]:
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        raw_status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        status = STATUS.get(raw_status)
        if not sid or status is None:
            return []
        ref = (parse_qs(urlsplit(request.url).query).get("ref") or [""])[0]
        error = form.get("ErrorCode") or ""
        return [
            ProviderEvent(
                status=status,
                at=datetime.now(UTC),
                message_id=int(ref) if ref.isdigit() else None,
                provider_ref=sid,
                error_code=provider_code("twilio", error)
                if error and status not in ("sent", "delivered", "read")
                else None,
                event_id=f"twilio:{sid}:{raw_status}",
            )
        ]

    def parse_inbound(self, request: CallbackRequest) -> list[InboundReport]:
        """An incoming message: WhatsApp when its addresses carry the whatsapp: prefix, MMS
        when an SMS brings media (NumMedia, MediaUrl0..n)."""
        form = request.form
        missing = {k: "Required." for k in ("MessageSid", "From", "To") if not form.get(k)}
        if missing:
            raise ValidationFailed(missing)
        count = int(form["NumMedia"]) if str(form.get("NumMedia", "")).isdigit() else 0
        media = tuple(form[f"MediaUrl{i}"] for i in range(count) if form.get(f"MediaUrl{i}"))
        if form["From"].startswith("whatsapp:"):
            channel = "whatsapp"
        else:
            channel = "mms" if media else "sms"
        # A tap on a quick-reply button: ButtonText is what the person saw and tapped,
        # ButtonPayload the id the template gave the button.
        tapped = (
            {"text": form.get("ButtonText", ""), "payload": form.get("ButtonPayload", "")}
            if form.get("ButtonText") or form.get("ButtonPayload")
            else {}
        )
        return [
            InboundReport(
                provider_keyword=OPT_OUT_TYPES.get(str(form.get("OptOutType", "")).upper()),
                provider=self.name,
                provider_ref=form["MessageSid"],
                sender=e164(form["From"]),
                to=e164(form["To"]),
                body=form.get("Body") or form.get("ButtonText", ""),
                at=datetime.now(UTC),
                channel=channel,
                media_urls=media,
                tapped=tapped,
            )
        ]

    def answer(self, kind: str) -> tuple[str, str]:
        if kind == "inbound":
            # An empty TwiML response: no automatic reply from Twilio itself.
            return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml"
        return "", "text/plain"

    async def test_connection(self) -> ConnectionCheck:
        try:
            response = await self.http.send(
                "GET", f"{self.api}/Accounts/{self.account_sid}.json", idempotent=True
            )
        except TransientProviderError as exc:
            return ConnectionCheck(False, f"Could not reach Twilio: {exc}")
        if response.status_code == 200:
            data = json_or_empty(response)
            return ConnectionCheck(
                True,
                f"Connected to Twilio account {data.get('friendly_name') or self.account_sid} ({data.get('status', 'active')}).",
                200,
            )
        if response.status_code in (401, 403, 404):
            return ConnectionCheck(
                False,
                f"Twilio refused the account SID or auth token ({response.status_code}).",
                response.status_code,
            )
        return ConnectionCheck(
            False,
            f"Twilio answered {response.status_code}: {error_message(response, 'message')}",
            response.status_code,
        )
