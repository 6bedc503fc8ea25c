"""Fetching a person's public media URL for an MMS, server side: https only, never to a
private, loopback or link-local address (checked for every address the name resolves to,
and again on each redirect), within MEDIA_FETCH_MAX_BYTES and MEDIA_FETCH_TIMEOUT_SECONDS;
the bytes are then read and stored like an upload (tenants.media.store.read_file)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import httpx

from tenants.errors import ValidationFailed
from tenants.media.store import NewMedia, read_file
from tenants.settings import get_settings

MAX_REDIRECTS = 3
MAX_URL = 2000
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_transport: httpx.AsyncBaseTransport | None = None
_resolver: Resolver = _resolve


def use_transport(
    transport: httpx.AsyncBaseTransport | None, resolver: Resolver | None = None
) -> None:
    """Route the fetches through `transport` with `resolver` for names (tests)."""
    global _transport, _resolver
    _transport = transport
    _resolver = resolver or _resolve


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, field: str) -> None:
    """Refuse anything but an https URL whose host resolves to public addresses only."""
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme != "https" or not parts.hostname:
        raise ValidationFailed({field: "Give a public https:// URL."})
    if parts.username or parts.password:
        raise ValidationFailed({field: "A media URL may not carry a user name or password."})
    try:
        addresses = await _resolver(parts.hostname, parts.port or 443)
    except (OSError, UnicodeError):
        raise ValidationFailed({field: f"{parts.hostname} could not be found."}) from None
    if not addresses or not all(_public(a) for a in addresses):
        raise ValidationFailed({field: "That URL points to a private address."})


async def _download(client: httpx.AsyncClient, url: str, field: str) -> bytes:
    limit = get_settings().sending.media_fetch_max_bytes
    for _ in range(MAX_REDIRECTS + 1):
        await check_url(url, field)
        async with client.stream("GET", url) as response:
            if response.is_redirect and response.headers.get("location"):
                url = urljoin(url, response.headers["location"])
                continue
            if response.status_code != 200:
                raise ValidationFailed({field: f"The URL answered {response.status_code}."})
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed({field: f"A file may have at most {limit:,} bytes."})
                chunks.append(chunk)
            return b"".join(chunks)
    raise ValidationFailed({field: "The URL redirects too often."})


async def fetch_media(url: str, *, field: str = "media") -> NewMedia:
    """The file at a public https URL, checked like an upload (type from its bytes)."""
    timeout = get_settings().sending.media_fetch_timeout_seconds
    async with httpx.AsyncClient(
        transport=_transport, timeout=timeout, follow_redirects=False
    ) as client:
        try:
            async with asyncio.timeout(timeout):
                data = await _download(client, url.strip(), field)
        except (TimeoutError, httpx.HTTPError):
            raise ValidationFailed({field: "The URL could not be fetched in time."}) from None
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return read_file(data, name, field=field)
