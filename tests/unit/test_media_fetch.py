"""Fetching media URLs server side against DNS rebinding: each hop's name is resolved once,
every address must be public, and the connection goes to that pinned address with the
name kept in the Host header and the TLS server name (SNI and the certificate check)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tasks import media_fetch
from tenants.errors import ValidationFailed
from tests import media_samples as samples

PUBLIC_IP = "93.184.216.34"
PUBLIC_IP6 = "2606:2800:220:1:248:1893:25c8:1946"


class Rebinding:
    """A resolver whose answers change: public first, then the given (private) ones."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


class Recorder(httpx.AsyncBaseTransport):
    """Stands for the network: keeps each request; /moved redirects to /cat.png."""

    def __init__(self, location: str = "https://cdn.example/cat.png") -> None:
        self.location = location
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"location": self.location})
        return httpx.Response(200, content=samples.png())


@pytest.fixture
def network() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    media_fetch.use_transport(None)


def sent_to(request: httpx.Request) -> tuple[str, str, str | None]:
    return request.url.host, request.headers["host"], request.extensions.get("sni_hostname")


async def test_the_connection_goes_to_the_address_that_was_checked(network):
    """Public at the check, private a moment later: the name is not asked again, the
    request goes to the checked address and names the host for HTTP and TLS."""
    resolver = Rebinding([PUBLIC_IP], ["127.0.0.1"])
    media_fetch.use_transport(network, resolver)
    media = await media_fetch.fetch_media("https://cdn.example/cat.png")
    assert media.content_type == "image/png"
    assert resolver.asked == ["cdn.example"]
    assert [sent_to(r) for r in network.requests] == [(PUBLIC_IP, "cdn.example", "cdn.example")]
    assert str(network.requests[0].url) == f"https://{PUBLIC_IP}/cat.png"


async def test_a_non_default_port_and_an_ipv6_address_are_kept(network):
    media_fetch.use_transport(network, Rebinding([PUBLIC_IP6]))
    await media_fetch.fetch_media("https://cdn.example:8443/cat.png?size=2")
    (request,) = network.requests
    assert str(request.url) == f"https://[{PUBLIC_IP6}]:8443/cat.png?size=2"
    assert request.headers["host"] == "cdn.example:8443"
    assert request.extensions["sni_hostname"] == "cdn.example"


async def test_an_international_name_is_asked_and_sent_in_its_idna_form(network):
    resolver = Rebinding([PUBLIC_IP])
    media_fetch.use_transport(network, resolver)
    await media_fetch.fetch_media("https://bücher.example/cat.png")
    assert resolver.asked == ["xn--bcher-kva.example"]
    assert [sent_to(r) for r in network.requests] == [
        (PUBLIC_IP, "xn--bcher-kva.example", "xn--bcher-kva.example")
    ]


async def test_a_name_that_is_not_valid_idna_is_a_field_error(network):
    media_fetch.use_transport(network, Rebinding([PUBLIC_IP]))
    with pytest.raises(ValidationFailed) as exc:
        await media_fetch.fetch_media("https://☃.example/cat.png", field="media_url")
    assert "media_url" in exc.value.errors
    assert network.requests == []


@pytest.mark.parametrize(
    "inside",
    [
        "127.0.0.1",
        "10.0.0.7",
        "169.254.169.254",
        "fe80::1",
        "::ffff:10.0.0.7",
        "2002:a00:7::1",  # 6to4 around 10.0.0.7
        "224.0.0.1",
        "ff02::1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address the resolver answers, not one we bind)
    ],
)
async def test_a_redirect_hop_is_resolved_and_checked_again(network, inside):
    """The first hop's name is public; the redirect's target (the same name) now answers
    an inside address: refused, and nothing is sent there."""
    resolver = Rebinding([PUBLIC_IP], [inside])
    media_fetch.use_transport(network, resolver)
    with pytest.raises(ValidationFailed) as refused:
        await media_fetch.fetch_media("https://cdn.example/moved")
    assert refused.value.errors == {"media": "That URL points to a private address."}
    assert resolver.asked == ["cdn.example", "cdn.example"]
    assert [sent_to(r) for r in network.requests] == [(PUBLIC_IP, "cdn.example", "cdn.example")]


async def test_each_redirect_hop_is_pinned_to_its_own_host(network):
    network.location = "https://images.example/cat.png"
    answers = {"cdn.example": [PUBLIC_IP], "images.example": ["93.184.216.35"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    media_fetch.use_transport(network, resolve)
    await media_fetch.fetch_media("https://cdn.example/moved")
    assert [sent_to(r) for r in network.requests] == [
        (PUBLIC_IP, "cdn.example", "cdn.example"),
        ("93.184.216.35", "images.example", "images.example"),
    ]


async def test_one_private_address_among_public_ones_is_refused(network):
    media_fetch.use_transport(network, Rebinding([PUBLIC_IP, "192.168.1.2"]))
    with pytest.raises(ValidationFailed):
        await media_fetch.fetch_media("https://cdn.example/cat.png", field="media_url")
    assert network.requests == []
