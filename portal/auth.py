"""Who is calling: session cookie for pages, HTTP Basic API keys for /api; and the one
guard that enforces every handler's declared permission."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from tenants.access import apikeys, resolved, sessions, users
from tenants.access.decide import Grants, Principal, evaluate
from tenants.audit import record as audit
from tenants.errors import NotFound, PermissionDenied
from tenants.settings import get_settings

SESSION_COOKIE = "portal_session"
API_PREFIX = "/api/"

# A verified (key id, secret) pair is remembered briefly so each API call does not pay for
# argon2; the key row (revocation) is still read on every request.
_KEY_CACHE_SECONDS = 60.0
_verified_keys: dict[str, tuple[float, Principal]] = {}


@dataclass
class AuthState:
    """What the middleware learned about the caller (kept in scope["auth"])."""

    account_id: int | None = None
    session_id: int | None = None
    session_token: str | None = None
    # The cache_version counter read at the start of the request (tenants/access/resolved).
    version: int | None = None


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    key_id, sep, secret = decoded.partition(":")
    return (key_id, secret) if sep else None


async def _principal_for_key(key_id: str, secret: str) -> Principal | None:
    cache_key = hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    cached = _verified_keys.get(cache_key)
    if cached and cached[0] > time.monotonic():
        if not await apikeys.key_is_active(key_id):
            _verified_keys.pop(cache_key, None)
            return None
        return cached[1]
    principal = await apikeys.authenticate_key(key_id, secret)
    if principal is not None:
        _verified_keys[cache_key] = (time.monotonic() + _KEY_CACHE_SECONDS, principal)
    return principal


class AuthMiddleware:
    """Sets scope["user"] (a Principal or None) and scope["auth"] (an AuthState)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Short link redirects are public and must stay one lookup: no session is read.
        self.sessionless = ("/static/", f"/{get_settings().links.path_prefix}/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await authenticate(scope, self.sessionless)
        await self.app(scope, receive, send)


async def authenticate(scope: Scope, sessionless: tuple[str, ...] = ()) -> None:
    """Set scope["user"] (a Principal or None) and scope["auth"] (an AuthState) from the
    API key or the session cookie. The middleware runs it for every matched route; the
    error pages of requests no route matched (404, 405) run it themselves."""
    principal: Principal | None = None
    state = AuthState()
    path: str = scope.get("path", "")
    headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if path.startswith(API_PREFIX):
        creds = _basic_credentials(headers.get("authorization", ""))
        if creds:
            principal = await _principal_for_key(*creds)
            if principal is not None:
                state.account_id = principal.key_account_id
    elif not path.startswith(sessionless):
        principal, state = await _session_principal(headers)
    scope["user"] = principal
    scope["auth"] = state


async def _session_principal(headers: dict[str, str]) -> tuple[Principal | None, AuthState]:
    """The signed-in person of the session cookie, if any, with the session's state."""
    token = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
    if not token:
        return None, AuthState()
    version = await resolved.read_version()
    session = await sessions.load_session(token, version)
    if session is None:
        return None, AuthState()
    user_id = session.user_id
    user = await resolved.remembered(version, ("user", user_id), lambda: users.get_user(user_id))
    if not user.active:
        return None, AuthState()
    principal = Principal(
        kind="user", label=user.email, user_id=user.id, is_operator=user.is_operator
    )
    state = AuthState(
        account_id=session.account_id,
        session_id=session.id,
        session_token=token,
        version=version,
    )
    return principal, state


async def page_grants(scope: Scope) -> Grants | None:
    """The signed-in person's grants in the working account, for an error page that no
    guard ran for (none when signed out, or when the account is out of reach)."""
    principal: Principal | None = scope.get("user")
    state: AuthState | None = scope.get("auth")
    if principal is None or state is None or state.account_id is None:
        return None
    try:
        grants = await _grants(principal, state)
    except NotFound:
        return None
    return None if grants.blocked else grants


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _grants(principal: Principal, state: AuthState) -> Grants:
    """The caller's grants in the working account; a signed-in person's from the memo."""
    account_id = state.account_id
    assert account_id is not None
    if principal.kind != "user":
        return await evaluate(principal, account_id)
    key = ("grants", principal.user_id, principal.is_operator, account_id)
    return await resolved.remembered(state.version, key, lambda: evaluate(principal, account_id))


async def permission_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Reads the handler's opt: `public`, `permission: "authenticated"` or a catalogue name.

    The permission is decided in the caller's working account (the session's, or the API
    key's); the grants are kept on the connection for navigation and controllers.
    """
    opt = handler.opt
    if opt.get("public"):
        return
    principal: Principal | None = connection.scope.get("user")
    if principal is None:
        raise NotAuthorizedException("Sign in to continue.")
    permission = opt.get("permission")
    if permission is None:
        raise PermissionDenied("this route declares no permission")
    state: AuthState = connection.scope["auth"]
    if state.account_id is None:
        if permission == "authenticated":
            return
        raise NotFound("no account selected")
    try:
        grants = await _grants(principal, state)
    except NotFound:
        raise NotFound("account not found") from None
    connection.state.grants = grants
    if grants.blocked and principal.kind == "user":
        # A session whose account the user lost access to: treat as not found.
        raise NotFound("account not found")
    if permission == "authenticated":
        return
    decision = grants.decide(permission)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def current_grants(connection: ASGIConnection[Any, Any, Any, Any]) -> Grants:
    """What the caller holds in the working account (set by the guard)."""
    return connection.state.grants  # type: ignore[no-any-return]


def request_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> audit.Actor:
    """The audit actor for this request: the person or key, with the client IP."""
    principal: Principal = connection.scope["user"]
    return principal.actor(connection.client.host if connection.client else None)
