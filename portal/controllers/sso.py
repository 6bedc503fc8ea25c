"""Single sign-on: choose the organisation, go to its OpenID Connect provider, come back."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.controllers.session import sign_in_response
from portal.forms import FORM, one
from portal.pages import render
from tasks.oidc import OIDC
from tenants.access import sso
from tenants.errors import NotFound
from tenants.settings import get_settings

PUBLIC = {"public": True}
FLOW_COOKIE = "portal_sso"


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def redirect_uri() -> str:
    return get_settings().web.base_url + "/sso/callback"


def _refusal(request: HTMXRequest, message: str, status: int) -> Any:
    return render(
        request,
        "sso.html.jinja",
        {"refused": message, "organisation": "", "errors": {}},
        status_code=status,
    )


class SsoController(Controller):
    @get("/login/sso", opt=PUBLIC)
    async def choose(self, request: HTMXRequest, organisation: FromQuery[str] = "") -> Any:
        return await render(
            request,
            "sso.html.jinja",
            {"organisation": organisation, "errors": {}, "refused": None},
        )

    @post("/login/sso", opt=PUBLIC)
    async def chosen(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        organisation = one(data, "organisation").lower()
        try:
            await sso.provider_for_slug(organisation)
        except NotFound:
            return await render(
                request,
                "sso.html.jinja",
                {
                    "organisation": organisation,
                    "errors": {"organisation": "This organisation has no single sign-on."},
                    "refused": None,
                },
                status_code=422,
            )
        return Redirect(path=f"/sso/{organisation}/start", status_code=303)

    @get("/sso/{slug:str}/start", opt=PUBLIC)
    async def start(
        self, request: HTMXRequest, slug: FromPath[str], next: FromQuery[str] = "/"
    ) -> Any:
        try:
            provider = await sso.provider_for_slug(slug)
        except NotFound:
            return await _refusal(request, "This organisation has no single sign-on.", 404)
        try:
            flow = await sso.begin_sign_in(
                provider, redirect_uri=redirect_uri(), next_path=_safe_next(next), oidc=OIDC
            )
        except sso.SsoFailed as exc:
            return await _refusal(request, exc.message, 502)
        response: Response[Any] = Redirect(path=flow.authorize_url, status_code=302)
        # Lax: the provider sends the browser back with a top-level GET, which carries it.
        response.set_cookie(
            key=FLOW_COOKIE,
            value=flow.state_blob,
            httponly=True,
            samesite="lax",
            secure=get_settings().web.cookie_secure,
            path="/sso",
            max_age=sso.FLOW_LIFETIME_SECONDS,
        )
        return response

    @get("/sso/callback", opt=PUBLIC)
    async def callback(
        self,
        request: HTMXRequest,
        code: FromQuery[str] = "",
        # `state` is a reserved handler argument name in Litestar: read it by alias.
        oauth_state: Annotated[str, QueryParameter(name="state")] = "",
        error: FromQuery[str] = "",
        error_description: FromQuery[str] = "",
    ) -> Any:
        blob = request.cookies.get(FLOW_COOKIE, "")
        if error:
            return await _refusal(
                request, f"The provider did not sign you in: {error_description or error}.", 400
            )
        if not blob:
            return await _refusal(request, "This sign-in attempt expired; start again.", 400)
        try:
            signed_in = await sso.complete_sign_in(
                blob,
                state=oauth_state,
                code=code,
                oidc=OIDC,
                ip=request.client.host if request.client else None,
            )
        except sso.SsoRefused as exc:
            response = await _refusal(request, exc.message, 403)
        except sso.SsoFailed as exc:
            response = await _refusal(request, exc.message, 400)
        else:
            response = await sign_in_response(
                user_id=signed_in.user_id,
                account_id=signed_in.account_id,
                next_url=signed_in.next_path,
            )
        response.delete_cookie(FLOW_COOKIE, path="/sso")
        return response
