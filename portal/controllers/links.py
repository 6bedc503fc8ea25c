"""The short link redirect, `GET /<LINK_PATH_PREFIX>/<code>`: no session, no CSRF, one
indexed lookup, one insert for the click, and a 302 straight to the original URL."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request, Response, Router, get, head
from litestar.params import FromPath

from tenants.links import links

# Characters a URL may carry as they are; anything else (an IRI's letters, a stray
# control character) is percent-encoded so the Location header is always valid.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"
_NOT_FOUND = "This link does not exist or has expired.\n"


def location_of(url: str) -> str:
    return quote(url, safe=_URL_SAFE)


@get("/{code:str}", opt={"public": True}, name="short_link", include_in_schema=False)
async def follow_link(request: Request, code: FromPath[str]) -> Response[str]:
    return _answer(await links.follow(code, request.headers.get("user-agent", "")))


@head("/{code:str}", opt={"public": True}, name="short_link_head", include_in_schema=False)
async def check_link(request: Request, code: FromPath[str]) -> Response[None]:
    """What a link checker asks first: the same answer without a body, and no click."""
    answer = _answer(await links.follow(code, "", count=False))
    return Response(None, status_code=answer.status_code, headers=dict(answer.headers))


def _answer(url: str | None) -> Response[str]:
    if url is None:
        return Response(
            _NOT_FOUND,
            status_code=404,
            media_type="text/plain",
            headers={"Cache-Control": "no-store"},
        )
    # 302 and no-store: a cached redirect would hide the next click from the count.
    return Response(
        "",
        status_code=302,
        media_type="text/plain",
        headers={
            "Location": location_of(url),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def link_router() -> Router:
    """The redirect under the configured prefix (read when the app is built)."""
    return Router(path=f"/{links.link_path_prefix()}", route_handlers=[follow_link, check_link])
