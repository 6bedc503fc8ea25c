"""Fetching a person's public media URL for an MMS, server side: https only, never to a
private, loopback, link-local or multicast address, within MEDIA_FETCH_MAX_BYTES and
MEDIA_FETCH_TIMEOUT_SECONDS; the bytes are then read and stored like an upload
(tenants.media.store.read_file).

The name is resolved ONCE per hop and every address it gives must be public; the
connection then goes to that pinned address (the URL's host replaced by it, the Host
header and the TLS server name, SNI and certificate check, kept as the name), so a DNS
answer that changes between the check and the connection (DNS rebinding) cannot reach an
inside address. Each redirect hop is resolved, checked and pinned the same way."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from tenants.errors import ValidationFailed
from tenants.media import inbound as inbound_media
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
    """A global unicast address, also for the IPv4 one an IPv6 address carries (mapped,
    6to4, Teredo)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None and not _public(str(inner)):
            return False
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Pinned:
    """One hop of a fetch: the URL asked for and the checked address to connect to."""

    url: str
    host: str
    port: int | None
    address: str

    def request(self, client: httpx.AsyncClient) -> httpx.Request:
        """GET the pinned address, naming the host in the Host header and the TLS
        handshake (server name and certificate check)."""
        target = httpx.URL(self.url).copy_with(host=self.address)
        host = self.host if self.port in (None, 443) else f"{self.host}:{self.port}"
        return client.build_request(
            "GET", target, headers={"Host": host}, extensions={"sni_hostname": self.host}
        )


async def check_url(url: str, field: str) -> Pinned:
    """Refuse anything but an https URL whose host resolves to public addresses only; the
    address to connect to (resolved here, once)."""
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme != "https" or not parts.hostname:
        raise ValidationFailed({field: "Give a public https:// URL."})
    if parts.username or parts.password:
        raise ValidationFailed({field: "A media URL may not carry a user name or password."})
    try:
        port = parts.port
        # The name as DNS, the Host header and TLS carry it (IDNA: "bücher.example" is
        # "xn--bcher-kva.example").
        host = httpx.URL(url).raw_host.decode("ascii")
        addresses = await _resolver(host, port or 443)
    except (OSError, UnicodeError, ValueError, httpx.InvalidURL):
        raise ValidationFailed({field: f"{parts.hostname} could not be found."}) from None
    if not addresses or not all(_public(a) for a in addresses):
        raise ValidationFailed({field: "That URL points to a private address."})
    return Pinned(url, host, port, addresses[0])


async def _download(client: httpx.AsyncClient, url: str, field: str) -> bytes:
    limit = get_settings().sending.media_fetch_max_bytes
    for _ in range(MAX_REDIRECTS + 1):
        pinned = await check_url(url, field)
        response = await client.send(pinned.request(client), stream=True)
        try:
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
        finally:
            await response.aclose()
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


async def keep_inbound_media(message_id: int) -> int:
    """Copy the files an inbound MMS referenced into the store; returns how many were kept.
    A file the rules refuse (not https, private address, too big, no MMS type) is recorded
    with its reason and not tried again."""
    kept = 0
    for file in await inbound_media.pending_files(message_id):
        try:
            media = await fetch_media(file.url)
        except ValidationFailed as refused:
            await inbound_media.record_file(file, None, "; ".join(refused.errors.values()))
            continue
        await inbound_media.record_file(file, media)
        kept += 1
    return kept
