"""The gateway to the built-in provider simulator: batches over httpx with connection
reuse (one client per event loop), lookups by reference, and parsing of its callbacks."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from tenants.errors import PermissionDenied, ValidationFailed
from tenants.messaging.inbound import InboundReport
from tenants.messaging.messages import StatusReport
from tenants.messaging.outbox import OutboundMessage, SubmitResult, TransientProviderError
from tenants.settings import get_settings

SECRET_HEADER = "x-simulator-secret"


def simulator_secret() -> str:
    return get_settings().simulator.secret


def portal_base_url() -> str:
    return get_settings().web.base_url


def simulator_url() -> str:
    """The simulator the gateway talks to: SIMULATOR_URL, else this portal's own mount."""
    return get_settings().simulator.url or f"{portal_base_url()}/simulator"


def verify_secret(headers: Mapping[str, str]) -> None:
    given = headers.get(SECRET_HEADER) or headers.get(SECRET_HEADER.title()) or ""
    if not hmac.compare_digest(given.encode(), simulator_secret().encode()):
        raise PermissionDenied("bad or missing X-Simulator-Secret")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed({"at": "Must be an ISO 8601 time."}) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _load(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ValidationFailed({"body": "Send JSON."}) from None


class SimulatorGateway:
    """Talks to the simulator at `base_url` (the portal's own /simulator mount unless
    SIMULATOR_URL names another process) and has its callbacks sent to `portal_url`."""

    name = "simulator"
    channels = frozenset({"sms", "mms", "rcs", "whatsapp"})

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        portal_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.portal_url = portal_url.rstrip("/")
        self.secret = secret
        self.transport = transport
        self.timeout = timeout
        # An httpx client belongs to the event loop that opened its connections; each
        # worker loop keeps its own and reuses its connections for every chunk.
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    @classmethod
    def from_settings(cls, transport: httpx.AsyncBaseTransport | None = None) -> SimulatorGateway:
        return cls(
            simulator_url(), simulator_secret(), portal_url=portal_base_url(), transport=transport
        )

    @property
    def callback_url(self) -> str:
        return f"{self.portal_url}/hooks/simulator/status"

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self.transport,
                timeout=self.timeout,
                headers={"X-Simulator-Secret": self.secret},
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
            self._clients[loop] = client
        return client

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        try:
            response = await self._client().post(path, json=payload)
        except httpx.TransportError as exc:
            raise TransientProviderError(f"simulator unreachable: {exc!r}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientProviderError(f"simulator answered {response.status_code}")
        response.raise_for_status()
        return response.json()

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        payload = {
            "callback_url": self.callback_url,
            "messages": [
                {
                    "reference": str(m.message_id),
                    "to": m.to,
                    "from": m.sender,
                    "body": m.body,
                    "channel": m.channel,
                }
                for m in batch
            ],
        }
        answer = await self._post("/api/messages", payload)
        return [
            SubmitResult(
                message_id=int(r["reference"]),
                accepted=bool(r["accepted"]),
                provider_ref=r.get("provider_ref"),
                error_code=r.get("error_code"),
            )
            for r in answer["results"]
        ]

    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]:
        answer = await self._post("/api/lookup", {"references": [str(m.message_id) for m in batch]})
        return {int(ref): provider_ref for ref, provider_ref in answer["found"].items()}

    async def delivery_reports(self, batch: Sequence[OutboundMessage]) -> list[StatusReport]:
        """The statuses the simulator can tell for these messages (lost callbacks)."""
        answer = await self._post("/api/lookup", {"references": [str(m.message_id) for m in batch]})
        stamp = datetime.now(UTC)
        return [
            StatusReport(
                message_id=int(ref),
                status=item["status"],
                at=stamp,
                provider_ref=item.get("provider_ref"),
                # The id its callback carries: a callback arriving too is not applied twice.
                event_id=f"{item.get('provider_ref')}:{item['status']}",
            )
            for ref, item in (answer.get("statuses") or {}).items()
        ]

    def parse_status_callback(self, headers: Mapping[str, str], body: bytes) -> list[StatusReport]:
        """One event `{message_id, status, at?, error_code?, provider_ref?, event_id?}` or a list."""
        verify_secret(headers)
        data = _load(body)
        items = data if isinstance(data, list) else [data]
        reports: list[StatusReport] = []
        for item in items:
            if not isinstance(item, dict):
                raise ValidationFailed({"body": "Each event must be a JSON object."})
            try:
                message_id = int(item["message_id"])
            except (KeyError, TypeError, ValueError):
                raise ValidationFailed({"message_id": "Must be the message id."}) from None
            status = item.get("status")
            if not isinstance(status, str) or not status:
                raise ValidationFailed({"status": "Must be a status name."})
            reports.append(
                StatusReport(
                    message_id=message_id,
                    status=status,
                    at=_parse_time(item.get("at")),
                    error_code=item.get("error_code") or None,
                    provider_ref=item.get("provider_ref") or None,
                    event_id=str(item["event_id"]) if item.get("event_id") else None,
                )
            )
        return reports

    def parse_inbound(self, headers: Mapping[str, str], body: bytes) -> InboundReport:
        """`{id, from, to, body}` as CONTRACT.md describes, with an optional `channel` (sms,
        mms, rcs, whatsapp; default sms) and `media_urls` (a list of URLs)."""
        verify_secret(headers)
        data = _load(body)
        if not isinstance(data, dict):
            raise ValidationFailed({"body": "Send a JSON object."})
        errors: dict[str, str] = {}
        for name in ("id", "from", "to"):
            if not isinstance(data.get(name), str | int) or not str(data.get(name)).strip():
                errors[name] = "Required."
        if not isinstance(data.get("body"), str):
            errors["body"] = "Required (a string)."
        channel = data.get("channel", "sms")
        if not isinstance(channel, str):
            errors["channel"] = "Must be sms, mms, rcs or whatsapp."
        media = data.get("media_urls", [])
        if not isinstance(media, list) or not all(isinstance(u, str) for u in media):
            errors["media_urls"] = "Must be a list of URLs."
        if errors:
            raise ValidationFailed(errors)
        return InboundReport(
            provider="simulator",
            provider_ref=str(data["id"]),
            sender=str(data["from"]).strip(),
            to=str(data["to"]).strip(),
            body=data["body"],
            at=_parse_time(data.get("at")),
            channel=str(channel),
            media_urls=tuple(media),
        )
