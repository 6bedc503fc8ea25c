"""/api-keys: the working account's API keys; a new key's secret is shown once."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants, request_actor
from portal.forms import FORM, one
from portal.pages import block_or_redirect, render
from tenants.access import apikeys
from tenants.access import members as people
from tenants.access.decide import Grants
from tenants.errors import ValidationFailed

MANAGE = {"permission": "api_keys.manage"}


async def _context(grants: Grants, **extra: Any) -> dict[str, Any]:
    return {
        "keys": await apikeys.list_api_keys(grants.account.id),
        "roles": await people.assignable_roles(grants),
        "form": {"role": "Sender"},
        "errors": {},
        "new_key": None,
        **extra,
    }


class ApiKeysController(Controller):
    path = "/api-keys"

    @get("/", opt=MANAGE, name="api_keys")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, "api_keys.html.jinja", await _context(current_grants(request)))

    @post("/", opt=MANAGE)
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        grants = current_grants(request)
        form = {"name": one(data, "name"), "role": one(data, "role")}
        try:
            key = await apikeys.create_api_key(
                actor=request_actor(request),
                account_id=grants.account.id,
                name=form["name"],
                role=form["role"],
                grants=grants,
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "api_keys.html.jinja",
                await _context(grants, form=form, errors=exc.errors),
                block="keys_body",
                status_code=422,
            )
        # The secret exists only in this response: it is rendered, never redirected to.
        return await render(
            request,
            "api_keys.html.jinja",
            await _context(grants, new_key=key),
            block="keys_body",
            status_code=201 if request.htmx else 200,
            headers={"Cache-Control": "no-store"},
        )

    @post("/{api_key_id:int}/revoke", opt=MANAGE)
    async def revoke(self, request: HTMXRequest, api_key_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        await apikeys.revoke_api_key(
            actor=request_actor(request), account_id=grants.account.id, api_key_id=api_key_id
        )
        return await block_or_redirect(
            request, "/api-keys", "api_keys.html.jinja", "keys_body", lambda: _context(grants)
        )
