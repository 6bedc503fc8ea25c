"""/invite/{token}: the public page an invitee opens to join an account."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest

from portal.controllers.session import sign_in_response
from portal.forms import FORM, one
from portal.pages import render
from tenants.access import invitations
from tenants.errors import Conflict, NotFound, ValidationFailed

PUBLIC = {"public": True}


async def _invitation_or_page(request: HTMXRequest, token: str) -> Any:
    try:
        return await invitations.find_invitation(token)
    except NotFound:
        return await render(
            request,
            "invitation.html.jinja",
            {"invitation": None, "problem": "This invitation link is not valid."},
            status_code=404,
        )


class InvitationController(Controller):
    path = "/invite"

    @get("/{token:str}", opt=PUBLIC, name="invitation")
    async def show(self, request: HTMXRequest, token: FromPath[str]) -> Any:
        found = await _invitation_or_page(request, token)
        if not isinstance(found, invitations.InvitationView):
            return found
        problem = None if found.status == "pending" else invitations.unusable_error(found).message
        return await render(
            request,
            "invitation.html.jinja",
            {"invitation": found, "problem": problem, "errors": {}, "name": "", "token": token},
            status_code=200 if problem is None else 410,
        )

    @post("/{token:str}", opt=PUBLIC)
    async def accept(
        self, request: HTMXRequest, token: FromPath[str], data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        found = await _invitation_or_page(request, token)
        if not isinstance(found, invitations.InvitationView):
            return found
        password = one(data, "password")
        name = one(data, "name")
        errors: dict[str, str] = {}
        if not found.existing_user and password != one(data, "password_confirm"):
            errors["password_confirm"] = "The two passwords differ."
        accepted = None
        if not errors:
            try:
                accepted = await invitations.accept_invitation(
                    token,
                    password=password,
                    name=name,
                    ip=request.client.host if request.client else None,
                )
            except ValidationFailed as exc:
                errors = exc.errors
            except Conflict as exc:
                return await render(
                    request,
                    "invitation.html.jinja",
                    {"invitation": found, "problem": exc.message},
                    status_code=410,
                )
        if accepted is None:
            return await render(
                request,
                "invitation.html.jinja",
                {
                    "invitation": found,
                    "problem": None,
                    "errors": errors,
                    "name": name,
                    "token": token,
                },
                status_code=422,
            )
        return await sign_in_response(
            user_id=accepted.user_id, account_id=accepted.account_id, next_url="/"
        )
