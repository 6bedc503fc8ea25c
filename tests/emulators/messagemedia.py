"""MessageMedia's Messages API (v1), emulated.

Sources read:
- github:messagemedia/messages-python-sdk, message_media_messages/controllers/
  messages_controller.py (POST /v1/messages: "up to 100 per request"; each message needs
  `content` (up to 5,000 characters) and `destination_number` (E.164); optional
  callback_url ("Webhooks will be pushed to" it "if and when the status of the message
  changes ... and when replies are received"), delivery_report, format SMS/MMS/TTS,
  source_number, source_number_type INTERNATIONAL/ALPHANUMERIC/SHORTCODE ("only valid when
  the source_number parameter is specified"), scheduled, message_expiry_timestamp,
  metadata (up to 10 pairs, keys up to 100 and values up to 256 characters), media,
  subject (64); "If any messages in the request are invalid, no messages will be sent";
  the answer lists the messages with `message_id` (a 36 character UUID) and status
  `queued`; GET /v1/messages/{messageId}, 404 when unknown); delivery_reports_controller.py
  (GET /v1/delivery_reports: up to 100 unconfirmed reports, the same ones until confirmed
  with POST /v1/delivery_reports/confirmed; a report's source_number is the original
  destination); models/delivery_report.py, reply.py, status_2_enum.py (report statuses
  enroute, submitted, delivered, expired, rejected, undeliverable, failed); the README
  (HTTP Basic with API key and secret, or HMAC: only Basic is emulated; 400 invalid
  request, 401 bad credentials, 403 feature not enabled); the 400 body is
  {"message": ..., "details": [...]} (exceptions/send_messages_400_response_exception.py).
- Signed ("enterprise") webhooks, github:messagemedia/enterprise-webhooks-ruby-sdk
  index.rb and README: X-MessageMedia-Signature = base64 RSA signature (PKCS#1 v1.5 via
  OpenSSL verify) with the account's signature key over request line ("POST /path
  HTTP/1.1") + Date header + raw body, digest SHA224/256/512 chosen when the key is made
  (https://support.messagemedia.com/articles/49982-enterprise-webhooks). The request line
  includes the query string: the Python guide (enterprise-webhooks-python-sdk server.py)
  signs BaseHTTPRequestHandler.requestline, which carries it. The signature key's public
  half is what the Signature Key API answers as `public_key` (base64 DER,
  github:messagemedia/signingkeys-python-sdk README; public_key() here). Without a
  signature key, webhooks are unsigned (the portal relies on its secret callback URL).

Error bodies for 401/403/404 are not documented in what I read: the emulator answers
{"message": ...}.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.emulators.base import Emulator, Request, Response, Target, url_ok

HOST = r"api\.messagemedia\.com"
E164 = re.compile(r"\+[1-9]\d{1,14}")
MAX_MESSAGES = 100
FIELDS = {
    "content", "destination_number", "callback_url", "delivery_report", "format",
    "message_expiry_timestamp", "metadata", "scheduled", "source_number",
    "source_number_type", "media", "subject",
}  # fmt: skip
DIGESTS = {"SHA224": hashes.SHA224, "SHA256": hashes.SHA256, "SHA512": hashes.SHA512}


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def signed_message(url: str, date: str, body: bytes) -> bytes:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return f"POST {target} HTTP/1.1".encode() + date.encode() + body


@dataclass
class MessageMediaMessage:
    message_id: str
    item: dict[str, Any]
    status: str = "queued"
    reports: list[dict[str, Any]] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        return {**self.item, "message_id": self.message_id, "status": self.status}


class MessageMediaEmulator(Emulator):
    name = "MessageMedia"

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        signing_key: rsa.RSAPrivateKey | None = None,
        digest: str = "SHA256",
        account_id: str = "Emulated",
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self.signing_key = signing_key
        self.digest = digest
        self.account_id = account_id
        self.accepted: list[MessageMediaMessage] = []
        self.unconfirmed: list[dict[str, Any]] = []
        self.route("POST", HOST, "/v1/messages", self.send)
        self.route("GET", HOST, r"/v1/messages/(?P<mid>[^/]+)", self.fetch)
        self.route("GET", HOST, "/v1/delivery_reports", self.reports)
        self.route("POST", HOST, "/v1/delivery_reports/confirmed", self.confirm)

    def public_key(self) -> str:
        """The signature key's `public_key` as the Signature Key API shows it."""
        if self.signing_key is None:
            raise ValueError("no signature key")
        der = self.signing_key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def _auth(self, request: Request) -> Response | None:
        if request.basic_auth() != (self.api_key, self.api_secret):
            return self.violation(401, {"message": "Unauthorized"}, "MessageMedia: bad Basic auth")
        return None

    def _invalid(self, details: list[str]) -> Response:
        return self.violation(
            400,
            {"message": "Invalid message format", "details": details},
            f"MessageMedia: {details}",
        )

    def _check(self, position: int, item: Any) -> list[str]:
        where = f"messages[{position}]"
        if not isinstance(item, dict):
            return [f"{where}: not an object"]
        problems = [f"{where}.{k}: unknown field" for k in set(item) - FIELDS]
        content = item.get("content")
        if not isinstance(content, str) or not content:
            problems.append(f"{where}.content: required")
        elif len(content) > 5000:
            problems.append(f"{where}.content: over 5000 characters")
        if not E164.fullmatch(str(item.get("destination_number") or "")):
            problems.append(f"{where}.destination_number: E.164 required")
        if item.get("format", "SMS") not in ("SMS", "MMS", "TTS"):
            problems.append(f"{where}.format: SMS, MMS or TTS")
        if "delivery_report" in item and not isinstance(item["delivery_report"], bool):
            problems.append(f"{where}.delivery_report: boolean")
        if "callback_url" in item and not url_ok(str(item["callback_url"])):
            problems.append(f"{where}.callback_url: not a URL")
        kind = item.get("source_number_type")
        if kind is not None:
            if "source_number" not in item:
                problems.append(f"{where}.source_number_type: only with source_number")
            if kind not in ("INTERNATIONAL", "ALPHANUMERIC", "SHORTCODE"):
                problems.append(f"{where}.source_number_type: {kind!r}")
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict) or len(metadata) > 10:
                problems.append(f"{where}.metadata: up to 10 pairs")
            elif any(
                not isinstance(v, str) or len(k) > 100 or len(v) > 256 for k, v in metadata.items()
            ):
                problems.append(f"{where}.metadata: keys <= 100, string values <= 256")
        if "subject" in item and len(str(item["subject"])) > 64:
            problems.append(f"{where}.subject: over 64 characters")
        if "media" in item and item.get("format") != "MMS":
            problems.append(f"{where}.media: only with format MMS")
        if "subject" in item and item.get("format") != "MMS":
            problems.append(f"{where}.subject: only with format MMS")
        media = item.get("media")
        if item.get("format") == "MMS" and (
            not isinstance(media, list)
            or not media
            or not all(isinstance(u, str) and url_ok(u) for u in media)
        ):
            problems.append(f"{where}.media: format MMS needs a list of media URLs")
        return problems

    def send(self, request: Request) -> Response:
        refused = self._auth(request)
        if refused:
            return refused
        try:
            data = request.json()
        except ValueError:
            return self._invalid(["body is not JSON"])
        if request.content_type != "application/json" or not isinstance(data, dict):
            return self._invalid(["send a JSON object"])
        items = data.get("messages")
        if not isinstance(items, list) or not items:
            return self._invalid(["messages: at least one"])
        if len(items) > MAX_MESSAGES:
            return self._invalid([f"messages: at most {MAX_MESSAGES}"])
        problems = [p for i, item in enumerate(items) for p in self._check(i, item)]
        if problems:
            return self._invalid(problems)
        out = []
        for item in items:
            message = MessageMediaMessage(str(uuid.uuid4()), item)
            self.accepted.append(message)
            out.append(message.resource())
        return Response(202, {"messages": out})

    def message(self, mid: str) -> MessageMediaMessage | None:
        return next((m for m in self.accepted if m.message_id == mid), None)

    def fetch(self, request: Request, mid: str) -> Response:
        refused = self._auth(request)
        if refused:
            return refused
        found = self.message(mid)
        if found is None:
            return Response(404, {"message": "Resource not found"})
        return Response(200, found.resource())

    def reports(self, request: Request) -> Response:
        refused = self._auth(request)
        if refused:
            return refused
        return Response(200, {"delivery_reports": self.unconfirmed[:100]})

    def confirm(self, request: Request) -> Response:
        refused = self._auth(request)
        if refused:
            return refused
        ids = set((request.json() or {}).get("delivery_report_ids") or [])
        self.unconfirmed = [r for r in self.unconfirmed if r["delivery_report_id"] not in ids]
        return Response(202, {})

    # --- callbacks -----------------------------------------------------------------------

    def _headers(self, url: str, content: bytes) -> dict[str, str]:
        date = format_datetime(datetime.now(UTC), usegmt=True)
        headers = {"content-type": "application/json", "date": date}
        if self.signing_key is not None:
            signature = self.signing_key.sign(
                signed_message(url, date, content), padding.PKCS1v15(), DIGESTS[self.digest]()
            )
            headers["x-messagemedia-signature"] = base64.b64encode(signature).decode()
        return headers

    def _vendor(self) -> dict[str, str]:
        return {"vendor_id": "MessageMedia", "account_id": self.account_id}

    async def post_status(
        self,
        target: Target,
        message_id: str,
        status: str,
        *,
        at: datetime | None = None,
        error_code: str | None = None,
    ) -> httpx.Response:
        """A delivery report for a message that asked for them, to its callback_url."""
        found = self.message(message_id)
        if found is None:
            raise LookupError(message_id)
        if not found.item.get("delivery_report"):
            raise ValueError("the message did not ask for delivery reports")
        url = found.item.get("callback_url")
        if not url:
            raise ValueError("no callback_url (account webhooks are not emulated)")
        found.status = status
        now = datetime.now(UTC)
        report = {
            "callback_url": url,
            "delivery_report_id": str(uuid.uuid4()),
            "source_number": found.item["destination_number"],
            "date_received": iso(now),
            "status": status,
            "delay": 0,
            "submitted_date": iso(at or now),
            "original_text": found.item["content"],
            "message_id": found.message_id,
            "vendor_account_id": self._vendor(),
            "metadata": found.item.get("metadata") or {},
        }
        if error_code is not None:
            report["error_code"] = error_code
        self.unconfirmed.append(report)
        content = json.dumps(report).encode()
        return await self.deliver(target, url, content=content, headers=self._headers(url, content))

    async def post_inbound(
        self,
        target: Target,
        url: str | None,
        from_: str,
        to: str,
        body: str,
        *,
        channel: str = "sms",
        in_reply_to: str | None = None,
    ) -> httpx.Response:
        """A reply. A reply to a message goes to that message's callback_url (as its
        delivery reports do) with its metadata; otherwise to `url` (an account webhook)."""
        if channel != "sms":
            raise ValueError("SMS only")
        original = self.message(in_reply_to) if in_reply_to else None
        if original is not None:
            url = original.item.get("callback_url") or url
        if not url:
            raise ValueError("no URL to post the reply to")
        reply = {
            "callback_url": url,
            "reply_id": str(uuid.uuid4()),
            "source_number": from_,
            "destination_number": to,
            "date_received": iso(datetime.now(UTC)),
            "content": body,
            "vendor_account_id": self._vendor(),
            "metadata": (original.item.get("metadata") if original else None) or {},
        }
        if original is not None:
            reply["message_id"] = original.message_id
        content = json.dumps(reply).encode()
        return await self.deliver(target, url, content=content, headers=self._headers(url, content))
