"""Sinch's SMS REST API (xms v1, service-plan token), emulated.

Sources read:
- https://developers.sinch.com/docs/sms/api-reference/sms/tag/Webhooks/ (callbacks: POSTs
  to the batch's callback_url, retried on 5xx/429; callback authentication is arranged
  with the account manager: basic auth, OAuth2, mTLS, ...), and the batches reference
  https://developers.sinch.com/docs/sms/api-reference/sms/batches (host
  https://{region}.sms.api.sinch.com, Bearer auth, GET /xms/v1/{service_plan_id}/batches/{id});
- github:sinch/sinch-sdk-python: sinch/domains/sms/models/v1/shared/text_request.py (`to`
  and `body` required, `from` "required if Automatic Default Originator not configured",
  type `mt_text`, delivery_report, callback_url, client_reference ...),
  .../response/recipient_delivery_report.py (type recipient_delivery_report_sms, batch_id,
  recipient, code, status, at, operator_status_at, client_reference),
  sinch/domains/sms/sinch_events/v1/sms_sinch_event.py and the README ("Signature
  authentication for SMS events must be enabled for your account by your account manager;
  until then the signature headers are absent"): when enabled, SMS callbacks are signed as
  Conversation webhooks are (x-sinch-webhook-signature over body.nonce.timestamp, see
  sinch_conversation.py). tests/e2e/sms/features/steps/webhooks.steps.py shows the wire
  values: statuses capitalised ("Delivered", "Aborted"), numbers without "+".

Checked: host {region}.sms.api.sinch.com of the plan's region; path plan id; Bearer token;
JSON body; `to` a non-empty list of at most 1000 MSISDNs; `body` a string with `type`
mt_text, or with `type` mt_media (MMS, developers.sinch.com/docs/sms/api-reference/mms-support
and the SDKs' MediaRequest/MediaBody) an object with a required `url` and an optional
`message`;
`from` present unless the emulated plan has a default originator; delivery_report one of
none/summary/full/per_recipient/per_recipient_final; callback_url an http(s) URL;
client_reference at most 2048 characters. The docs I read do not state the 1000 and 2048
limits nor the error bodies' codes; they are the values the portal's gateway assumes and
the `{"code": ..., "text": ...}` shape Sinch's error examples use (codes
syntax_constraint_violation, syntax_invalid_json, unauthorized are not confirmed here).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.emulators.base import Emulator, Request, Response, Target, url_ok
from tests.emulators.sinch_conversation import signature_headers

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MSISDN = re.compile(r"\+?[1-9]\d{1,14}")
REPORT_KINDS = {"none", "summary", "full", "per_recipient", "per_recipient_final"}
MAX_RECIPIENTS = 1000
MAX_REFERENCE = 2048
DEFAULT_CODES = {"Queued": 400, "Dispatched": 401, "Delivered": 0}


def batch_id() -> str:
    return "01" + "".join(secrets.choice(CROCKFORD) for _ in range(24))


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass
class SinchBatch:
    id: str
    to: list[str]  # without "+", as Sinch writes them
    from_: str | None
    body: Any  # the text (mt_text) or {url, message} (mt_media)
    delivery_report: str
    callback_url: str | None
    client_reference: str | None
    created: datetime
    payload: dict[str, Any]
    statuses: dict[str, tuple[str, int]] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "to": self.to,
            "canceled": False,
            "body": self.body,
            "type": "mt_media" if isinstance(self.body, dict) else "mt_text",
            "created_at": iso(self.created),
            "modified_at": iso(self.created),
            "delivery_report": self.delivery_report,
            "expire_at": iso(self.created + timedelta(days=3)),
            "flash_message": False,
            "feedback_enabled": False,
        }
        if self.from_:
            out["from"] = self.from_
        if self.callback_url:
            out["callback_url"] = self.callback_url
        if self.client_reference is not None:
            out["client_reference"] = self.client_reference
        return out


class SinchSmsEmulator(Emulator):
    name = "Sinch SMS"

    def __init__(
        self,
        service_plan_id: str,
        api_token: str,
        *,
        region: str = "us",
        default_originator: str | None = None,
        callback_secret: str | None = None,
    ) -> None:
        super().__init__()
        self.plan = service_plan_id
        self.token = api_token
        self.region = region
        self.default_originator = default_originator
        # When the account manager enabled signed SMS callbacks (see the docstring).
        self.callback_secret = callback_secret
        self.accepted: list[SinchBatch] = []
        host = r"(?P<region>[a-z]+)\.sms\.api\.sinch\.com"
        base = r"/xms/v1/(?P<plan>[^/]+)/batches"
        self.route("POST", host, base, self.send)
        self.route("GET", host, base, self.list)
        self.route("GET", host, base + r"/(?P<bid>[^/]+)", self.fetch)
        self.route(
            "GET", host, base + r"/(?P<bid>[^/]+)/delivery_report/(?P<rcpt>[^/]+)", self.report
        )

    def _refuse(self, status: int, code: str, text: str) -> Response:
        return self.violation(status, {"code": code, "text": text}, f"Sinch SMS {code}: {text}")

    def _auth(self, request: Request, region: str, plan: str) -> Response | None:
        if region != self.region:
            return self._refuse(401, "unauthorized", f"service plan is not in region {region}")
        if request.bearer() != self.token or plan != self.plan:
            return self._refuse(401, "unauthorized", "bad or missing Bearer token")
        return None

    def send(self, request: Request, region: str, plan: str) -> Response:
        refused = self._auth(request, region, plan)
        if refused:
            return refused
        if request.content_type != "application/json":
            return self._refuse(400, "syntax_invalid_json", "send JSON")
        try:
            data = request.json()
        except ValueError:
            return self._refuse(400, "syntax_invalid_json", "body is not JSON")
        if not isinstance(data, dict):
            return self._refuse(400, "syntax_invalid_json", "body is not an object")
        to = data.get("to")
        if not isinstance(to, list) or not to:
            return self._refuse(400, "syntax_constraint_violation", "to: at least one recipient")
        if len(to) > MAX_RECIPIENTS:
            return self._refuse(400, "syntax_constraint_violation", f"to: over {MAX_RECIPIENTS}")
        bad = [n for n in to if not isinstance(n, str) or not MSISDN.fullmatch(n)]
        if bad:
            return self._refuse(400, "syntax_invalid_parameter_format", f"to: invalid {bad}")
        kind = data.get("type", "mt_text")
        if kind == "mt_media":
            # MediaRequest: body is {url (required), message?}; one file per batch.
            media = data.get("body")
            if not isinstance(media, dict) or not url_ok(str(media.get("url") or "")):
                return self._refuse(400, "syntax_constraint_violation", "body.url: required")
            if set(media) - {"url", "message"} or not isinstance(media.get("message", ""), str):
                return self._refuse(400, "syntax_constraint_violation", "body: url and message")
        elif kind != "mt_text":
            return self._refuse(400, "syntax_constraint_violation", "type: mt_text or mt_media")
        elif not isinstance(data.get("body"), str):
            return self._refuse(400, "syntax_constraint_violation", "body: required")
        sender = data.get("from") or self.default_originator
        if not sender:
            return self._refuse(
                400, "syntax_constraint_violation", "from: required (no default originator)"
            )
        report = data.get("delivery_report", "none")
        if report not in REPORT_KINDS:
            return self._refuse(400, "syntax_constraint_violation", f"delivery_report: {report!r}")
        callback = data.get("callback_url")
        if callback is not None and not url_ok(str(callback)):
            return self._refuse(400, "syntax_invalid_parameter_format", "callback_url: not a URL")
        reference = data.get("client_reference")
        if reference is not None and len(str(reference)) > MAX_REFERENCE:
            return self._refuse(400, "syntax_constraint_violation", "client_reference: too long")
        known = {
            "to", "from", "body", "type", "delivery_report", "callback_url", "client_reference",
            "send_at", "expire_at", "feedback_enabled", "flash_message", "parameters",
            "truncate_concat", "max_number_of_message_parts", "from_ton", "from_npi",
            "strict_validation",
        }  # fmt: skip
        if set(data) - known:
            self.violations.append(f"Sinch SMS: unknown fields {sorted(set(data) - known)}")
        batch = SinchBatch(
            id=batch_id(),
            to=[n.lstrip("+") for n in to],
            from_=data.get("from"),
            body=data["body"],
            delivery_report=report,
            callback_url=callback,
            client_reference=reference,
            created=datetime.now(UTC),
            payload=data,
        )
        batch.statuses = {n: ("Queued", 400) for n in batch.to}
        self.accepted.append(batch)
        return Response(201, batch.resource())

    def list(self, request: Request, region: str, plan: str) -> Response:
        refused = self._auth(request, region, plan)
        if refused:
            return refused
        page = int((request.query.get("page") or ["0"])[0])
        size = int((request.query.get("page_size") or ["30"])[0])
        if not 1 <= size <= 100:
            return self._refuse(400, "syntax_constraint_violation", "page_size: 1 to 100")
        since = (request.query.get("start_date") or [None])[0]
        found = list(reversed(self.accepted))
        if since:
            cutoff = datetime.fromisoformat(since.replace("Z", "+00:00"))
            found = [b for b in found if b.created >= cutoff]
        chunk = found[page * size : (page + 1) * size]
        return Response(
            200,
            {
                "count": len(found),
                "page": page,
                "page_size": len(chunk),
                "batches": [b.resource() for b in chunk],
            },
        )

    def batch(self, bid: str) -> SinchBatch | None:
        return next((b for b in self.accepted if b.id == bid), None)

    def fetch(self, request: Request, region: str, plan: str, bid: str) -> Response:
        refused = self._auth(request, region, plan)
        if refused:
            return refused
        found = self.batch(bid)
        if found is None:
            return Response(404, {"code": "not_found", "text": f"batch {bid} not found"})
        return Response(200, found.resource())

    def report(self, request: Request, region: str, plan: str, bid: str, rcpt: str) -> Response:
        refused = self._auth(request, region, plan)
        if refused:
            return refused
        found = self.batch(bid)
        number = rcpt.lstrip("+")
        if found is None or number not in found.statuses:
            return Response(404, {"code": "not_found", "text": "no such recipient report"})
        status, code = found.statuses[number]
        return Response(200, self._recipient_report(found, number, status, code, datetime.now(UTC)))

    # --- callbacks -----------------------------------------------------------------------

    def _recipient_report(
        self, batch: SinchBatch, number: str, status: str, code: int, at: datetime
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": iso(at),
            "batch_id": batch.id,
            "code": code,
            "operator_status_at": iso(at),
            "recipient": number,
            "status": status,
            "type": "recipient_delivery_report_sms",
        }
        if batch.client_reference is not None:
            out["client_reference"] = batch.client_reference
        return out

    def _headers(self, content: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.callback_secret:
            headers.update(signature_headers(self.callback_secret, content))
        return headers

    async def post_status(
        self,
        target: Target,
        batch: str,
        recipient: str,
        status: str,
        *,
        code: int | None = None,
        at: datetime | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        """A per-recipient delivery report (status: Queued, Dispatched, Delivered, Failed,
        Expired, Rejected, Aborted, Cancelled, Deleted, Unknown) to the batch's
        callback_url (or `url`, the service plan's default)."""
        found = self.batch(batch)
        if found is None:
            raise LookupError(batch)
        if found.delivery_report not in ("per_recipient", "per_recipient_final"):
            raise ValueError(f"batch {batch} asked for {found.delivery_report!r} reports")
        number = recipient.lstrip("+")
        code = DEFAULT_CODES.get(status, 0) if code is None else code
        found.statuses[number] = (status, code)
        target_url = url or found.callback_url
        if not target_url:
            raise ValueError("no callback URL")
        report = self._recipient_report(found, number, status, code, at or datetime.now(UTC))
        content = json.dumps(report).encode()
        return await self.deliver(
            target, target_url, content=content, headers=self._headers(content)
        )

    async def post_inbound(
        self, target: Target, url: str, from_: str, to: str, body: str, *, channel: str = "sms"
    ) -> httpx.Response:
        """An MO text to the service plan's inbound callback URL (set in the dashboard)."""
        if channel != "sms":
            raise ValueError("the SMS API carries SMS only")
        now = datetime.now(UTC)
        message = {
            "type": "mo_text",
            "id": batch_id(),
            "from": from_.lstrip("+"),
            "to": to.lstrip("+"),
            "body": body,
            "received_at": iso(now),
            "sent_at": iso(now),
            "operator_id": "31000",
        }
        content = json.dumps(message).encode()
        return await self.deliver(target, url, content=content, headers=self._headers(content))
