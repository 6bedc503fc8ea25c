"""/me/accounts: the accounts a person belongs to, and the one sign-in lands in."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest

from portal.auth import AuthState, request_actor
from portal.forms import FORM, one, parse_id
from portal.pages import block_or_redirect, render
from tenants.access import users
from tenants.access.decide import Principal
from tenants.errors import ValidationFailed

TEMPLATE = "my_accounts.html.jinja"


async def _context(user_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "memberships": await users.memberships(user_id),
        "default_account_id": await users.default_account_id(user_id),
        "errors": {},
        "saved": False,
        **extra,
    }


def _chosen(raw: str) -> int | None:
    """The posted choice: an account id, or "" for the shallowest membership."""
    if not raw:
        return None
    if parse_id(raw) is None:
        raise ValidationFailed({"account_id": "Choose one of the accounts you belong to."})
    return int(raw)


class MyAccountsController(Controller):
    path = "/me/accounts"

    @get("/", opt={"permission": "authenticated"}, name="my_accounts")
    async def index(self, request: HTMXRequest, saved: FromQuery[str] = "") -> Any:
        principal: Principal = request.user
        assert principal.user_id is not None
        ctx = await _context(principal.user_id, saved=saved == "1")
        return await render(request, TEMPLATE, ctx)

    @post("/default", opt={"permission": "authenticated"})
    async def set_default(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        """Choose the account sign-in lands in (API keys keep their own account)."""
        principal: Principal = request.user
        state: AuthState = request.scope["auth"]
        assert principal.user_id is not None
        user_id = principal.user_id
        try:
            await users.set_default_account(
                actor=request_actor(request),
                user_id=user_id,
                account_id=_chosen(one(data, "account_id")),
                working_account_id=state.account_id or 0,
            )
        except ValidationFailed as exc:
            ctx = await _context(user_id, errors=exc.errors)
            return await render(request, TEMPLATE, ctx, block="default_form", status_code=422)
        return await block_or_redirect(
            request,
            "/me/accounts?saved=1",
            TEMPLATE,
            "default_form",
            lambda: _context(user_id, saved=True),
        )
