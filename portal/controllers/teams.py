"""/teams: departments of the working account, each with a role, and their members."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants, request_actor
from portal.forms import FORM, form_id, one
from portal.pages import block_or_redirect, render
from tenants.access import members as people
from tenants.access.decide import Grants
from tenants.errors import ValidationFailed

MANAGE = {"permission": "users.manage"}


async def _context(grants: Grants, **extra: Any) -> dict[str, Any]:
    return {
        "teams": await people.list_teams(grants.account.id),
        "members": await people.list_members(grants.account.id),
        "roles": await people.assignable_roles(grants),
        "form": {"role": "Sender"},
        "errors": {},
        "team_errors": {},
        **extra,
    }


class TeamsController(Controller):
    path = "/teams"

    @get("/", opt=MANAGE, name="teams")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, "teams.html.jinja", await _context(current_grants(request)))

    @post("/", opt=MANAGE)
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        grants = current_grants(request)
        form = {"name": one(data, "name"), "role": one(data, "role")}
        try:
            await people.create_team(
                request_actor(request), grants, name=form["name"], role=form["role"]
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "teams.html.jinja",
                await _context(grants, form=form, errors=exc.errors),
                block="teams_body",
                status_code=422,
            )
        return await self._done(request, grants)

    async def _done(self, request: HTMXRequest, grants: Grants, **extra: Any) -> Any:
        return await block_or_redirect(
            request, "/teams", "teams.html.jinja", "teams_body", lambda: _context(grants, **extra)
        )

    async def _attempt(self, request: HTMXRequest, team_id: int, call: Any) -> Any:
        grants = current_grants(request)
        try:
            await call(grants)
        except ValidationFailed as exc:
            context = await _context(grants, team_errors={team_id: next(iter(exc.errors.values()))})
            return await render(
                request, "teams.html.jinja", context, block="teams_body", status_code=422
            )
        return await self._done(request, grants)

    @post("/{team_id:int}/role", opt=MANAGE)
    async def change_role(
        self, request: HTMXRequest, team_id: FromPath[int], data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        role = one(data, "role")
        actor = request_actor(request)
        return await self._attempt(
            request, team_id, lambda g: people.change_team_role(actor, g, team_id, role)
        )

    @post("/{team_id:int}/delete", opt=MANAGE)
    async def delete(self, request: HTMXRequest, team_id: FromPath[int]) -> Any:
        actor = request_actor(request)
        return await self._attempt(
            request, team_id, lambda g: people.delete_team(actor, g, team_id)
        )

    @post("/{team_id:int}/members", opt=MANAGE)
    async def add_member(
        self, request: HTMXRequest, team_id: FromPath[int], data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        actor = request_actor(request)
        raw = one(data, "user_id")

        async def add(g: Grants) -> None:
            await people.add_team_member(actor, g, team_id, form_id(raw, "user_id", "Choose one."))

        return await self._attempt(request, team_id, add)

    @post("/{team_id:int}/members/{user_id:int}/remove", opt=MANAGE)
    async def remove_member(
        self, request: HTMXRequest, team_id: FromPath[int], user_id: FromPath[int]
    ) -> Any:
        actor = request_actor(request)
        return await self._attempt(
            request, team_id, lambda g: people.remove_team_member(actor, g, team_id, user_id)
        )
