"""Rendering of pages and their HTMX fragments with the layout every page shares."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Sequence,
)
from typing import Any, TypeVar

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Response
from litestar.connection import Request
from litestar.enums import MediaType
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Stream, Template
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from portal.auth import AuthState, authenticate, page_grants
from tenants.access import resolved, users
from tenants.access.decide import Grants, Principal
from tenants.branding import branding

# What a page shows when no branding can be looked up (the error page, for one).
DEFAULT_BRAND: dict[str, Any] = {
    "product_name": branding.BUILT_IN_DEFAULTS["product_name"],
    "primary_color": branding.BUILT_IN_DEFAULTS["primary_color"],
    "accent_color": branding.BUILT_IN_DEFAULTS["accent_color"],
    "logo_url": None,
    "support_email": None,
    "support_phone": None,
}
LOGO_PATH = "/branding/logo/"
T = TypeVar("T")
log = logging.getLogger(__name__)


def logo_url(logo: branding.Logo | None) -> str | None:
    """A stored logo's stable URL (its digest), or the bytes inline for an unsaved preview."""
    if logo is None:
        return None
    if logo.inline is not None:
        return logo.inline.data_uri
    return LOGO_PATH + logo.digest


def brand_context(effective: branding.EffectiveBranding) -> dict[str, Any]:
    """The `brand` every template reads, from an account's effective branding."""
    return {
        "product_name": effective.product_name,
        "primary_color": effective.primary_color,
        "accent_color": effective.accent_color,
        "logo_url": logo_url(effective.logo),
        "support_email": effective.support_email,
        "support_phone": effective.support_phone,
    }


async def remembered(
    request: HTMXRequest | Request[Any, Any, Any],
    key: Hashable,
    load: Callable[[], Awaitable[T]],
) -> T:
    """`load()`'s answer from this process's memo of what signed-in pages resolve, valid
    while the request's cache_version stands (tenants/access/resolved.py): only for reads
    of the rows its triggers watch (sessions, users, memberships, roles, accounts but
    their balance, branding)."""
    state: AuthState | None = request.scope.get("auth")
    return await resolved.remembered(state.version if state else None, key, load)


async def request_branding(
    request: HTMXRequest | Request[Any, Any, Any],
) -> branding.EffectiveBranding:
    """The working account's branding; outside an account, the login host's, else the
    platform's."""
    grants: Grants | None = getattr(request.state, "grants", None)
    if grants is not None:
        account = grants.account
        return await remembered(
            request, ("branding", account.id), lambda: branding.effective_branding_of(account)
        )
    by_host = await branding.branding_for_host(request.headers.get("host", ""))
    return by_host or await branding.platform_branding()


def _nav_routes(request: HTMXRequest | Request[Any, Any, Any]) -> frozenset[str]:
    """Paths the app serves, so navigation never links to a page that is not there."""
    cached = getattr(request.app.state, "nav_routes", None)
    if cached is None:
        cached = frozenset(route.path.rstrip("/") or "/" for route in request.app.routes)
        request.app.state.nav_routes = cached
    return cached  # type: ignore[no-any-return]


async def layout_context(request: HTMXRequest | Request[Any, Any, Any]) -> dict[str, Any]:
    principal: Principal | None = request.scope.get("user")
    state: AuthState | None = request.scope.get("auth")
    grants: Grants | None = getattr(request.state, "grants", None)
    ctx: dict[str, Any] = {
        "principal": principal,
        "account": grants.account if grants else None,
        "allowed": grants.allowed() if grants else frozenset(),
        "brand": brand_context(await request_branding(request)),
        "switchable": [],
        "nav_routes": _nav_routes(request),
    }
    fragment = bool(request.headers.get("hx-request"))
    if principal is not None and principal.user_id is not None and not fragment:
        user_id = principal.user_id
        ctx["switchable"] = list(
            await remembered(request, ("memberships", user_id), lambda: users.memberships(user_id))
        )
        if (
            grants
            and state
            and state.account_id
            and all(m.account_id != state.account_id for m in ctx["switchable"])
        ):
            # Working in a descendant reached through management powers.
            ctx["switchable"] = [
                *ctx["switchable"],
                users.MembershipView(
                    account_id=grants.account.id,
                    account_name=grants.account.name,
                    account_slug=grants.account.slug,
                    account_path=grants.account.path,
                    role="(managing)",
                ),
            ]
    return ctx


async def render(
    request: HTMXRequest,
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    """The full page, or only `block` when htmx asked for it."""
    ctx = {**(await layout_context(request)), **(context or {})}
    if block and request.htmx:
        return HTMXBlockTemplate(
            template_name=template_name,
            block_name=block,
            context=ctx,
            status_code=status_code,
            headers=headers or {},
            media_type=MediaType.HTML,
        )
    return Template(
        template_name=template_name,
        context=ctx,
        status_code=status_code,
        headers=headers or {},
        media_type=MediaType.HTML,
    )


async def block_or_redirect(
    request: HTMXRequest,
    path: str,
    template_name: str,
    block: str,
    context: Callable[[], Awaitable[dict[str, Any]]],
) -> Redirect | Template:
    """The answer to a change made from a page: for htmx that page's `block` again, else a
    303 back to `path` (the context is only gathered for htmx)."""
    if not request.htmx:
        return Redirect(path=path, status_code=303)
    return await render(request, template_name, await context(), block=block)


def csv_safe(value: str) -> str:
    """A text cell as a spreadsheet shows it: one starting with = + - @ would run as a
    formula, so it gets a leading quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def csv_download(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Response[str]:
    """A CSV attachment: the header line, then one line a row (text cells already
    passed through `csv_safe` where users wrote them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def csv_stream(
    filename: str, header: Sequence[str], pages: AsyncIterable[Sequence[Sequence[Any]]]
) -> Stream:
    """A CSV attachment written as its rows come, a page of rows at a time (text cells
    already made safe for a spreadsheet by whoever gives them)."""

    async def lines() -> AsyncIterator[str]:
        out = io.StringIO()
        csv.writer(out).writerow(header)
        yield out.getvalue()
        async for rows in pages:
            out = io.StringIO()
            csv.writer(out).writerows(rows)
            yield out.getvalue()

    return Stream(
        lines(),
        # Litestar appends the charset to text/* itself.
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class LayoutPage(Template):
    """A page answered from an exception handler (the 403 and 404 pages): handlers there
    are synchronous, so the layout (navigation, branding, sign-out) is looked up when the
    response is sent; if that lookup fails the page still renders, bare."""

    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **kwargs: Any) -> Any:
        page = self

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                if "user" not in request.scope:  # no route matched (404, 405): no middleware
                    await authenticate(request.scope)
                if getattr(request.state, "grants", None) is None:
                    request.state.grants = await page_grants(request.scope)
                layout = await layout_context(request)
            except Exception:  # the error page must not fail on the layout's lookups
                log.warning("error page without its layout", exc_info=True)
                layout = {}
            page.context = {**page.context, **layout, **page.own_context}
            answer: ASGIResponse = Template.to_asgi_response(page, app, request, **kwargs)
            await answer(scope, receive, send)

        return respond

    @property
    def own_context(self) -> dict[str, Any]:
        return {k: self.context[k] for k in ("status", "title", "message") if k in self.context}
