"""Sign-in (password, then the TOTP step when the person has or needs one), sign-out and
switching the working account."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import SESSION_COOKIE, AuthState
from portal.forms import FORM, parse_id
from portal.pages import render
from tenants.access import sessions, totp, users
from tenants.access.decide import Principal, decide
from tenants.accounts.tree import get_account
from tenants.errors import NotFound, RateLimited, ValidationFailed
from tenants.settings import get_settings

CHALLENGE_COOKIE = "portal_2fa"


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would hand a phishing page a trusted link.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


async def _default_account(principal: Principal) -> int | None:
    """The account the user chose to land in, while they may still work there; else the
    shallowest membership account they may work in (not suspended)."""
    assert principal.user_id is not None
    memberships = await users.memberships(principal.user_id)
    chosen = await users.default_account_id(principal.user_id)
    if chosen is not None and any(m.account_id == chosen for m in memberships):
        if (await decide(principal, chosen, "account.view")).allowed:
            return chosen
    for m in sorted(memberships, key=lambda m: (m.account_path.count("/"), m.account_name)):
        if (await decide(principal, m.account_id, "account.view")).allowed:
            return m.account_id
    return None


def _redirect_setting(
    path: str, cookie: str, token: str, cookie_path: str, lifetime: timedelta
) -> Response[Any]:
    """A 303 to `path` that sets the HTTP-only, same-site `cookie` to `token` for `lifetime`."""
    response: Response[Any] = Redirect(path=path, status_code=303)
    response.set_cookie(
        key=cookie,
        value=token,
        httponly=True,
        samesite="lax",
        secure=get_settings().web.cookie_secure,
        path=cookie_path,
        max_age=int(lifetime.total_seconds()),
    )
    return response


async def session_response(user_id: int, account_id: int, next_url: str) -> Response[Any]:
    """Start a session (a fresh id) and send the person on."""
    token = await sessions.start_session(user_id, account_id)
    return _redirect_setting(
        _safe_next(next_url), SESSION_COOKIE, token, "/", sessions.SESSION_LIFETIME
    )


async def sign_in_response(*, user_id: int, account_id: int, next_url: str) -> Response[Any]:
    """The end of every first factor (password, invitation, single sign-on): a session, or
    the TOTP step when the person has enrolled or their organisation requires it."""
    if not await totp.second_factor_needed(user_id):
        return await session_response(user_id, account_id, next_url)
    token = await totp.start_challenge(user_id, account_id, _safe_next(next_url))
    return _redirect_setting(
        "/login/two-factor", CHALLENGE_COOKIE, token, "/login", totp.CHALLENGE_LIFETIME
    )


class SessionController(Controller):
    @get("/login", opt={"public": True}, name="login")
    async def login_page(self, request: HTMXRequest, next: FromQuery[str | None] = None) -> Any:
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
        return await sign_in_response(user_id=user.id, account_id=account_id, next_url=next_url)

    @get("/login/two-factor", opt={"public": True})
    async def two_factor_page(self, request: HTMXRequest) -> Any:
        challenge = await totp.load_challenge(request.cookies.get(CHALLENGE_COOKIE, ""))
        if challenge is None:
            return Redirect(path="/login", status_code=303)
        return await render(request, "two_factor.html.jinja", await _challenge_context(challenge))

    @post("/login/two-factor", opt={"public": True})
    async def two_factor(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        token = request.cookies.get(CHALLENGE_COOKIE, "")
        challenge = await totp.load_challenge(token)
        if challenge is None:
            return Redirect(path="/login", status_code=303)
        ip = _client_ip(request)
        try:
            await sessions.check_signin_allowed(challenge.email, ip)
            await totp.answer_challenge(token, data.get("code", ""), ip=ip)
        except (ValidationFailed, RateLimited) as exc:
            if isinstance(exc, ValidationFailed):
                # Wrong codes count against the same sign-in throttle as wrong passwords.
                await sessions.record_signin(
                    challenge.email, ip, success=False, user_id=challenge.user_id
                )
            still = await totp.load_challenge(token)
            if still is None:
                return Redirect(path="/login", status_code=303)
            context = await _challenge_context(still)
            context["errors"] = {
                "code": exc.message if isinstance(exc, RateLimited) else "That code is not right."
            }
            return await render(
                request,
                "two_factor.html.jinja",
                context,
                status_code=429 if isinstance(exc, RateLimited) else 422,
            )
        if challenge.account_id is None:
            return Redirect(path="/login", status_code=303)
        response = await session_response(
            challenge.user_id, challenge.account_id, challenge.next_path
        )
        response.delete_cookie(CHALLENGE_COOKIE, path="/login")
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
        account_id = parse_id(data.get("account_id"))
        if account_id is None:
            raise NotFound("account not found")
        await get_account(account_id)  # NotFound for an id no account has
        decision = await decide(principal, account_id, "account.view")
        if not decision.allowed:
            raise NotFound("account not found")
        if state.session_id is not None:
            await sessions.set_session_account(state.session_id, account_id)
        if request.headers.get("hx-request"):
            return Response(content="", status_code=204, headers={"HX-Redirect": "/"})
        return Redirect(path="/", status_code=303)


async def _challenge_context(challenge: totp.Challenge) -> dict[str, Any]:
    """The TOTP step: a code, or (when the policy requires one) enrolment first."""
    enrolment = None
    if not challenge.enrolled:
        enrolment = await totp.pending_enrolment(challenge.user_id)
        if enrolment is None:
            enrolment = await totp.begin_enrolment(challenge.user_id)
    return {"challenge": challenge, "enrolment": enrolment, "errors": {}}
