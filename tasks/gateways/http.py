"""The HTTP plumbing every real provider gateway shares: one pooled httpx client per event
loop (connections are reused across chunks), bounded retries with exponential backoff for
answers that say "not processed, try again" (429, 503, a refused connection), and the rule
that a request which may have reached the provider (a read timeout, a 500) is never
repeated blindly: the dispatcher reconciles it by looking it up first."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from tenants.messaging.outbox import TransientProviderError
from tenants.settings import get_settings

# Answers after which the provider did not process the request: safe to send it again.
NOT_PROCESSED = frozenset({429, 503})
# Longest pause honoured from a Retry-After header inside one call; a longer one hands
# the work back to the broker, whose own backoff takes over.
MAX_INLINE_WAIT = 5.0
T = TypeVar("T")


def api_root(public: str, base_url: str) -> str:
    """The provider's API root `public` on the integration's own origin (`api_base_url`:
    a regional endpoint or an emulator); the public API when it has none."""
    if not base_url:
        return public
    parts = urlsplit(public)
    return base_url.rstrip("/") + parts.path


def retry_backoff() -> float:
    """First pause (seconds) between attempts; doubles each time (PROVIDER_RETRY_BACKOFF)."""
    return get_settings().providers.retry_backoff


def request_timeout() -> float:
    return get_settings().providers.timeout_seconds


@dataclass(frozen=True)
class CallbackRequest:
    """A provider's callback as the hook received it. `url` is the public URL the provider
    called (PORTAL_BASE_URL + path + query), which signatures such as Twilio's cover."""

    url: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    form: Mapping[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class ConnectionCheck:
    """What "test connection" reports: whether the provider accepted our credentials."""

    ok: bool
    message: str
    status_code: int | None = None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class ProviderHttp:
    """A provider's HTTP client: base URL, auth, per-loop connection pools, retries."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
        max_attempts: int = 3,
        backoff: float | None = None,
        max_connections: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.auth = auth
        self.headers = dict(headers or {})
        self.transport = transport
        self.timeout = timeout if timeout is not None else request_timeout()
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff if backoff is not None else retry_backoff()
        self.max_connections = max_connections
        # An httpx client belongs to the event loop that opened its connections.
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                base_url=self.base_url,
                auth=self.auth,
                headers=self.headers,
                transport=self.transport,
                timeout=self.timeout,
                limits=httpx.Limits(
                    max_connections=self.max_connections,
                    max_keepalive_connections=self.max_connections,
                ),
            )
            self._clients[loop] = client
        return client

    async def _pause(self, attempt: int, response: httpx.Response | None) -> None:
        wait = self.backoff * (2**attempt)
        if response is not None:
            hinted = _retry_after(response)
            if hinted is not None:
                if hinted > MAX_INLINE_WAIT:
                    raise TransientProviderError(
                        f"{self.name} asked to wait {hinted:.0f} s (Retry-After)"
                    )
                wait = max(wait, hinted)
        # Jitter keeps many workers from retrying in lock step.
        await asyncio.sleep(wait * (0.8 + 0.4 * random.random()))

    async def send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with retries. `idempotent` requests (reads) are repeated after any
        transient failure; a submission only when the provider cannot have processed it
        (429, 503, a connection that never opened). Anything else transient raises
        TransientProviderError, and the dispatcher looks the messages up before resending."""
        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            try:
                response = await self.client().request(method, url, headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if last:
                    raise TransientProviderError(f"{self.name} unreachable: {exc!r}") from exc
                await self._pause(attempt, None)
                continue
            except httpx.TransportError as exc:  # read/write timeouts, dropped connections
                if idempotent and not last:
                    await self._pause(attempt, None)
                    continue
                raise TransientProviderError(f"{self.name} did not answer: {exc!r}") from exc
            status = response.status_code
            if status in NOT_PROCESSED or (idempotent and status >= 500):
                if last:
                    raise TransientProviderError(f"{self.name} answered {status}")
                await self._pause(attempt, response)
                continue
            if status >= 500:
                raise TransientProviderError(f"{self.name} answered {status}")
            return response
        raise TransientProviderError(f"{self.name}: no attempt left")  # pragma: no cover


async def gather_limited(
    items: Sequence[T], work: Callable[[T], Awaitable[Any]], *, limit: int = 8
) -> list[Any]:
    """Run `work` on every item with at most `limit` at once (one request per message for
    APIs without batches), keeping the order of the results."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with semaphore:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def json_or_empty(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}
