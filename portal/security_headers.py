"""The security headers every answer carries: a CSP the pages meet, no framing, no MIME
sniffing, a strict referrer policy, and HSTS once the portal is served over https."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# Pages load their scripts and styles from /static and /branding/theme.css only; logos may
# be an unsaved preview's data: URI. htmx runs with allowEval off (no hx-on, no filters).
PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)
# Litestar's API explorers (Swagger, ReDoc...) load their bundles from a CDN with inline
# boot scripts: they keep only the framing rule.
API_DOCS_PREFIX = "/api/schema"
DOCS_CSP = "frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def security_headers_hook(*, https: bool) -> Callable[[Message, Scope], Any]:
    """A `before_send` hook adding the headers to every response start, errors and static
    files included; a header a handler set itself (the logo's own CSP) is left alone."""

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        path = scope.get("path", "")
        wanted = {
            "Content-Security-Policy": DOCS_CSP if path.startswith(API_DOCS_PREFIX) else PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        if https:
            wanted["Strict-Transport-Security"] = HSTS
        for name, value in wanted.items():
            if headers.get(name) is None:
                headers.add(name, value)

    return add_headers
