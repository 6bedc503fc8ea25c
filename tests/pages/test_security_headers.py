"""Security headers on every answer (pages, errors, static files, the API), no inline
script or style in any template, the theme stylesheet, the favicon, and how page failures
are logged: a refusal is one INFO line, a fault an ERROR with its traceback."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from portal.app import create_app
from portal.security_headers import PAGE_CSP
from tests.conftest import login

TEMPLATES = Path(__file__).resolve().parents[2] / "ui" / "templates"
# What a CSP without 'unsafe-inline' / 'unsafe-eval' refuses, as it appears in markup.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|\shx-on[:-]|javascript:", re.I
)


def assert_secured(response, *, hsts: bool = False) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == PAGE_CSP
    assert "frame-ancestors 'none'" in PAGE_CSP and "unsafe-inline" not in PAGE_CSP
    assert "unsafe-eval" not in PAGE_CSP and "script-src 'self'" in PAGE_CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert ("strict-transport-security" in headers) is hsts


async def test_every_kind_of_answer_carries_the_headers(client, world):
    for url in ("/login", "/no-such-page", "/static/portal.css", "/favicon.ico", "/api/v1/account"):
        assert_secured(await client.get(url))
    await login(client, world.users["Viewer"])
    for url in ("/", "/users", "/contacts/987654"):  # 200, 403, 404
        assert_secured(await client.get(url))


async def test_hsts_only_when_the_portal_is_served_over_https(settings_env):
    from litestar.testing import AsyncTestClient

    settings_env(PORTAL_BASE_URL="https://portal.example.test")
    async with AsyncTestClient(app=create_app(), base_url="https://portal.example.test") as c:
        response = await c.get("/login")
        assert_secured(response, hsts=True)
        assert "max-age=31536000" in response.headers["strict-transport-security"]


async def test_the_logo_keeps_its_own_stricter_policy(client, demo):
    from portal.controllers.branding import LOGO_CSP
    from tenants.branding.tables import AccountBranding

    row = (
        await AccountBranding.select(AccountBranding.logo_digest)
        .where(AccountBranding.logo_digest.is_not_null())
        .first()
    )
    response = await client.get(f"/branding/logo/{row['logo_digest']}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == LOGO_CSP
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_no_template_needs_unsafe_inline_or_eval():
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{n}: {m.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.jinja"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in INLINE.finditer(line)
    ]
    assert not offenders, "\n".join(offenders)
    base = (TEMPLATES / "base.html.jinja").read_text()
    assert '"includeIndicatorStyles":false' in base and '"allowEval":false' in base


async def test_the_theme_is_a_stylesheet_named_by_its_colours(client):
    r = await client.get("/branding/theme.css", params={"primary": "#123abc", "accent": "#00ff00"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert r.text.strip() == ":root { --primary: #123abc; --accent: #00ff00; }"
    assert "immutable" in r.headers["cache-control"]
    preview = await client.get(
        "/branding/theme.css", params={"primary": "#123abc", "accent": "#00ff00", "target": "x"}
    )
    assert preview.status_code == 422 and "target" in preview.text
    # Only a colour gets in: nothing a browser could read as more CSS.
    evil = await client.get(
        "/branding/theme.css", params={"primary": "red;} body{display:none", "accent": "#000000"}
    )
    assert evil.status_code == 422 and "display:none" not in evil.text
    page = await client.get("/login")
    assert '<link rel="stylesheet" href="/branding/theme.css?primary=%231f5eff&amp;accent=' in (
        page.text
    )


async def test_the_favicon_is_an_icon(client):
    r = await client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/vnd.microsoft.icon"
    assert r.content[:4] == b"\x00\x00\x01\x00" and b"PNG" in r.content[:64]


async def test_page_refusals_log_one_info_line_and_faults_a_traceback(client, world, caplog, app):
    """The HTML side of portal/errors.py's logging (one handler serves pages and the API)."""

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name in ("portal.errors", "litestar")]

    await login(client, world.users["Viewer"])
    with caplog.at_level(logging.INFO):
        caplog.clear()
        assert (await client.get("/users")).status_code == 403
        assert (await client.get("/contacts/987654")).status_code == 404
        assert (await client.get("/no-such-page")).status_code == 404
    refusals = logged()
    assert [r.levelname for r in refusals] == ["INFO"] * 3, [r.getMessage() for r in refusals]
    assert all("\n" not in r.getMessage() and r.exc_info is None for r in refusals)
    assert "GET /users -> 403" in refusals[0].getMessage()

    from litestar import get

    @get("/boom", opt={"permission": "account.view"})
    async def boom() -> None:
        raise RuntimeError("a real fault")

    app.register(boom)
    with caplog.at_level(logging.INFO):
        caplog.clear()
        page = await client.get("/boom")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert_secured(page)
    faults = logged()
    assert [r.levelname for r in faults] == ["ERROR"]
    assert faults[0].exc_info is not None and "a real fault" in str(faults[0].exc_info[1])
