"""Customer webhook HTTP: posts a signed delivery with httpx (tenants.webhooks.deliveries
defines the `WebhookPoster` port and decides what is posted)."""

from __future__ import annotations

import asyncio

import httpx

from tenants.webhooks.deliveries import PostAnswer, WebhookPost


class HttpWebhookPoster:
    """One connection pool per event loop (an httpx client must not cross loops: the
    worker has one loop, tests and the web process others)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = transport
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def _client(self, timeout: float) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                timeout=timeout,
                transport=self.transport,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
            self._clients[loop] = client
        return client

    async def post(self, request: WebhookPost) -> PostAnswer:
        try:
            response = await self._client(request.timeout).post(
                request.url, content=request.body, headers=request.headers
            )
        except httpx.HTTPError as exc:
            return PostAnswer(None, f"{type(exc).__name__}: {exc}" or type(exc).__name__)
        return PostAnswer(response.status_code)

    async def aclose(self) -> None:
        """Close the pool of the running loop (a stopping worker)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


WEBHOOK_POSTER = HttpWebhookPoster()
