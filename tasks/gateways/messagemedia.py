"""MessageMedia gateway: the Messages API (HTTP Basic with API key and secret, up to 100
messages per request, our id in each message's metadata), delivery reports and replies by
callback to the integration's secret URL, signed when the account has a signature key
(X-MessageMedia-Signature, checked with the key's public half)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from tasks.gateways.base import (
    IntegrationGateway,
    RequestRefused,
    auth_failed,
    e164,
    error_message,
    load_json,
    parse_time,
    submit_splitting,
)
from tasks.gateways.http import (
    CallbackRequest,
    ConnectionCheck,
    ProviderHttp,
    api_root,
    json_or_empty,
)
from tenants.errors import PermissionDenied
from tenants.messaging.inbound import InboundReport
from tenants.messaging.outbox import OutboundMessage, SubmitResult, TransientProviderError
from tenants.phones import sender_kind
from tenants.providers.callbacks import ProviderEvent
from tenants.providers.codes import provider_code
from tenants.providers.integrations import IntegrationConfig
from tenants.providers.signing import rsa_signature_valid

API = "https://api.messagemedia.com/v1"
MAX_BATCH = 100  # the Messages API takes at most 100 messages per request
METADATA_KEY = "portal_message_id"
STATUS = {
    "submitted": "sent",
    "enroute": "sent",
    "delivered": "delivered",
    "expired": "failed",
    "undeliverable": "failed",
    "failed": "failed",
    "rejected": "rejected",
}


def _source_type(sender: str) -> str:
    if sender_kind(sender) == "alphanumeric":
        return "ALPHANUMERIC"
    if sender.startswith("+") or len(sender) > 8:
        return "INTERNATIONAL"
    return "SHORTCODE"


def signed_content(request: CallbackRequest) -> bytes:
    """What MessageMedia signs: the request line as it was sent ("POST /path?query
    HTTP/1.1", the path of the public URL it called), the Date header and the raw body, run
    together (their enterprise webhooks guides: requestline + date + body)."""
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"POST {target} HTTP/1.1".encode() + request.header("date").encode() + request.body


def verify_messagemedia_signature(request: CallbackRequest, public_key: str, digest: str) -> None:
    """Raise PermissionDenied unless X-MessageMedia-Signature is the signature key's RSA
    PKCS#1 v1.5 signature (with the digest chosen for the key) of signed_content. No key
    configured: nothing to check here (the secret URL segment was checked)."""
    if not public_key:
        return
    signature = request.header("x-messagemedia-signature")
    if not signature or not request.header("date"):
        raise PermissionDenied("missing X-MessageMedia-Signature or Date")
    if not rsa_signature_valid(public_key, digest, signature, signed_content(request)):
        raise PermissionDenied("bad X-MessageMedia-Signature")


def _our_id(metadata: Any) -> int | None:
    if isinstance(metadata, dict):
        value = str(metadata.get(METADATA_KEY) or "")
        if value.isascii() and value.isdigit():
            return int(value)
    return None


class MessageMediaGateway(IntegrationGateway):
    kind = "messagemedia"
    # A message's callback_url receives its delivery reports and the replies to it.
    inbound_on_status_url = True

    def __init__(
        self, config: IntegrationConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self.http = ProviderHttp(
            api_root(API, config.api_base_url),
            name="MessageMedia",
            auth=(config.value("api_key"), config.value("api_secret")),
            headers={"Accept": "application/json"},
            transport=transport,
        )

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        results: list[SubmitResult] = []
        for start in range(0, len(batch), MAX_BATCH):
            part = batch[start : start + MAX_BATCH]
            try:
                results.extend(await submit_splitting(part, self._send))
            except TransientProviderError:
                if start == 0:
                    raise
                results.extend(SubmitResult(m.message_id, False, retry=True) for m in batch[start:])
                break
        return results

    def _payload(self, message: OutboundMessage) -> dict[str, Any]:
        item: dict[str, Any] = {
            "content": message.body,
            "destination_number": message.to,
            "format": "SMS",
            "delivery_report": True,
            "callback_url": self.status_url,
            "metadata": {METADATA_KEY: str(message.message_id)},
        }
        if message.media_urls:
            item["format"] = "MMS"
            item["media"] = list(message.media_urls)
            if message.subject:
                item["subject"] = message.subject
        sender = message.sender or self.default_sender()
        if sender:
            item["source_number"] = sender
            item["source_number_type"] = _source_type(sender)
        return item

    async def _send(self, part: Sequence[OutboundMessage]) -> list[SubmitResult]:
        response = await self.http.send(
            "POST",
            "/messages",
            json={"messages": [self._payload(m) for m in part]},
            idempotent=False,
        )
        if response.status_code in (200, 201, 202):
            answered = json_or_empty(response).get("messages") or []
            refs: dict[int, str] = {}
            for position, item in enumerate(answered):
                message_id = _our_id(item.get("metadata"))
                if message_id is None and position < len(part):
                    message_id = part[position].message_id
                if message_id is not None:
                    refs[message_id] = str(item.get("message_id") or "")
            return [
                SubmitResult(m.message_id, True, provider_ref=refs.get(m.message_id)) for m in part
            ]
        if response.status_code == 401:
            return [auth_failed(m.message_id) for m in part]
        if response.status_code == 403:
            return [
                SubmitResult(m.message_id, False, error_code="PROVIDER_REFUSED", not_submitted=True)
                for m in part
            ]
        raise RequestRefused(provider_code("messagemedia", response.status_code))

    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]:
        """By each message's own reference: its MessageMedia id when an answer or a callback
        (whose metadata names our id) told us, fetched directly; else our id in the metadata
        of the unconfirmed delivery reports (read without confirming them)."""
        found: dict[int, str] = {}
        for message in batch:
            if message.provider_ref:
                response = await self.http.send(
                    "GET", f"/messages/{message.provider_ref}", idempotent=True
                )
                if response.status_code == 200:
                    found[message.message_id] = message.provider_ref
                elif response.status_code != 404:
                    raise TransientProviderError(
                        f"MessageMedia lookup answered {response.status_code}"
                    )
        wanted = {m.message_id for m in batch} - set(found)
        if not wanted:
            return found
        response = await self.http.send("GET", "/delivery_reports", idempotent=True)
        if response.status_code != 200:
            raise TransientProviderError(f"MessageMedia lookup answered {response.status_code}")
        for item in json_or_empty(response).get("delivery_reports") or []:
            message_id = _our_id(item.get("metadata"))
            if message_id in wanted and message_id is not None:
                found[message_id] = str(item.get("message_id") or "")
        return found

    # --- callbacks ------------------------------------------------------------------

    def verify(self, request: CallbackRequest) -> None:
        verify_messagemedia_signature(
            request,
            self.config.value("signature_public_key"),
            self.config.value("signature_digest"),
        )

    def parse_status(self, request: CallbackRequest) -> list[ProviderEvent]:
        data = load_json(request.body)
        items = data.get("delivery_reports", [data]) if isinstance(data, dict) else data
        events = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            raw = str(item.get("status") or "")
            status = STATUS.get(raw)
            if status is None:
                continue
            failing = status in ("failed", "rejected")
            events.append(
                ProviderEvent(
                    status=status,
                    at=parse_time(item.get("submitted_date") or item.get("date_received")),
                    message_id=_our_id(item.get("metadata")),
                    provider_ref=str(item.get("message_id") or "") or None,
                    error_code=provider_code("messagemedia", raw) if failing else None,
                    event_id=f"messagemedia:{item.get('delivery_report_id') or item.get('message_id')}:{raw}",
                )
            )
        return events

    def parse_inbound(self, request: CallbackRequest) -> list[InboundReport]:
        data = load_json(request.body)
        items = data.get("replies", [data]) if isinstance(data, dict) else data
        reports = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not item.get("reply_id"):
                continue
            media = tuple(str(u) for u in item.get("media") or () if isinstance(u, str) and u)
            reports.append(
                InboundReport(
                    provider=self.name,
                    provider_ref=str(item["reply_id"]),
                    sender=e164(item.get("source_number")),
                    to=e164(item.get("destination_number")),
                    body=str(item.get("content") or ""),
                    at=parse_time(item.get("date_received")),
                    channel="mms" if media else "sms",
                    media_urls=media,
                )
            )
        return reports

    async def test_connection(self) -> ConnectionCheck:
        try:
            response = await self.http.send("GET", "/delivery_reports", idempotent=True)
        except TransientProviderError as exc:
            return ConnectionCheck(False, f"Could not reach MessageMedia: {exc}")
        if response.status_code == 200:
            waiting = len(json_or_empty(response).get("delivery_reports") or [])
            return ConnectionCheck(
                True,
                f"Connected to MessageMedia: {waiting} unconfirmed delivery reports waiting.",
                200,
            )
        if response.status_code == 401:
            return ConnectionCheck(False, "MessageMedia refused the API key or secret (401).", 401)
        if response.status_code == 403:
            return ConnectionCheck(
                False, "MessageMedia says this feature is not enabled (403).", 403
            )
        return ConnectionCheck(
            False,
            f"MessageMedia answered {response.status_code}: {error_message(response, 'message')}",
            response.status_code,
        )
