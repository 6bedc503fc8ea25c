"""Sign-in, sign-out and switching the working account."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import SESSION_COOKIE, AuthState
from portal.config import get_settings
from portal.pages import render
from tenants import sessions, users
from tenants.access import Principal, decide
from tenants.accounts import get_account
from tenants.errors import NotFound, RateLimited

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would hand a phishing page a trusted link.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


async def _default_account(principal: Principal) -> int | None:
    """The shallowest membership account the user may work in (not suspended)."""
    assert principal.user_id is not None
    memberships = await users.memberships(principal.user_id)
    for m in sorted(memberships, key=lambda m: (m.account_path.count("/"), m.account_name)):
        if (await decide(principal, m.account_id, "account.view")).allowed:
            return m.account_id
    return None


class SessionController(Controller):
    @get("/login", opt={"public": True}, name="login")
    async def login_page(self, request: HTMXRequest, next: str | None = None) -> Any:
        return await render(request, "login.html.jinja", {"next": _safe_next(next), "email": ""})

    @post("/login", opt={"public": True})
    async def login(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        email = users.normalize_email(data.get("email", ""))
        password = data.get("password", "")
        next_url = _safe_next(data.get("next"))
        ip = _client_ip(request)
        errors: dict[str, str] = {}
        if not email:
            errors["email"] = "Enter your email address."
        if not password:
            errors["password"] = "Enter your password."
        if errors:
            return await render(
                request,
                "login.html.jinja",
                {"errors": errors, "email": email, "next": next_url},
                status_code=422,
            )
        try:
            await sessions.check_signin_allowed(email, ip)
        except RateLimited as exc:
            return await render(
                request,
                "login.html.jinja",
                {"errors": {"form": exc.message}, "email": email, "next": next_url},
                status_code=429,
                headers={"Retry-After": str(exc.retry_after)},
            )
        user = await users.authenticate(email, password)
        account_id = None
        if user is not None:
            principal = Principal(
                kind="user", label=user.email, user_id=user.id, is_operator=user.is_operator
            )
            account_id = await _default_account(principal)
        if user is None or account_id is None:
            await sessions.record_signin(
                email, ip, success=False, user_id=user.id if user else None
            )
            message = (
                "Email or password is wrong."
                if user is None
                else "Your account is suspended or you have no active membership."
            )
            return await render(
                request,
                "login.html.jinja",
                {"errors": {"form": message}, "email": email, "next": next_url},
                status_code=401 if user is None else 403,
            )
        await sessions.record_signin(email, ip, success=True, user_id=user.id)
        token = await sessions.start_session(user.id, account_id)
        response: Response[Any] = Redirect(path=next_url, status_code=303)
        response.set_cookie(
            key=SESSION_COOKIE,
            value=token,
            httponly=True,
            samesite="lax",
            secure=get_settings().cookie_secure,
            path="/",
            max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
        )
        return response

    @post("/logout", opt={"permission": "authenticated"})
    async def logout(self, request: HTMXRequest) -> Any:
        state: AuthState = request.scope["auth"]
        if state.session_token:
            await sessions.end_session(state.session_token)
        response: Response[Any] = Redirect(path="/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @post("/switch-account", opt={"permission": "authenticated"})
    async def switch_account(
        self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]
    ) -> Any:
        """Work in another account: one of the user's memberships or a descendant it manages."""
        principal: Principal = request.user
        state: AuthState = request.scope["auth"]
        try:
            account_id = int(data.get("account_id", ""))
            await get_account(account_id)
        except (ValueError, NotFound):
            raise NotFound("account not found") from None
        decision = await decide(principal, account_id, "account.view")
        if not decision.allowed:
            raise NotFound("account not found")
        if state.session_id is not None:
            await sessions.set_session_account(state.session_id, account_id)
        if request.headers.get("hx-request"):
            return Response(content="", status_code=204, headers={"HX-Redirect": "/"})
        return Redirect(path="/", status_code=303)
