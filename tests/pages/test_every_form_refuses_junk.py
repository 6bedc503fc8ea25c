"""Acceptance: every form the portal's pages show, posted with odd input in every field
(empty, far too long, negative, beyond any integer column, markup, a superscript digit,
a field given twice,
no CSRF-valid body at all as JSON), answers 2xx, 3xx or 4xx and never a 5xx, for the demo
master's owner, a branch sender and the operator. The forms are read off the pages
themselves (action and field names), as a person or a crawler meets them; every POST
route that no page shows a form for gets the same odd bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from litestar.handlers import HTTPRouteHandler

from portal.app import create_app
from tests.conftest import csrf_token, login
from tests.pages.test_every_page_renders import PAGES, _account_of, _populate, _urls

# Values that a field could never take, each posted in every field of a form at once.
ODD = (
    "",
    "x" * 5000,
    "-1",
    "99999999999999999999999999",
    "<script>alert(1)</script>",
    "1e400",
    "  ",
    "NaN",
    "²",  # a digit to str.isdigit, not to int()
)
# Signing out, or ending every session, would leave the rest of the walk signed out.
SIGNS_OUT = ("/logout", "/security/sessions", "/me/sessions")
NOT_FORMS = ("/api/", "/hooks/", "/simulator/", "/static/", "/sso/", "/login", "/invitations/")


@dataclass
class Form:
    action: str
    fields: list[str] = field(default_factory=list)


class _Forms(HTMLParser):
    """The POST forms of a page: where each goes and the names of its fields."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            if (a.get("method") or "get").lower() == "post":
                self._open = Form((a.get("action") or self.page).split("#")[0])
                self.forms.append(self._open)
        elif tag in ("input", "select", "textarea", "button") and self._open is not None:
            name = a.get("name")
            if name and name != "_csrf_token" and name not in self._open.fields:
                self._open.fields.append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _post_routes() -> list[str]:
    paths = set()
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and "POST" in handler.http_methods:
                if not route.path.startswith(NOT_FORMS) and not route.path.startswith(SIGNS_OUT):
                    paths.add(route.path)
    return sorted(paths)


async def _forms(client: Any, account_id: int) -> dict[str, Form]:
    """Every POST form on every page this person can open, one per action."""
    found: dict[str, Form] = {}
    for path in PAGES:
        for url in await _urls(path, account_id):
            r = await client.get(url, follow_redirects=False)
            if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
                continue
            parser = _Forms(url)
            parser.feed(r.text)
            for form in parser.forms:
                if form.action.startswith("/") and not form.action.startswith(
                    (*NOT_FORMS, *SIGNS_OUT)
                ):
                    found.setdefault(form.action, form)
    return found


async def _walk(client: Any, email: str, account_id: int) -> tuple[int, list[str]]:
    token = await login(client, email)
    forms = await _forms(client, account_id)
    # POST routes no page offers a form for still get odd bodies (their fields unknown).
    for path in _post_routes():
        for url in await _urls(path, account_id):
            forms.setdefault(url, Form(url, ["id", "name", "value", "account_id"]))
    failures: list[str] = []
    posted = 0
    for action, form in sorted(forms.items()):
        bodies: list[dict[str, Any]] = [{name: value for name in form.fields} for value in ODD]
        bodies.append({name: ["1", "two"] for name in form.fields})
        for body in bodies:
            r = await client.post(
                action, data={"_csrf_token": token, **body}, follow_redirects=False
            )
            posted += 1
            if r.status_code >= 500:
                failures.append(f"{email} POST {action} {str(body)[:120]}: {r.status_code}")
            if r.headers.get("location", "").startswith("/login"):
                token = await login(client, email)  # a form that ended the session
            elif r.status_code == 403 and "csrf" in r.text.lower():
                token = await csrf_token(client, "/")
        r = await client.post(action, json={"x": 1}, headers={"X-CSRFToken": token})
        posted += 1
        if r.status_code >= 500:
            failures.append(f"{email} POST {action} as JSON: {r.status_code}")
    return posted, failures


async def test_every_form_answers_odd_input_without_a_server_error(client, demo):
    await _populate(client, demo)
    failures: list[str] = []
    posted = 0
    for email in ("owner@northwind.test", "sender@sydney.test", "operator@portal.test"):
        account_id = demo["platform"] if email.startswith("operator") else await _account_of(email)
        count, found = await _walk(client, email, account_id)
        posted += count
        failures += found
    assert posted > 500, posted  # the walk met the product's forms, not an empty page
    assert not failures, "\n".join(failures[:40])
