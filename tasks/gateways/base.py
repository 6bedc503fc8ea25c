"""What every real provider gateway shares: its integration's settings, the callback
contract (verify, parse status reports, parse inbound messages, answer), test connection,
and splitting a refused batch to find the messages the provider objects to."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from tasks.gateways.http import CallbackRequest, ConnectionCheck
from tenants.errors import ValidationFailed
from tenants.messaging.inbound import InboundReport
from tenants.messaging.outbox import OutboundMessage, SubmitResult, TransientProviderError
from tenants.providers.callbacks import ProviderEvent
from tenants.providers.codes import provider_code
from tenants.providers.integrations import KINDS, IntegrationConfig


class RequestRefused(Exception):
    """The provider refused a whole request as invalid (one bad message spoils the batch)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class IntegrationGateway(ABC):
    """Base of the gateways built from a provider integration; each provider implements
    the abstract methods."""

    kind = ""
    # Providers that push replies to a message's own callback URL (the status URL): the
    # status hook then also reads the callback as inbound messages.
    inbound_on_status_url = False

    def __init__(
        self, config: IntegrationConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.transport = transport
        self.name = config.key
        self.channels: frozenset[str] = KINDS[config.kind].channels
        self.rate_limit = config.rate_limit

    # --- submission (tenants.dispatch.Gateway) ---------------------------------------

    @abstractmethod
    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]: ...

    @abstractmethod
    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]: ...

    # --- callbacks ---------------------------------------------------------------------

    def verify(self, request: CallbackRequest) -> None:
        """Raise PermissionDenied unless the provider signed the request (the secret path
        segment was already checked by the hook)."""
        # Providers that sign their callbacks override this; the others are verified by
        # the secret path segment alone.
        return None

    @abstractmethod
    def parse_status(self, request: CallbackRequest) -> list[ProviderEvent]: ...

    @abstractmethod
    def parse_inbound(self, request: CallbackRequest) -> list[InboundReport]: ...

    def delivered_channels(self, request: CallbackRequest) -> list[tuple[str, str]]:
        """(provider ref, channel) of each message a status callback says was carried on a
        channel (providers that fall back from one channel to another report it)."""
        return []

    def answer(self, kind: str) -> tuple[str, str]:
        """The body and media type the provider expects back (kind: status or inbound)."""
        return "", "text/plain"

    @abstractmethod
    async def test_connection(self) -> ConnectionCheck: ...

    # --- helpers -----------------------------------------------------------------------

    @property
    def status_url(self) -> str:
        return self.config.status_url()

    def default_sender(self) -> str:
        return self.config.value("default_sender")


async def submit_splitting(
    batch: Sequence[OutboundMessage],
    send: Callable[[Sequence[OutboundMessage]], Awaitable[list[SubmitResult]]],
) -> list[SubmitResult]:
    """Send the batch; when the provider refuses the whole request, split it in halves until
    the refused messages stand alone (they are `rejected` with the provider's code and the
    others still go out). A transient failure after some halves went out keeps their
    results and hands the rest back for a retry."""
    try:
        return await send(batch)
    except RequestRefused as refused:
        if len(batch) == 1:
            return [SubmitResult(batch[0].message_id, False, error_code=refused.code)]
    middle = len(batch) // 2
    results: list[SubmitResult] = []
    for half in (batch[:middle], batch[middle:]):
        try:
            results.extend(await submit_splitting(half, send))
        except TransientProviderError:
            results.extend(SubmitResult(m.message_id, False, retry=True) for m in half)
    return results


def auth_failed(message_id: int) -> SubmitResult:
    """The provider refused our credentials: the message was not sent (no retry)."""
    return SubmitResult(message_id, False, error_code="PROVIDER_AUTH_FAILED", not_submitted=True)


def refused_one(message_id: int, provider: str, status: int, reason: Any) -> SubmitResult:
    """One message the provider answered with an error status: 401 is our credentials, 403
    forbids it (neither was sent), any other status rejects it; `reason` is the provider's
    own code for it, mapped with `provider_code`."""
    if status == 401:
        return auth_failed(message_id)
    code = provider_code(provider, reason)
    return SubmitResult(message_id, False, error_code=code, not_submitted=status == 403)


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ValidationFailed({"body": "Send JSON."}) from None


def parse_time(value: Any) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return datetime.now(UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def e164(number: Any) -> str:
    """Providers write numbers with or without the +; we store E.164 with it."""
    text = str(number or "").strip()
    if text.startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    digits = text.lstrip("+")
    return "+" + digits if digits.isdigit() else text


def error_message(response: httpx.Response, *keys: str) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    for key in keys:
        if isinstance(data, dict) and key in data:
            data = data[key]
        else:
            break
    return str(data)[:200]
