"""Twilio's Programmable Messaging API (2010-04-01), emulated.

Sources read:
- the OpenAPI spec, github:twilio/twilio-oai spec/json/twilio_api_v2010.json (path
  /2010-04-01/Accounts/{AccountSid}/Messages.json: POST form `To` (required), `From`,
  `MessagingServiceSid`, `Body`, `MediaUrl` (array), `StatusCallback`, ...; security
  `accountSid_authToken` = HTTP Basic; 201 answer = api.v2010.account.message; GET with
  `To`, `From`, `PageSize`, `Page`, ... answers ListMessageResponse);
- the signature, github:twilio/twilio-python twilio/request_validator.py: base64 of
  HMAC-SHA1(auth token, URL + for each POST parameter name in sorted order, name + value
  (repeated values sorted)); `validate` accepts the URL with and without its port, because
  "sig generation on back end is inconsistent"; JSON bodies are signed over the URL only
  and carry `bodySHA256` in the query (not used by Messaging callbacks: they are forms).

Checked on every request: host api.twilio.com; Basic auth = (AccountSid in the path, auth
token); form encoding; `To` present and E.164 or `whatsapp:+E.164`; `From` or
`MessagingServiceSid`; `Body`, `MediaUrl` or `ContentSid`; `Body` at most 1,600
characters; at most 10 `MediaUrl`; `StatusCallback` an http(s) URL without underscores in
its host; From and To on the same channel; parameter names known to the spec.

Error codes answered: 20003 (401, bad credentials), 20404 (404), 21604 (To missing),
21603 (From missing), 21602 (body missing), 21617 (body too long), 21211 (bad To), 21910
(From/To channel mismatch). These come from Twilio's error dictionary, not the OpenAPI
spec; the spec is silent about the codes for more than 10 MediaUrl and for a bad
StatusCallback, so those answer 400 with code 21620 and 21609 respectively only as
placeholders (see `violations` for the reason).

Content templates (github:twilio/twilio-oai spec/json/twilio_content_v1.json and the
Content API docs "create and send your first content api template"): a WhatsApp template
is sent with `ContentSid` (HX + 32 hex) and `ContentVariables`, a JSON object whose keys
are the template's placeholder numbers ("1", "2", ...) and whose values are strings; no
Body is needed. `GET https://content.twilio.com/v1/Content/{Sid}/ApprovalRequests` (Basic
auth) answers {sid, account_sid, url, whatsapp: {name, category, content_type, status,
rejection_reason, allow_category_change, type}}; status is one of received, pending,
approved, rejected, paused, disabled, unsubmitted. Unknown ContentSid: 404 code 20404;
ContentVariables that are not a JSON object of strings, or name a placeholder the content
does not have: 400 code 21656 ("The ContentVariables Parameter is invalid"). The emulator
refuses free-form WhatsApp text to a person who has not written within 24 hours the way
Twilio does: accepted, then failed with ErrorCode 63016.

A tap on a quick-reply button comes as an inbound message with ButtonText (what was
tapped), ButtonPayload (the button's id) and MessageType=button.

Status callbacks (form-encoded): MessageSid, SmsSid, MessageStatus, SmsStatus, AccountSid,
From, To, ApiVersion, MessagingServiceSid (if any), ErrorCode (failed/undelivered),
RawDlrDoneDate (YYMMDDhhmm, delivered/undelivered). Inbound: MessageSid, SmsSid,
SmsMessageSid, AccountSid, MessagingServiceSid, From, To, Body, NumMedia, NumSegments,
SmsStatus=received, ApiVersion (+ ProfileName, WaId for WhatsApp).

Advanced Opt-Out (a Messaging Service setting): Twilio answers the opt-out, opt-in and help
keywords itself (with the replies configured there; the standard STOP, START and HELP
cannot be removed, more can be added, in any language) and still posts the message to the
incoming webhook with OptOutType=STOP, START or HELP. A message is a keyword only when its
whole body is one, case ignored ("Stop" is, "Stop please" is not). Only a number of a
Messaging Service with Advanced Opt-Out enabled gets the parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from tests.emulators.base import Emulator, Request, Response, Target, url_ok

HOST = r"api\.twilio\.com"
API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9]\d{1,14}")
ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
SHORT_CODE = re.compile(r"\d{3,8}")
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
APPROVAL_STATUSES = {
    "received", "pending", "approved", "rejected", "paused", "disabled", "unsubmitted",
}  # fmt: skip
CREATE_PARAMS = {
    "To",
    "StatusCallback",
    "ApplicationSid",
    "MaxPrice",
    "ProvideFeedback",
    "Attempt",
    "ValidityPeriod",
    "ForceDelivery",
    "ContentRetention",
    "AddressRetention",
    "SmartEncoded",
    "PersistentAction",
    "TrafficType",
    "ShortenUrls",
    "ScheduleType",
    "SendAt",
    "SendAsMms",
    "ContentVariables",
    "RiskCheck",
    "From",
    "FallbackFrom",
    "MessagingServiceSid",
    "Body",
    "MediaUrl",
    "ContentSid",
}


def sign(auth_token: str, url: str, params: Mapping[str, str | Sequence[str]]) -> str:
    """X-Twilio-Signature as Twilio computes it (see the module docstring)."""
    data = url
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else list(value)
        for one in sorted(set(values)):
            data += name + one
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _channel(address: str) -> str:
    return address.split(":", 1)[0] if ":" in address else "sms"


@dataclass
class TwilioMessage:
    sid: str
    to: str
    from_: str | None
    body: str
    messaging_service_sid: str | None
    status_callback: str | None
    media_urls: list[str]
    status: str
    created: datetime
    error_code: int | None = None
    form: dict[str, list[str]] = field(default_factory=dict)

    def resource(self, account_sid: str) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.created),
            "date_sent": None,
            "date_updated": _rfc2822(self.created),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": uri,
        }


class TwilioEmulator(Emulator):
    name = "Twilio"

    def __init__(self, account_sid: str, auth_token: str, *, friendly_name: str = "Emulated"):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.friendly_name = friendly_name
        self.accepted: list[TwilioMessage] = []
        self.outside_window: list[str] = []  # SIDs of free-form WhatsApp text Twilio refused
        base = f"/{API_VERSION}/Accounts/(?P<sid>[^/]+)"
        self.route("POST", HOST, base + r"/Messages\.json", self.create)
        self.route("GET", HOST, base + r"/Messages\.json", self.list)
        self.route("GET", HOST, base + r"/Messages/(?P<msid>[^/]+)\.json", self.fetch)
        self.route("GET", HOST, base + r"\.json", self.account)
        self.route(
            "GET",
            r"content\.twilio\.com",
            r"/v1/Content/(?P<content_sid>[^/]+)/ApprovalRequests",
            self.approval,
        )
        # ContentSid -> (placeholder count, WhatsApp name, category, approval status)
        self.contents: dict[str, dict[str, Any]] = {}
        # whatsapp:+phone -> when it last wrote to us (the 24-hour session)
        self.last_inbound: dict[str, datetime] = {}
        # Messaging Service SID -> its Advanced Opt-Out keywords (KEYWORD -> STOP/START/HELP)
        self.advanced_opt_out: dict[str, dict[str, str]] = {}

    def enable_advanced_opt_out(self, service_sid: str, **extra: str) -> None:
        """Advanced Opt-Out on the service: the standard keywords and `extra` ones
        (ALTO="STOP", AYUDA="HELP"...), which Twilio answers and reports as OptOutType."""
        keywords = {w: "STOP" for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")}
        keywords |= {"START": "START", "UNSTOP": "START", "YES": "START"}
        keywords |= {"HELP": "HELP", "INFO": "HELP"}
        self.advanced_opt_out[service_sid] = keywords | {k.upper(): v for k, v in extra.items()}

    def add_content(
        self, name: str, placeholders: int, *, status: str = "approved", category: str = "UTILITY"
    ) -> str:
        """A content template as if made in the Twilio console; returns its ContentSid."""
        assert status in APPROVAL_STATUSES
        sid = "HX" + secrets.token_hex(16)
        self.contents[sid] = {
            "name": name, "placeholders": placeholders, "status": status, "category": category,
        }  # fmt: skip
        return sid

    def approval(self, request: Request, content_sid: str) -> Response:
        if request.basic_auth() != (self.account_sid, self.auth_token):
            return self.violation(401, _error(401, 20003, "Authenticate"), "Twilio Content: auth")
        content = self.contents.get(content_sid)
        if content is None:
            return Response(404, _error(404, 20404, f"Content {content_sid} was not found"))
        return Response(
            200,
            {
                "sid": content_sid,
                "account_sid": self.account_sid,
                "url": f"https://content.twilio.com/v1/Content/{content_sid}/ApprovalRequests",
                "whatsapp": {
                    "name": content["name"],
                    "category": content["category"],
                    "content_type": "twilio/text",
                    "status": content["status"],
                    "rejection_reason": "Tone" if content["status"] == "rejected" else "",
                    "allow_category_change": True,
                    "type": "whatsapp",
                },
            },
        )

    def _content_problem(self, one: Mapping[str, str]) -> Response | None:
        sid = one.get("ContentSid")
        if sid is None:
            if "ContentVariables" in one:
                return self._bad(21656, "ContentVariables without a ContentSid.")
            return None
        if not CONTENT_SID.fullmatch(sid) or sid not in self.contents:
            return self.violation(
                404, _error(404, 20404, f"Content {sid} was not found"), f"Twilio: ContentSid {sid}"
            )
        try:
            variables = json.loads(one.get("ContentVariables") or "{}")
        except ValueError:
            return self._bad(21656, "The ContentVariables Parameter is invalid.")
        places = {str(n) for n in range(1, self.contents[sid]["placeholders"] + 1)}
        if (
            not isinstance(variables, dict)
            or not all(isinstance(v, str) for v in variables.values())
            or set(variables) - places
        ):
            return self._bad(21656, "The ContentVariables Parameter is invalid.")
        if "Body" in one:
            self.violations.append("Twilio: Body sent with a ContentSid (the content is the text)")
        return None

    # --- API -----------------------------------------------------------------------------

    def _auth(self, request: Request, sid: str) -> Response | None:
        if request.basic_auth() != (self.account_sid, self.auth_token) or sid != self.account_sid:
            return self.violation(
                401, _error(401, 20003, "Authenticate"), "Twilio: bad or missing HTTP Basic auth"
            )
        return None

    def create(self, request: Request, sid: str) -> Response:
        refused = self._auth(request, sid)
        if refused:
            return refused
        if request.content_type != "application/x-www-form-urlencoded":
            return self.violation(
                400,
                _error(400, 20001, "Request must be form-encoded"),
                f"Twilio: content type {request.content_type!r} is not a form",
            )
        form = request.form()
        unknown = set(form) - CREATE_PARAMS
        if unknown:
            # Twilio ignores them; a gateway sending them misread the API.
            self.violations.append(f"Twilio: unknown parameters {sorted(unknown)}")
        one = {k: v[-1] for k, v in form.items()}
        to, sender, service = one.get("To", ""), one.get("From"), one.get("MessagingServiceSid")
        body, media = one.get("Body", ""), form.get("MediaUrl", [])
        callback = one.get("StatusCallback")
        if not to:
            return self._bad(21604, "A 'To' phone number is required.")
        if not E164.fullmatch(to.removeprefix("whatsapp:")):
            return self._bad(21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:
            return self._bad(21603, "A 'From' phone number is required.")
        if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
            return self._bad(21701, f"The Messaging Service Sid {service} is invalid.")
        if sender and not (
            E164.fullmatch(sender.removeprefix("whatsapp:"))
            or ALPHA_SENDER.fullmatch(sender)
            or SHORT_CODE.fullmatch(sender)
        ):
            return self._bad(21212, f"The 'From' number {sender} is not a valid phone number.")
        if sender and _channel(sender) != _channel(to):
            return self._bad(
                21910, "Invalid From and To pair. From and To should be of the same channel"
            )
        if not body and not media and not one.get("ContentSid"):
            return self._bad(21602, "Message body is required.")
        content_problem = self._content_problem(one)
        if content_problem is not None:
            return content_problem
        if len(body) > 1600:
            return self._bad(
                21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if len(media) > 10:
            return self._bad(21620, "More than 10 MediaUrl parameters (placeholder code).")
        if any(not url_ok(url) for url in media):
            # Twilio fetches each MediaUrl itself: it must be a public http(s) URL.
            return self._bad(21620, "A MediaUrl is not an http(s) URL (placeholder code).")
        if callback is not None and (
            not url_ok(callback) or "_" in (urlsplit(callback).hostname or "")
        ):
            return self._bad(21609, f"Invalid StatusCallback {callback!r} (placeholder code).")
        message = TwilioMessage(
            sid="SM" + secrets.token_hex(16),
            to=to,
            from_=sender,
            body=body,
            messaging_service_sid=service,
            status_callback=callback,
            media_urls=media,
            # With a messaging service and no From, Twilio answers `accepted` first.
            status="accepted" if service and not sender else "queued",
            created=datetime.now(UTC),
            form=form,
        )
        last = self.last_inbound.get(to)
        if (
            _channel(to) == "whatsapp"
            and not one.get("ContentSid")
            and (last is None or datetime.now(UTC) - last > timedelta(hours=24))
        ):
            # Accepted, then failed: free-form text outside the 24-hour session.
            message.status, message.error_code = "failed", 63016
            self.outside_window.append(message.sid)
        self.accepted.append(message)
        return Response(201, message.resource(self.account_sid))

    def _bad(self, code: int, message: str) -> Response:
        return self.violation(400, _error(400, code, message), f"Twilio {code}: {message}")

    def list(self, request: Request, sid: str) -> Response:
        refused = self._auth(request, sid)
        if refused:
            return refused
        to = (request.query.get("To") or [None])[0]
        sender = (request.query.get("From") or [None])[0]
        size = int((request.query.get("PageSize") or ["50"])[0])
        if not 1 <= size <= 1000:
            return self._bad(20001, "PageSize must be between 1 and 1000")
        found = [
            m
            for m in reversed(self.accepted)
            if (to is None or m.to == to) and (sender is None or m.from_ == sender)
        ][:size]
        uri = f"/{API_VERSION}/Accounts/{sid}/Messages.json?PageSize={size}&Page=0"
        return Response(
            200,
            {
                "messages": [m.resource(sid) for m in found],
                "end": max(len(found) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
        )

    def fetch(self, request: Request, sid: str, msid: str) -> Response:
        refused = self._auth(request, sid)
        if refused:
            return refused
        message = self.message(msid)
        if message is None:
            return Response(
                404, _error(404, 20404, f"The requested resource {request.path} was not found")
            )
        return Response(200, message.resource(sid))

    def account(self, request: Request, sid: str) -> Response:
        refused = self._auth(request, sid)
        if refused:
            return refused
        return Response(
            200,
            {"sid": sid, "friendly_name": self.friendly_name, "status": "active", "type": "Full"},
        )

    def message(self, sid: str) -> TwilioMessage | None:
        return next((m for m in self.accepted if m.sid == sid), None)

    # --- callbacks -----------------------------------------------------------------------

    def signed(self, url: str, params: dict[str, str], *, sign_with_port: bool = False):
        signature = sign(self.auth_token, with_port(url) if sign_with_port else url, params)
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
            "i-twilio-idempotency-token": secrets.token_hex(16),
            "user-agent": "TwilioProxy/1.1",
        }
        return urlencode(params).encode(), headers

    async def post_status(
        self,
        target: Target,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        at: datetime | None = None,
        sign_with_port: bool = False,
    ) -> httpx.Response:
        """Move a message to `status` (sent, delivered, undelivered, failed, read, ...) and
        post the status callback to its StatusCallback URL."""
        message = self.message(sid)
        if message is None or not message.status_callback:
            raise LookupError(f"no message {sid} with a StatusCallback")
        message.status = status
        message.error_code = error_code
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "To": message.to,
            "ApiVersion": API_VERSION,
        }
        if message.from_:
            params["From"] = message.from_
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = str(error_code or 30003)
        if status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = (at or datetime.now(UTC)).strftime("%y%m%d%H%M")
        content, headers = self.signed(
            message.status_callback, params, sign_with_port=sign_with_port
        )
        return await self.deliver(target, message.status_callback, content=content, headers=headers)

    async def post_inbound(
        self,
        target: Target,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        channel: str = "sms",
        messaging_service_sid: str | None = None,
        media: Sequence[tuple[str, str]] = (),
        button_text: str | None = None,
        button_payload: str | None = None,
    ) -> httpx.Response:
        """A message from a handset to one of the account's numbers (the number's webhook);
        an MMS names its `media` as (URL, content type) pairs: NumMedia, MediaUrlN and
        MediaContentTypeN, as Twilio's incoming-message webhook does."""
        sid = "SM" + secrets.token_hex(16)
        prefix = "whatsapp:" if channel == "whatsapp" else ""
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": self.account_sid,
            "From": prefix + from_,
            "To": prefix + to,
            "Body": body,
            "NumMedia": str(len(media)),
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        for index, (media_url, content_type) in enumerate(media):
            params[f"MediaUrl{index}"] = media_url
            params[f"MediaContentType{index}"] = content_type
        if messaging_service_sid:
            params["MessagingServiceSid"] = messaging_service_sid
            keywords = self.advanced_opt_out.get(messaging_service_sid, {})
            if kind := keywords.get(body.strip().upper()):
                params["OptOutType"] = kind
        if channel == "whatsapp":
            params["ProfileName"] = "Emulated"
            params["WaId"] = from_.lstrip("+")
            params["MessageType"] = "text"
            self.last_inbound[prefix + from_] = datetime.now(UTC)
        if button_text is not None:
            params.update(ButtonText=button_text, ButtonPayload=button_payload or "")
            params["MessageType"] = "button"
        content, headers = self.signed(url, params)
        return await self.deliver(target, url, content=content, headers=headers)
