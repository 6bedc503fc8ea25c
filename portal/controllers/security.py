"""/security: a master's sign-in rules for its tree (OpenID Connect provider, compulsory
TOTP for Owners and Admins) and /me/two-factor, each person's own second factor."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, one
from portal.pages import block_or_redirect, render
from tenants.access import sso, totp
from tenants.access.decide import Grants, Principal
from tenants.errors import Conflict, ValidationFailed
from tenants.settings import get_settings

MANAGE = {"permission": "settings.manage"}


async def _context(grants: Grants, **extra: Any) -> dict[str, Any]:
    account = grants.account
    root_id = account.ancestor_ids[0]
    provider = await sso.provider_for_account(root_id)
    return {
        "is_master": account.is_root,
        "provider": provider,
        "sign_in_link": (
            f"{get_settings().web.base_url}/sso/{provider.account_slug}/start" if provider else None
        ),
        "callback_url": get_settings().web.base_url + "/sso/callback",
        "require_totp": await totp.policy_requires(root_id),
        "form": {
            "issuer": provider.issuer if provider else "",
            "client_id": provider.client_id if provider else "",
            "enabled": provider.enabled if provider else True,
        },
        "errors": {},
        "saved": None,
        **extra,
    }


class SecurityController(Controller):
    path = "/security"

    @get("/", opt=MANAGE, name="security")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, "security.html.jinja", await _context(current_grants(request)))

    @post("/sso", opt=MANAGE)
    async def configure_sso(
        self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        grants = current_grants(request)
        form: dict[str, Any] = {
            "issuer": one(data, "issuer"),
            "client_id": one(data, "client_id"),
            "enabled": one(data, "enabled") == "on",
        }
        try:
            await sso.configure_provider(
                request_actor(request),
                grants,
                issuer=form["issuer"],
                client_id=form["client_id"],
                client_secret=one(data, "client_secret"),
                enabled=bool(form["enabled"]),
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "security.html.jinja",
                await _context(grants, form=form, errors=exc.errors),
                block="sso_card",
                status_code=422,
            )
        return await block_or_redirect(
            request,
            "/security",
            "security.html.jinja",
            "sso_card",
            lambda: _context(grants, saved="Single sign-on saved."),
        )

    @post("/two-factor-policy", opt=MANAGE)
    async def totp_policy(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        grants = current_grants(request)
        await totp.set_policy(
            request_actor(request), grants, require_for_admins=one(data, "require") == "on"
        )
        return await block_or_redirect(
            request, "/security", "security.html.jinja", "totp_card", lambda: _context(grants)
        )


class TwoFactorController(Controller):
    path = "/me/two-factor"

    async def _context(self, request: HTMXRequest, **extra: Any) -> dict[str, Any]:
        principal: Principal = request.user
        assert principal.user_id is not None
        return {
            "enrolled": await totp.is_enrolled(principal.user_id),
            "required": await totp.totp_required(principal.user_id),
            "enrolment": await totp.pending_enrolment(principal.user_id),
            "errors": {},
            "message": None,
            **extra,
        }

    async def _body(self, request: HTMXRequest, *, status_code: int = 200, **extra: Any) -> Any:
        """The two-factor card again, with `extra` (errors, message, enrolment) in it."""
        return await render(
            request,
            "my_two_factor.html.jinja",
            await self._context(request, **extra),
            block="totp_body",
            status_code=status_code,
        )

    @get("/", opt={"permission": "authenticated"}, name="two_factor")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, "my_two_factor.html.jinja", await self._context(request))

    @post("/start", opt={"permission": "authenticated"})
    async def start(self, request: HTMXRequest) -> Any:
        principal: Principal = request.user
        assert principal.user_id is not None
        try:
            enrolment = await totp.begin_enrolment(principal.user_id)
        except Conflict:
            return Redirect(path="/me/two-factor", status_code=303)
        return await self._body(request, enrolment=enrolment)

    @post("/confirm", opt={"permission": "authenticated"})
    async def confirm(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        principal: Principal = request.user
        assert principal.user_id is not None
        try:
            await totp.confirm_enrolment(
                request_actor(request), principal.user_id, one(data, "code"), _account_id(request)
            )
        except ValidationFailed as exc:
            return await self._body(request, errors=exc.errors, status_code=422)
        return await self._body(request, message="Two-factor sign-in is on.")

    @post("/disable", opt={"permission": "authenticated"})
    async def disable(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        principal: Principal = request.user
        assert principal.user_id is not None
        try:
            await totp.disable(
                request_actor(request), principal.user_id, one(data, "code"), _account_id(request)
            )
        except (ValidationFailed, Conflict) as exc:
            errors = exc.errors if isinstance(exc, ValidationFailed) else {"code": exc.message}
            return await self._body(
                request,
                errors=errors,
                status_code=422 if isinstance(exc, ValidationFailed) else 409,
            )
        return await self._body(request, message="Two-factor sign-in is off.")


def _account_id(request: HTMXRequest) -> int:
    grants = getattr(request.state, "grants", None)
    if grants is not None:
        return int(grants.account.id)
    return int(request.scope["auth"].account_id or 0)
