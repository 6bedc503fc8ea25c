"""/users: the members of the working account, their roles, invitations, and the
permission matrix of each member with its override buttons."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, id_list, one
from portal.pages import block_or_redirect, render
from tenants import mail
from tenants.access import invitations
from tenants.access import members as people
from tenants.access.decide import CATALOGUE, Grants
from tenants.errors import Conflict, PermissionDenied, ValidationFailed
from tenants.settings import get_settings

MANAGE = {"permission": "users.manage"}


def perm_dom_id(permission: str) -> str:
    return "perm-" + permission.replace(".", "-").replace("_", "-")


async def _page_context(grants: Grants) -> dict[str, Any]:
    account = grants.account
    return {
        "members": await people.list_members(account.id),
        "invitations": await invitations.list_invitations(account.id),
        "teams": await people.list_teams(account.id),
        "roles": await people.assignable_roles(grants),
        "invite_form": {"role": "Sender"},
        "errors": {},
        "new_link": None,
        "mail_configured": mail.mail_settings() is not None,
    }


def _link(token: str) -> str:
    return get_settings().web.base_url + invitations.invitation_path(token)


def _send_invitation_email(invitation_id: int, link: str) -> bool:
    if mail.mail_settings() is None:
        return False
    from tasks.mail import send_invitation_email

    send_invitation_email.send(invitation_id, link)
    return True


class UsersController(Controller):
    path = "/users"

    @get("/", opt=MANAGE, name="users")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(
            request, "users.html.jinja", await _page_context(current_grants(request))
        )

    @post("/invitations", opt=MANAGE)
    async def invite(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        grants = current_grants(request)
        form: dict[str, Any] = {
            "email": one(data, "email"),
            "role": one(data, "role"),
            "teams": id_list(data, "teams"),
        }
        context = await _page_context(grants)
        try:
            created = await invitations.invite_user(
                request_actor(request),
                grants,
                email=form["email"],
                role=form["role"],
                team_ids=form["teams"],
            )
        except ValidationFailed as exc:
            context |= {"invite_form": form, "errors": exc.errors}
            return await render(
                request, "users.html.jinja", context, block="invite_card", status_code=422
            )
        link = _link(created.token)
        emailed = _send_invitation_email(created.id, link)
        context |= {
            "new_link": {"email": created.email, "url": link, "emailed": emailed},
            "invitations": await invitations.list_invitations(grants.account.id),
        }
        return await render(
            request,
            "users.html.jinja",
            context,
            block="invite_card",
            status_code=201 if request.htmx else 200,
        )

    @post("/invitations/{invitation_id:int}/renew", opt=MANAGE)
    async def renew(self, request: HTMXRequest, invitation_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        renewed = await invitations.renew_invitation(request_actor(request), grants, invitation_id)
        link = _link(renewed.token)
        emailed = _send_invitation_email(renewed.id, link)
        context = await _page_context(grants)
        context["new_link"] = {"email": renewed.email, "url": link, "emailed": emailed}
        return await render(request, "users.html.jinja", context, block="invite_card")

    @post("/invitations/{invitation_id:int}/revoke", opt=MANAGE)
    async def revoke(self, request: HTMXRequest, invitation_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        await invitations.revoke_invitation(request_actor(request), grants, invitation_id)
        return await block_or_redirect(
            request, "/users", "users.html.jinja", "invite_card", lambda: _page_context(grants)
        )

    @post("/{user_id:int}/role", opt=MANAGE)
    async def change_role(
        self, request: HTMXRequest, user_id: FromPath[int], data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        grants = current_grants(request)
        error = None
        status = 200
        try:
            await people.change_member_role(
                request_actor(request), grants, user_id, one(data, "role")
            )
        except ValidationFailed as exc:
            error, status = next(iter(exc.errors.values())), 422
        except (Conflict, PermissionDenied) as exc:
            error, status = exc.message, 409 if isinstance(exc, Conflict) else 403
        if not request.htmx and error is None:
            return Redirect(path="/users", status_code=303)
        member = await people.get_member(grants.account.id, user_id)
        # Without htmx the whole page comes back, the message next to this member's role.
        context = {} if request.htmx else await _page_context(grants)
        return await render(
            request,
            "users.html.jinja",
            context
            | {
                "member": member,
                "roles": await people.assignable_roles(grants),
                "row_error": error,
            },
            block="member_row",
            status_code=status,
        )

    @post("/{user_id:int}/remove", opt=MANAGE)
    async def remove(self, request: HTMXRequest, user_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        await people.remove_member(request_actor(request), grants, user_id)
        return await block_or_redirect(
            request, "/users", "users.html.jinja", "members", lambda: _page_context(grants)
        )

    @get("/{user_id:int}/permissions", opt=MANAGE)
    async def permissions(self, request: HTMXRequest, user_id: FromPath[int]) -> Any:
        grants = current_grants(request)
        member = await people.get_member(grants.account.id, user_id)
        rows = await people.permission_matrix(grants.account.id, user_id)
        return await render(
            request,
            "user_permissions.html.jinja",
            {"member": member, "rows": rows, "grantable": _grantable(grants), "row_error": None},
        )

    @post("/{user_id:int}/overrides", opt=MANAGE)
    async def set_override(
        self, request: HTMXRequest, user_id: FromPath[int], data: Annotated[dict[str, Any], FORM]
    ) -> Any:
        grants = current_grants(request)
        permission = one(data, "permission")
        if permission not in CATALOGUE:
            raise ValidationFailed({"permission": "Unknown permission."})
        error = None
        status = 200
        try:
            await people.set_override(
                request_actor(request), grants, user_id, permission, one(data, "effect")
            )
        except ValidationFailed as exc:
            error, status = next(iter(exc.errors.values())), 422
        except PermissionDenied as exc:
            error, status = exc.message, 403
        if not request.htmx and error is None:
            return Redirect(path=f"/users/{user_id}/permissions", status_code=303)
        member = await people.get_member(grants.account.id, user_id)
        target = await people.member_grants(grants.account.id, user_id)
        if error is not None and not request.htmx:
            raise PermissionDenied(error) if status == 403 else ValidationFailed({"effect": error})
        return await render(
            request,
            "user_permissions.html.jinja",
            {
                "member": member,
                "row": people.matrix_row(target, permission),
                "grantable": _grantable(grants),
                "row_error": error,
            },
            block="perm_row",
            # The row is swapped even on refusal so the message shows next to it.
            status_code=422 if error else 200,
        )


def _grantable(grants: Grants) -> frozenset[str]:
    return frozenset(p for p in CATALOGUE if grants.holds(p))
