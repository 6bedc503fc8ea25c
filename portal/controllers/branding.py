"""Branding of the working account: settings page, live preview, "use inherited", and the
public logo and theme routes every page (the sign-in page too) needs."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import MULTIPART
from portal.pages import brand_context, render
from tenants.accounts.tree import AccountView
from tenants.branding import branding
from tenants.branding.logos import MAX_LOGO_BYTES, MAX_LOGO_PIXELS
from tenants.errors import NotFound, ValidationFailed

# Every branding form carries a file input, so each of its posts is multipart.
# A logo URL names its content (SHA-256), so the bytes behind it never change.
LOGO_CACHE_CONTROL = "public, max-age=31536000, immutable"
# An SVG opened directly must not run anything even if a check were ever missed.
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
# The theme is a stylesheet named by its colours, not inline CSS the page CSP would refuse.
COLOUR_RE = re.compile(r"#[0-9a-fA-F]{6}")
THEME_TARGETS = {"root": ":root", "preview": ".brand-preview"}


COLOUR_FIELDS = ("primary_color", "accent_color")


def _picked_colour(data: dict[str, Any], name: str, typed: str) -> str:
    """A colour field has a hex text box and a colour picker (`<name>_picker`) beside it,
    kept in step by portal.js. Without JavaScript only one of them changed: the hex box wins
    when it was edited (it differs from `<name>_shown`, what the form showed in it),
    otherwise a picker moved away from what it showed (`<name>_picker_shown`)."""
    picker = str(data.get(f"{name}_picker") or "").lower()
    picker_shown = str(data.get(f"{name}_picker_shown") or "").lower()
    if typed != str(data.get(f"{name}_shown") or "") or not COLOUR_RE.fullmatch(picker):
        return typed
    return typed if picker == picker_shown else picker


def _text_values(data: dict[str, Any]) -> dict[str, str]:
    values = {
        name: str(data.get(name) or "")
        for name in branding.TEXT_FIELDS
        if name in data and not isinstance(data.get(name), UploadFile)
    }
    for name in COLOUR_FIELDS:
        if name in values:
            values[name] = _picked_colour(data, name, values[name])
    return values


async def _upload(data: dict[str, Any]) -> bytes | None:
    """The chosen logo file; a form posted without one sends an empty, nameless part."""
    upload = data.get("logo")
    if not isinstance(upload, UploadFile):
        return None
    content = await upload.read()
    if not content and not upload.filename:
        return None
    return content


def _etag_matches(header: str | None, digest: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or digest in tags


async def _page_context(
    account: AccountView,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    effective = await branding.effective_branding_of(account)
    own = await branding.own_settings(account.id)
    # What each field falls back to once the override is cleared.
    inherited, _ = await branding.preview_branding(
        account.id, dict.fromkeys(branding.TEXT_FIELDS, ""), clear_logo=True
    )
    if form is None:
        form = {name: own[name] or "" for name in branding.TEXT_FIELDS}
    return {
        "fields": branding.FIELDS,
        "labels": branding.LABELS,
        "effective": effective,
        "own": own,
        "inherited": inherited,
        "form": form,
        "errors": errors or {},
        "warnings": effective.contrast_warnings(),
        "preview": brand_context(effective),
        "preview_warnings": effective.contrast_warnings(),
        "preview_errors": {},
        "logo_limits": {
            "kb": MAX_LOGO_BYTES // 1024,
            "pixels": MAX_LOGO_PIXELS,
        },
    }


class BrandingController(Controller):
    path = "/branding"

    @get("/", opt={"permission": "branding.manage"}, name="branding")
    async def page(self, request: HTMXRequest, saved: FromQuery[bool] = False) -> Any:
        account = current_grants(request).account
        context = await _page_context(account)
        return await render(request, "branding.html.jinja", {**context, "saved": saved})

    @post("/", opt={"permission": "branding.manage"})
    async def save(self, request: HTMXRequest, data: Annotated[dict[str, Any], MULTIPART]) -> Any:
        account = current_grants(request).account
        values = _text_values(data)
        try:
            await branding.update_branding(
                actor=request_actor(request),
                within_account_id=account.id,
                account_id=account.id,
                values=values,
                logo=await _upload(data),
                clear_logo=bool(data.get("clear_logo")),
            )
        except ValidationFailed as exc:
            context = await _page_context(account, form=values, errors=exc.errors)
            return await render(
                request, "branding.html.jinja", context, block="branding_form", status_code=422
            )
        return _reload(request, "/branding?saved=true")

    @post("/clear", opt={"permission": "branding.manage"})
    async def clear(self, request: HTMXRequest, data: Annotated[dict[str, Any], MULTIPART]) -> Any:
        """ "Use inherited" for one field (the button names it)."""
        account = current_grants(request).account
        await branding.clear_override(
            actor=request_actor(request),
            within_account_id=account.id,
            account_id=account.id,
            field_name=str(data.get("field") or ""),
        )
        return _reload(request, "/branding?saved=true")

    @post("/preview", opt={"permission": "branding.manage"}, status_code=200)
    async def preview(
        self, request: HTMXRequest, data: Annotated[dict[str, Any], MULTIPART]
    ) -> Any:
        """The header, a button and the sign-in card as they would look; stores nothing."""
        account = current_grants(request).account
        effective, errors = await branding.preview_branding(
            account.id,
            _text_values(data),
            logo=await _upload(data),
            clear_logo=bool(data.get("clear_logo")),
        )
        return await render(
            request,
            "branding.html.jinja",
            {
                "preview": brand_context(effective),
                "preview_warnings": effective.contrast_warnings(),
                "preview_errors": errors,
                "labels": branding.LABELS,
            },
            block="preview",
        )

    @get("/theme.css", opt={"public": True}, name="branding_theme", include_in_schema=False)
    async def theme(
        self,
        primary: FromQuery[str] = branding.BUILT_IN_DEFAULTS["primary_color"],
        accent: FromQuery[str] = branding.BUILT_IN_DEFAULTS["accent_color"],
        target: FromQuery[str] = "root",
    ) -> Response[str]:
        """Public and cacheable for good: the same colours always give the same bytes."""
        return Response(
            content=theme_stylesheet(primary=primary, accent=accent, target=target),
            media_type="text/css",
            headers={"Cache-Control": LOGO_CACHE_CONTROL},
        )

    @get("/logo/{digest:str}", opt={"public": True}, name="branding_logo")
    async def logo(self, request: Request[Any, Any, Any], digest: FromPath[str]) -> Response[bytes]:
        """Public so the sign-in page can show it; a logo is found only by its digest."""
        stored = await branding.get_logo(digest)
        if stored is None:
            raise NotFound("logo not found")
        headers = {
            "ETag": f'"{stored.digest}"',
            "Cache-Control": LOGO_CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": LOGO_CSP,
        }
        if _etag_matches(request.headers.get("if-none-match"), stored.digest):
            return Response(content=b"", status_code=304, headers=headers)
        return Response(content=stored.content, media_type=stored.content_type, headers=headers)


def theme_stylesheet(*, primary: str, accent: str, target: str) -> str:
    """The brand colours as CSS variables for the page (`root`) or the preview box."""
    errors = {
        name: "Give a colour as #RRGGBB."
        for name, value in (("primary", primary), ("accent", accent))
        if not COLOUR_RE.fullmatch(value)
    }
    if target not in THEME_TARGETS:
        errors["target"] = "Choose root or preview."
    if errors:
        raise ValidationFailed(errors)
    return f"{THEME_TARGETS[target]} {{ --primary: {primary}; --accent: {accent}; }}\n"


def _reload(request: HTMXRequest, path: str) -> Any:
    """After a change the whole page (header colours included) must be drawn again."""
    if request.htmx:
        return Response(content="", status_code=204, headers={"HX-Redirect": path})
    return Redirect(path=path, status_code=303)
