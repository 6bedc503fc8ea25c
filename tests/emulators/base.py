"""What the provider emulators share: a tiny ASGI app that routes on (method, host, path),
records every request that breaks the provider's published shape in `violations`, and
posts callbacks (already signed by the subclass) to a URL, through a test's transport or
over the network.

The emulators stand for outside providers: they import nothing from the portal."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

Target = httpx.AsyncClient | httpx.AsyncBaseTransport | None


@dataclass
class Request:
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def content_type(self) -> str:
        return self.header("content-type").split(";")[0].strip().lower()

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.header("authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def bearer(self) -> str | None:
        scheme, _, value = self.header("authorization").partition(" ")
        return value if scheme.lower() == "bearer" else None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        if isinstance(self.body, bytes):
            content, media = self.body, self.headers.get("content-type", "text/plain")
        elif self.body is None:
            content, media = b"", "text/plain"
        else:
            content, media = json.dumps(self.body).encode(), "application/json"
        headers = {"content-type": media, **self.headers, "content-length": str(len(content))}
        return content, [(k.encode(), v.encode()) for k, v in headers.items()]


Handler = Callable[..., Response | Awaitable[Response]]


class Emulator:
    """Subclasses register routes with `route(method, host_pattern, path_pattern, handler)`;
    patterns are regular expressions whose named groups become handler keyword arguments."""

    name = "provider"

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.requests: list[Request] = []
        self._routes: list[tuple[str, re.Pattern[str], re.Pattern[str], Handler]] = []

    # --- the ASGI side -----------------------------------------------------------------

    def route(self, method: str, host: str, path: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(host), re.compile(path), handler))

    def transport(self) -> httpx.ASGITransport:
        """Give this to a gateway (`transport=`): its requests reach this emulator."""
        return httpx.ASGITransport(app=self)

    def violation(self, status: int, body: Any, why: str) -> Response:
        """Refuse a request as the provider would, and remember why for the test."""
        self.violations.append(why)
        return Response(status, body)

    def not_found(self, request: Request) -> Response:
        return self.violation(
            404, {"error": "not found"}, f"{request.method} {request.host}{request.path}: no route"
        )

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = Request(
            method=scope["method"],
            host=headers.get("host", "").split(":")[0],
            path=scope["path"],
            query=parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True),
            headers=headers,
            body=b"".join(chunks),
        )
        self.requests.append(request)
        response = await self.dispatch(request)
        content, raw_headers = response.encoded()
        await send(
            {"type": "http.response.start", "status": response.status, "headers": raw_headers}
        )
        await send({"type": "http.response.body", "body": content})

    async def dispatch(self, request: Request) -> Response:
        for method, host, path, handler in self._routes:
            on_host = host.fullmatch(request.host)
            matched = path.fullmatch(request.path)
            if method != request.method or on_host is None or matched is None:
                continue
            result = handler(request, **on_host.groupdict(), **matched.groupdict())
            if isinstance(result, Awaitable):
                result = await result
            return result
        return self.not_found(request)

    # --- the callback side ---------------------------------------------------------------

    async def deliver(
        self, target: Target, url: str, *, content: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        """POST a callback to `url` exactly as built. `target` is an httpx client or transport
        (e.g. httpx.ASGITransport(app=portal)) or None to go over the network."""
        if isinstance(target, httpx.AsyncClient):
            return await target.post(url, content=content, headers=dict(headers))
        async with httpx.AsyncClient(transport=target) as client:
            return await client.post(url, content=content, headers=dict(headers))


def url_ok(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
