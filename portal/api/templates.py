"""/api/v1/templates: the templates the key's account may use (own and shared down)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from msgspec import Struct

from portal.api.schemas import QueryLine, documented
from portal.auth import current_grants
from tenants.errors import PermissionDenied, ValidationFailed
from tenants.templates import templates
from tenants.templates.templates import TemplateView


class TemplateOut(Struct):
    id: int
    name: str
    body: str
    status: str
    account_id: int
    shared_down: bool


def template_json(t: TemplateView) -> TemplateOut:
    return TemplateOut(
        id=t.id,
        name=t.name,
        body=t.body,
        status=t.status,
        account_id=t.account_id,
        shared_down=t.shared_down,
    )


class TemplatesApi(Controller):
    @get("/templates", opt={"permission": "templates.view"}, **documented())
    async def list_templates(
        self, request: Request[Any, Any, Any], status: QueryLine = None
    ) -> list[TemplateOut]:
        """Approved templates by default; `status=draft|archived|all` for writers and approvers."""
        grants = current_grants(request)
        wanted = status or templates.APPROVED
        if wanted not in (*templates.STATUSES, "all"):
            raise ValidationFailed({"status": "Status must be approved, draft, archived or all."})
        if wanted != templates.APPROVED and not (
            grants.decide("templates.manage") or grants.decide("templates.approve")
        ):
            raise PermissionDenied(
                "Only template writers and approvers see templates that are not approved."
            )
        rows = await templates.usable_templates(
            grants.account.id, status=None if wanted == "all" else wanted
        )
        return [template_json(t) for t in rows]
