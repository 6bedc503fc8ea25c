"""Every POST form on every page carries its own CSRF token (htmx swaps would otherwise
leave stale or missing tokens), checked on all parameterless pages for an owner and the
operator."""

from __future__ import annotations

import re

from litestar.handlers import HTTPRouteHandler

from portal.app import create_app
from tests.conftest import login

FORM_RE = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def _pages() -> list[str]:
    paths = set()
    for route in create_app().routes:
        if "{" in route.path or route.path.startswith(
            ("/static", "/api", "/hooks", "/schema", "/healthz", "/platform/health")
        ):
            continue
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and "GET" in handler.http_methods:
                paths.add(route.path)
    return sorted(paths)


async def _check(client, email: str) -> list[str]:
    await login(client, email)
    problems = []
    for path in _pages():
        r = await client.get(path)
        if r.status_code != 200 or not r.headers.get("content-type", "").startswith("text/html"):
            continue
        for form in FORM_RE.findall(r.text):
            head = form[: form.find(">") + 1]
            if re.search(r'method="post"', head, re.I) and "_csrf_token" not in form:
                problems.append(f"{email} {path}: {head}")
    return problems


async def test_owner_pages_forms_have_csrf(client, world):
    assert await _check(client, world.users["Owner"]) == []


async def test_operator_pages_forms_have_csrf(client, world):
    assert await _check(client, "operator@platform.test") == []
