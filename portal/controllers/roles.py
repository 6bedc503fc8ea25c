"""/roles: the built-in roles (read only) and the custom roles an account defines for its
subtree."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, many, one
from portal.pages import block_or_redirect, render
from tenants.access import members as people
from tenants.access.decide import CATALOGUE, GRANTABLE, Grants
from tenants.errors import ValidationFailed

MANAGE = {"permission": "roles.manage"}


async def _context(grants: Grants, **extra: Any) -> dict[str, Any]:
    return {
        "roles": await people.roles_for_account(grants.account),
        "catalogue": CATALOGUE,
        "grantable": [p for p in GRANTABLE if grants.holds(p)],
        "form": {"name": "", "description": "", "permissions": []},
        "errors": {},
        **extra,
    }


class RolesController(Controller):
    path = "/roles"

    @get("/", opt=MANAGE, name="roles")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, "roles.html.jinja", await _context(current_grants(request)))

    @post("/", opt=MANAGE)
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        grants = current_grants(request)
        form: dict[str, Any] = {
            "name": one(data, "name"),
            "description": one(data, "description"),
            "permissions": many(data, "permissions"),
        }
        try:
            await people.create_custom_role(
                request_actor(request),
                grants,
                name=form["name"],
                description=form["description"],
                permissions=form["permissions"],
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "roles.html.jinja",
                await _context(grants, form=form, errors=exc.errors),
                block="roles_body",
                status_code=422,
            )
        return await block_or_redirect(
            request, "/roles", "roles.html.jinja", "roles_body", lambda: _context(grants)
        )

    @get("/{role_id:int}", opt=MANAGE)
    async def edit(self, request: HTMXRequest, role_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        role = await people.get_custom_role(grants.account, role_id)
        form = {"description": role.description, "permissions": sorted(role.permissions)}
        return await render(
            request, "role_edit.html.jinja", await _context(grants, role=role, form=form)
        )

    @post("/{role_id:int}", opt=MANAGE)
    async def update(
        self, request: HTMXRequest, role_id: FromPath[int], data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        grants = current_grants(request)
        role = await people.get_custom_role(grants.account, role_id)
        form: dict[str, Any] = {
            "description": one(data, "description"),
            "permissions": many(data, "permissions"),
        }
        try:
            updated = await people.update_custom_role(
                request_actor(request),
                grants,
                role_id,
                description=form["description"],
                permissions=form["permissions"],
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "role_edit.html.jinja",
                await _context(grants, role=role, form=form, errors=exc.errors),
                block="role_form",
                status_code=422,
            )
        if not request.htmx:
            return Redirect(path="/roles", status_code=303)
        form = {"description": updated.description, "permissions": sorted(updated.permissions)}
        return await render(
            request,
            "role_edit.html.jinja",
            await _context(grants, role=updated, form=form, saved=True),
            block="role_form",
        )

    @post("/{role_id:int}/delete", opt=MANAGE)
    async def delete(self, request: HTMXRequest, role_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        await people.delete_custom_role(request_actor(request), grants, role_id)
        return await block_or_redirect(
            request, "/roles", "roles.html.jinja", "roles_body", lambda: _context(grants)
        )
