"""Sinch gateways: the SMS REST API (batches, Bearer service-plan token, EU/US regions) and
the Conversation API (RCS, WhatsApp; OAuth2 client credentials, one message per request,
webhooks signed with HMAC-SHA256 when the app's webhook has a secret)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tasks.gateways.base import (
    IntegrationGateway,
    RequestRefused,
    auth_failed,
    e164,
    error_message,
    load_json,
    parse_time,
    refused_one,
    submit_splitting,
)
from tasks.gateways.http import (
    CallbackRequest,
    ConnectionCheck,
    ProviderHttp,
    api_root,
    gather_limited,
    json_or_empty,
)
from tenants.errors import PermissionDenied
from tenants.messaging.inbound import InboundReport
from tenants.messaging.outbox import OutboundMessage, SubmitResult, TransientProviderError
from tenants.providers.callbacks import ProviderEvent
from tenants.providers.codes import provider_code
from tenants.providers.integrations import IntegrationConfig

REFERENCE_PREFIX = "portal:"
# Sinch accepts up to 1000 recipients per batch; the client reference that names our
# message ids (at most 2048 characters) caps a batch of one text at 100 recipients.
MAX_BATCH = 100
LOOKUP_HOURS = 6
LOOKUP_PAGES = 20
# The replay window of signed callbacks (seconds either side of the signing time).
SIGNATURE_TOLERANCE_SECONDS = 300

# Sinch SMS delivery report status -> our status (intermediate ones we do not apply).
SMS_STATUS = {
    "Dispatched": "sent",
    "Delivered": "delivered",
    "Failed": "failed",
    "Expired": "failed",
    "Deleted": "failed",
    "Cancelled": "failed",
    "Rejected": "rejected",
    "Aborted": "rejected",
}


def _digits(number: str) -> str:
    return number.lstrip("+")


def sinch_signature(secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    """x-sinch-webhook-signature: base64(HMAC-SHA256(secret, body + "." + nonce + "." +
    timestamp)), as Sinch documents and its SDK's validate_authentication_header checks."""
    signed = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verify_sinch_signature(request: CallbackRequest, secrets: Sequence[str]) -> None:
    """Raise PermissionDenied unless one of the configured secrets signed the request within
    the replay window (the timestamp, in epoch seconds, is at most 5 minutes off). No
    configured secret: nothing to check here (the secret URL segment was checked)."""
    configured = [s for s in secrets if s]
    if not configured:
        return
    signature = request.header("x-sinch-webhook-signature")
    nonce = request.header("x-sinch-webhook-signature-nonce")
    timestamp = request.header("x-sinch-webhook-signature-timestamp")
    if not (signature and nonce and timestamp):
        raise PermissionDenied("missing Sinch webhook signature")
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        raise PermissionDenied("bad Sinch webhook timestamp") from None
    if age > SIGNATURE_TOLERANCE_SECONDS:
        raise PermissionDenied("Sinch webhook signature is outside the replay window")
    if not any(
        hmac.compare_digest(sinch_signature(secret, request.body, nonce, timestamp), signature)
        for secret in configured
    ):
        raise PermissionDenied("bad Sinch webhook signature")


def _mo_content(item: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The text and media URLs of an MO: mo_text's body is the text; mo_media's body is
    {subject?, message?, media: [{url, ...}]} (or one {url} as media bodies are sent)."""
    body = item.get("body")
    if not isinstance(body, dict):
        return str(body or ""), ()
    listed = body.get("media")
    media: list[Any] = listed if isinstance(listed, list) else [body]
    urls = tuple(str(m["url"]) for m in media if isinstance(m, dict) and m.get("url"))
    return str(body.get("message") or body.get("subject") or ""), urls


def _sms_content(message: OutboundMessage) -> dict[str, Any]:
    """mt_text, or for MMS mt_media whose body is {url, message} (one file per batch)."""
    if message.media_urls:
        return {"type": "mt_media", "body": {"url": message.media_urls[0], "message": message.body}}
    return {"type": "mt_text", "body": message.body}


class SinchSmsGateway(IntegrationGateway):
    kind = "sinch_sms"

    def __init__(
        self, config: IntegrationConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        region = config.value("region") or "us"
        plan = config.value("service_plan_id")
        self.http = ProviderHttp(
            api_root(f"https://{region}.sms.api.sinch.com/xms/v1/{plan}", config.api_base_url),
            name="Sinch",
            headers={"Authorization": f"Bearer {config.value('api_token')}"},
            transport=transport,
        )

    # --- submission -----------------------------------------------------------------

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        """One Sinch batch per (sender, text, media) of up to MAX_BATCH distinct recipients."""
        groups: list[list[OutboundMessage]] = []
        open_groups: dict[tuple[str, str, tuple[str, ...]], list[OutboundMessage]] = {}
        for message in batch:
            key = (message.sender or self.default_sender(), message.body, message.media_urls)
            group = open_groups.get(key)
            if group is None or len(group) >= MAX_BATCH or any(m.to == message.to for m in group):
                group = []
                groups.append(group)
                open_groups[key] = group
            group.append(message)
        results: list[SubmitResult] = []
        for index, group in enumerate(groups):
            try:
                results.extend(await submit_splitting(group, self._send_batch))
            except TransientProviderError:
                if not results and index == 0:
                    raise
                # Later groups go back to the broker; what went out is kept.
                for later in groups[index:]:
                    results.extend(SubmitResult(m.message_id, False, retry=True) for m in later)
                break
        return results

    async def _send_batch(self, group: Sequence[OutboundMessage]) -> list[SubmitResult]:
        payload: dict[str, Any] = {
            "to": [m.to for m in group],
            **_sms_content(group[0]),
            "delivery_report": "per_recipient",
            "callback_url": self.status_url,
            "client_reference": REFERENCE_PREFIX + ",".join(str(m.message_id) for m in group),
        }
        sender = group[0].sender or self.default_sender()
        if sender:
            payload["from"] = sender
        response = await self.http.send("POST", "/batches", json=payload, idempotent=False)
        status = response.status_code
        if 200 <= status < 300:
            batch_id = str(json_or_empty(response).get("id") or "")
            return [
                SubmitResult(m.message_id, True, provider_ref=f"{batch_id}:{_digits(m.to)}")
                for m in group
            ]
        answer = json_or_empty(response)
        code = answer.get("code") if isinstance(answer, dict) else None
        if status == 401:
            return [auth_failed(m.message_id) for m in group]
        if status in (403, 404):
            # Forbidden for the service plan (feature, region, blocked account): nothing sent.
            return [
                SubmitResult(
                    m.message_id,
                    False,
                    error_code=provider_code("sinch", code or status),
                    not_submitted=True,
                )
                for m in group
            ]
        raise RequestRefused(provider_code("sinch", code or status))

    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]:
        """Batches of the last hours whose client reference names these messages."""
        wanted = {m.message_id for m in batch}
        found: dict[int, str] = {}
        since = (datetime.now(UTC) - timedelta(hours=LOOKUP_HOURS)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        for page in range(LOOKUP_PAGES):
            response = await self.http.send(
                "GET",
                "/batches",
                params={"page": page, "page_size": 100, "start_date": since},
                idempotent=True,
            )
            if response.status_code != 200:
                raise TransientProviderError(f"Sinch lookup answered {response.status_code}")
            data = json_or_empty(response)
            for item in data.get("batches") or []:
                reference = str(item.get("client_reference") or "")
                if not reference.startswith(REFERENCE_PREFIX):
                    continue
                ids = [int(x) for x in reference[len(REFERENCE_PREFIX) :].split(",") if x.isdigit()]
                recipients = item.get("to") or []
                for position, message_id in enumerate(ids):
                    if message_id in wanted and position < len(recipients):
                        found[message_id] = f"{item.get('id')}:{_digits(str(recipients[position]))}"
            if wanted <= set(found) or (page + 1) * 100 >= int(data.get("count") or 0):
                break
        return found

    # --- callbacks ------------------------------------------------------------------

    def verify(self, request: CallbackRequest) -> None:
        """Signed as Conversation webhooks are once Sinch enables callback signing for the
        account (a callback secret is then configured here); else the secret URL segment."""
        verify_sinch_signature(request, [self.config.value("callback_secret")])

    def parse_status(self, request: CallbackRequest) -> list[ProviderEvent]:
        data = load_json(request.body)
        items = data if isinstance(data, list) else [data]
        events: list[ProviderEvent] = []
        for item in items:
            if not isinstance(item, dict) or not str(item.get("type", "")).startswith(
                "recipient_delivery_report"
            ):
                continue  # batch summaries: we ask for per-recipient reports
            status = SMS_STATUS.get(str(item.get("status")))
            if status is None:
                continue
            batch_id = str(item.get("batch_id") or "")
            recipient = e164(item.get("recipient"))
            code = item.get("code")
            reference = str(item.get("client_reference") or "")
            candidates = tuple(
                int(x)
                for x in reference[len(REFERENCE_PREFIX) :].split(",")
                if reference.startswith(REFERENCE_PREFIX) and x.isdigit()
            )
            events.append(
                ProviderEvent(
                    status=status,
                    at=parse_time(item.get("at")),
                    provider_ref=f"{batch_id}:{_digits(recipient)}",
                    candidates=candidates,
                    recipient=recipient,
                    error_code=None
                    if status in ("sent", "delivered")
                    else provider_code("sinch", code if code is not None else item.get("status")),
                    event_id=f"sinch:{batch_id}:{_digits(recipient)}:{item.get('status')}:{code}",
                )
            )
        return events

    def parse_inbound(self, request: CallbackRequest) -> list[InboundReport]:
        """mo_text and mo_media (MMS: the text of its body and its media URLs); mo_binary
        carries no text we can show."""
        data = load_json(request.body)
        items = data if isinstance(data, list) else [data]
        reports = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in ("mo_text", "mo_media"):
                continue
            text, media = _mo_content(item)
            reports.append(
                InboundReport(
                    provider=self.name,
                    provider_ref=str(item.get("id")),
                    sender=e164(item.get("from")),
                    to=e164(item.get("to")),
                    body=text,
                    at=parse_time(item.get("received_at")),
                    channel="mms" if item.get("type") == "mo_media" else "sms",
                    media_urls=media,
                )
            )
        return reports

    async def test_connection(self) -> ConnectionCheck:
        try:
            response = await self.http.send(
                "GET", "/batches", params={"page_size": 1}, idempotent=True
            )
        except TransientProviderError as exc:
            return ConnectionCheck(False, f"Could not reach Sinch: {exc}")
        region = (self.config.value("region") or "us").upper()
        if response.status_code == 200:
            count = json_or_empty(response).get("count", 0)
            return ConnectionCheck(
                True,
                f"Connected to Sinch SMS ({region}): {count} batches in the last 24 hours.",
                200,
            )
        if response.status_code == 401:
            return ConnectionCheck(False, "Sinch refused the API token (401).", 401)
        if response.status_code in (403, 404):
            return ConnectionCheck(
                False,
                f"Sinch does not know this service plan in the {region} region ({response.status_code}).",
                response.status_code,
            )
        return ConnectionCheck(
            False,
            f"Sinch answered {response.status_code}: {error_message(response, 'text')}",
            response.status_code,
        )


# --- the Conversation API ---------------------------------------------------------------------

AUTH_ORIGIN = "https://auth.sinch.com"
PROVISIONING = "https://provisioning.api.sinch.com/v1/projects/{project}"
# The Provisioning API's template state (WhatsApp's verdict) and, for a template with
# changes under review, changes.status: in our approval words.
TEMPLATE_STATES = {
    "APPROVED": "approved",
    "REJECTED": "rejected",
    "PAUSED": "paused",
    "DISABLED": "disabled",
}
TEMPLATE_CHANGES = {"DRAFT": "unsubmitted", "IN_PROGRESS": "pending", "REJECTED": "rejected"}
CONVERSATION_CHANNEL = {"rcs": "RCS", "whatsapp": "WHATSAPP", "sms": "SMS"}
CONVERSATION_INBOUND = {"RCS": "rcs", "WHATSAPP": "whatsapp", "SMS": "sms", "MMS": "sms"}
CONVERSATION_STATUS = {
    "QUEUED_ON_CHANNEL": "sent",
    "DELIVERED": "delivered",
    "READ": "read",
    "FAILED": "failed",
}
METADATA_PREFIX = "portal:"


def sinch_template_approval(item: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) of one template of the Provisioning API's list: WhatsApp's `state`
    once it has one (an approved template stays usable while later changes are reviewed),
    else the state of its submission (`changes.status`); the reason is the rejectionCode."""
    changes = item.get("changes")
    if not isinstance(changes, dict):
        changes = {}
    state = TEMPLATE_STATES.get(str(item.get("state") or ""))
    status = state or TEMPLATE_CHANGES.get(str(changes.get("status") or ""), "unknown")
    reason = str(item.get("rejectionCode") or "") if status == "rejected" else ""
    return status, reason


class _Token:
    def __init__(self) -> None:
        self.value = ""
        self.expires = 0.0
        self.lock: asyncio.Lock | None = None


class SinchConversationGateway(IntegrationGateway):
    kind = "sinch_conversation"

    def __init__(
        self, config: IntegrationConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        region = config.value("region") or "eu"
        project = config.value("project_id")
        self.app_id = config.value("app_id")
        self.http = ProviderHttp(
            api_root(
                f"https://{region}.conversation.api.sinch.com/v1/projects/{project}",
                config.api_base_url,
            ),
            name="Sinch Conversation API",
            transport=transport,
        )
        self.provisioning_http = ProviderHttp(
            api_root(PROVISIONING.format(project=project), config.api_base_url),
            name="Sinch Provisioning API",
            transport=transport,
        )
        self.auth_http = ProviderHttp(
            AUTH_ORIGIN,
            name="Sinch authentication",
            auth=(config.value("key_id"), config.value("key_secret")),
            transport=transport,
        )
        self._tokens: dict[asyncio.AbstractEventLoop, _Token] = {}

    async def _token(self, *, refresh: bool = False) -> str:
        loop = asyncio.get_running_loop()
        token = self._tokens.setdefault(loop, _Token())
        if token.lock is None:
            token.lock = asyncio.Lock()
        async with token.lock:
            if refresh or not token.value or token.expires <= time.monotonic():
                response = await self.auth_http.send(
                    "POST",
                    "/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    idempotent=True,
                )
                if response.status_code != 200:
                    raise PermissionDenied(
                        f"Sinch refused the access key ({response.status_code}): "
                        f"{error_message(response, 'error_description')}"
                    )
                data = json_or_empty(response)
                token.value = str(data.get("access_token") or "")
                # Renew a minute early so a token never expires in flight.
                token.expires = time.monotonic() + max(0, int(data.get("expires_in") or 0) - 60)
            return token.value

    async def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        http: ProviderHttp | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A request (to the Conversation API unless `http` says otherwise) with the bearer
        token; a 401 renews the token once."""
        client = http or self.http
        response = await client.send(
            method,
            path,
            idempotent=idempotent,
            headers={"Authorization": f"Bearer {await self._token()}"},
            **kwargs,
        )
        if response.status_code == 401:
            response = await client.send(
                method,
                path,
                idempotent=idempotent,
                headers={"Authorization": f"Bearer {await self._token(refresh=True)}"},
                **kwargs,
            )
        return response

    async def template_approval(self, name: str, language: str) -> tuple[str, str] | None:
        """A WhatsApp template's approval as the Provisioning API tells it (GET
        /v1/projects/{project}/whatsapp/templates?templateName=..., the template in that
        language: WhatsApp's state, else its submission's); None when Sinch does not know
        it in that language."""
        try:
            response = await self._call(
                "GET",
                "/whatsapp/templates",
                params={"templateName": name, "pageSize": 100},
                idempotent=True,
                http=self.provisioning_http,
            )
        except PermissionDenied as refused:
            raise TransientProviderError(str(refused)) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TransientProviderError(f"Sinch Provisioning API answered {response.status_code}")
        wanted = language.upper()
        for item in json_or_empty(response).get("templates") or []:
            if isinstance(item, dict) and (
                item.get("name"),
                str(item.get("language") or "").upper(),
            ) == (name, wanted):
                return sinch_template_approval(item)
        return None

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        try:
            await self._token()
        except PermissionDenied:
            return [auth_failed(m.message_id) for m in batch]
        results: list[SubmitResult] = await gather_limited(batch, self._send_one)
        if results and all(r.retry for r in results):
            raise TransientProviderError("Sinch Conversation API did not take any message")
        return results

    async def _send_one(self, message: OutboundMessage) -> SubmitResult:
        channel = CONVERSATION_CHANNEL.get(message.channel, "SMS")
        content, channels = conversation_message(message, channel)
        payload = {
            "app_id": self.app_id,
            "recipient": {
                "identified_by": {
                    "channel_identities": [{"channel": c, "identity": message.to} for c in channels]
                }
            },
            "message": content,
            "channel_priority_order": channels,
            "correlation_id": str(message.message_id),
            "message_metadata": f"{METADATA_PREFIX}{message.message_id}",
            "callback_url": self.status_url,
        }
        try:
            response = await self._call("POST", "/messages:send", json=payload, idempotent=False)
        except TransientProviderError:
            return SubmitResult(message.message_id, False, retry=True)
        except PermissionDenied:
            return auth_failed(message.message_id)
        if 200 <= response.status_code < 300:
            return SubmitResult(
                message.message_id,
                True,
                provider_ref=str(json_or_empty(response).get("message_id") or ""),
            )
        error = json_or_empty(response).get("error") or {}
        reason = error.get("status") or response.status_code
        return refused_one(message.message_id, "sinch", response.status_code, reason)

    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]:
        """Messages of the app to each recipient in the last hours carrying our metadata."""
        since = (datetime.now(UTC) - timedelta(hours=LOOKUP_HOURS)).strftime("%Y-%m-%dT%H:%M:%SZ")

        async def one(message: OutboundMessage) -> tuple[int, str | None]:
            response = await self._call(
                "GET",
                "/messages",
                params={
                    "app_id": self.app_id,
                    "channel_identity": message.to,
                    "start_time": since,
                    "page_size": 50,
                },
                idempotent=True,
            )
            if response.status_code != 200:
                raise TransientProviderError(f"Sinch lookup answered {response.status_code}")
            for item in json_or_empty(response).get("messages") or []:
                if item.get("metadata") == f"{METADATA_PREFIX}{message.message_id}":
                    return message.message_id, str(item.get("id"))
            return message.message_id, None

        pairs = await gather_limited(batch, one)
        return {mid: ref for mid, ref in pairs if ref}

    # --- callbacks ------------------------------------------------------------------

    def verify(self, request: CallbackRequest) -> None:
        """The app's webhook is signed with its webhook secret; delivery reports to a
        message's own callback_url with the app's secret for overridden callback URLs.
        Either configured secret is accepted; with neither, the secret URL segment is the
        check."""
        verify_sinch_signature(
            request,
            [self.config.value("webhook_secret"), self.config.value("callback_secret")],
        )

    def parse_status(self, request: CallbackRequest) -> list[ProviderEvent]:
        data = load_json(request.body)
        if not isinstance(data, dict):
            return []
        report = data.get("message_delivery_report")
        if not isinstance(report, dict):
            return []
        status = CONVERSATION_STATUS.get(str(report.get("status")))
        if status is None:
            return []  # SWITCHING_CHANNEL and the like: nothing final to apply
        message_id: int | None = None
        correlation = str(data.get("correlation_id") or "")
        metadata = str(report.get("metadata") or "")
        if correlation.isdigit():
            message_id = int(correlation)
        elif metadata.startswith(METADATA_PREFIX) and metadata[len(METADATA_PREFIX) :].isdigit():
            message_id = int(metadata[len(METADATA_PREFIX) :])
        reason = report.get("reason") or {}
        code = reason.get("code") if isinstance(reason, dict) else None
        provider_ref = str(report.get("message_id") or "") or None
        return [
            ProviderEvent(
                status=status,
                at=parse_time(data.get("event_time") or data.get("accepted_time")),
                message_id=message_id,
                provider_ref=provider_ref,
                error_code=_conversation_code(code) if status == "failed" else None,
                event_id=f"sinchconv:{provider_ref}:{report.get('status')}",
            )
        ]

    def delivered_channels(self, request: CallbackRequest) -> list[tuple[str, str]]:
        """A delivery report names the channel that carried the message: SMS for an RCS
        card that fell back."""
        data = load_json(request.body)
        report = data.get("message_delivery_report") if isinstance(data, dict) else None
        if not isinstance(report, dict) or report.get("status") not in ("DELIVERED", "READ"):
            return []
        channel = str((report.get("channel_identity") or {}).get("channel") or "")
        mapped = CONVERSATION_INBOUND.get(channel.upper())
        ref = str(report.get("message_id") or "")
        return [(ref, mapped)] if ref and mapped else []

    def parse_inbound(self, request: CallbackRequest) -> list[InboundReport]:
        """A message_inbound event keeps its channel (channel_identity.channel: SMS, MMS,
        WHATSAPP, RCS); text, media and choice responses (a tapped suggestion or button:
        its postback data) are read, other kinds (location) and channels we do not offer
        are not."""
        data = load_json(request.body)
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, dict) or message.get("direction", "TO_APP") != "TO_APP":
            return []
        identity = message.get("channel_identity") or {}
        channel = CONVERSATION_INBOUND.get(str(identity.get("channel") or "").upper())
        content = _contact_content(message.get("contact_message") or {})
        if channel is None or content is None:
            return []
        text, media = content
        choice = (message.get("contact_message") or {}).get("choice_response_message") or {}
        tapped = (
            {"text": text, "payload": str(choice.get("postback_data") or ""),
             "message_id": str(choice.get("message_id") or "")}
            if choice else {}
        )  # fmt: skip
        return [
            InboundReport(
                provider=self.name,
                provider_ref=str(message.get("id")),
                sender=e164(identity.get("identity")),
                to=self.config.value("sender_id") or self.app_id,
                body=text,
                at=parse_time(message.get("accept_time") or data.get("accepted_time")),
                channel="mms" if channel == "sms" and media else channel,
                media_urls=media,
                tapped=tapped,
            )
        ]

    async def test_connection(self) -> ConnectionCheck:
        try:
            response = await self._call("GET", f"/apps/{self.app_id}", idempotent=True)
        except PermissionDenied as exc:
            return ConnectionCheck(False, str(exc), 401)
        except TransientProviderError as exc:
            return ConnectionCheck(False, f"Could not reach Sinch: {exc}")
        if response.status_code == 200:
            name = json_or_empty(response).get("display_name") or self.app_id
            return ConnectionCheck(True, f"Connected to the Conversation API app {name}.", 200)
        if response.status_code == 404:
            return ConnectionCheck(False, "Sinch does not know this project or app (404).", 404)
        return ConnectionCheck(
            False,
            f"Sinch answered {response.status_code}: {error_message(response, 'error', 'message')}",
            response.status_code,
        )


def _contact_content(contact: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """The text and media URLs of a contact_message, or None for kinds without either."""
    text = (contact.get("text_message") or {}).get("text")
    if isinstance(text, str):
        return text, ()
    url = (contact.get("media_message") or {}).get("url")
    if isinstance(url, str) and url:
        return "", (url,)
    choice = contact.get("choice_response_message")
    if isinstance(choice, dict) and choice.get("postback_data"):
        return str(choice["postback_data"]), ()
    return None


def conversation_message(
    message: OutboundMessage, channel: str
) -> tuple[dict[str, Any], list[str]]:
    """The `message` of messages:send and the channel priority order: text; a WhatsApp
    channel-specific template (name, language, parameters keyed body[n]text as Sinch
    documents); or an RCS card with up to four choices, falling back to SMS with its own
    text (explicit_channel_message) when the handset cannot take RCS."""
    rich = message.rich or {}
    if rich.get("kind") == "template":
        parameters = {
            f"body[{n}]text": str(v) for n, v in enumerate(rich.get("parameters") or [], start=1)
        }
        reference = {"template_id": rich["name"], "language_code": rich["language"]}
        if parameters:
            reference["parameters"] = parameters
        return {"template_message": {"channel_template": {"WHATSAPP": reference}}}, [channel]
    if rich.get("kind") == "card":
        card: dict[str, Any] = {"title": rich["title"], "height": "MEDIUM"}
        if rich.get("description"):
            card["description"] = rich["description"]
        if rich.get("media_url"):
            card["media_message"] = {"url": rich["media_url"]}
        choices = [_choice(s) for s in rich.get("suggestions") or []]
        if choices:
            card["choices"] = choices
        content = {
            "card_message": card,
            "explicit_channel_message": {"SMS": rich.get("fallback_text") or message.body},
        }
        return content, ["RCS", "SMS"]
    return {"text_message": {"text": message.body}}, [channel]


def _choice(suggestion: dict[str, Any]) -> dict[str, Any]:
    """A suggested reply (its postback names what was tapped), an open-URL or a dial action."""
    text, value = str(suggestion.get("text") or ""), str(suggestion.get("value") or "")
    if suggestion.get("kind") == "url":
        return {"url_message": {"title": text, "url": value}}
    if suggestion.get("kind") == "dial":
        return {"call_message": {"title": text, "phone_number": value}}
    return {"text_message": {"text": text}, "postback_data": value or text}


def _conversation_code(code: Any) -> str:
    from tenants.providers.codes import ERROR_CODES

    text = str(code or "UNKNOWN")
    # Sinch's reasons share names with the platform's codes (RECIPIENT_NOT_REACHABLE...).
    return text if text in ERROR_CODES else provider_code("sinch", text)
