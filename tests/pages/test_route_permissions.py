"""Every route declares who may use it; state-changing routes must name a permission."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from portal.app import create_app
from tenants.access.decide import CATALOGUE

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Public state-changing routes, each with the reason it needs no permission.
PUBLIC_WRITES = {
    "/login": "signing in is how a person gets permissions",
    "/login/two-factor": "the second step of signing in (holds a first-factor challenge)",
    "/login/sso": "choosing the organisation whose single sign-on to use",
    "/invite/{token:str}": "accepting an invitation: the single-use token is the credential",
}
PUBLIC_WRITE_PREFIXES = (
    "/hooks/",  # provider callbacks: verified by signature or shared secret instead
    "/simulator/",  # the built-in provider simulator's own endpoints (loopback)
)


def _handlers():
    app = create_app()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            # Litestar adds an OPTIONS handler to every route by itself.
            if isinstance(handler, HTTPRouteHandler) and set(handler.http_methods) != {"OPTIONS"}:
                yield route.path, handler


def test_every_state_changing_route_declares_a_permission():
    missing = []
    for path, handler in _handlers():
        methods = set(handler.http_methods) - SAFE_METHODS
        if not methods:
            continue
        opt = handler.opt
        if opt.get("public"):
            if path in PUBLIC_WRITES or path.startswith(PUBLIC_WRITE_PREFIXES):
                continue
            missing.append(f"{sorted(methods)} {path} is public")
            continue
        permission = opt.get("permission")
        if permission != "authenticated" and permission not in CATALOGUE:
            missing.append(f"{sorted(methods)} {path} -> {permission!r}")
    assert not missing, "routes without a permission:\n" + "\n".join(missing)


def test_every_route_is_public_or_declares_a_permission():
    undeclared = [
        path
        for path, handler in _handlers()
        if not handler.opt.get("public") and "permission" not in handler.opt
    ]
    assert not undeclared, undeclared
