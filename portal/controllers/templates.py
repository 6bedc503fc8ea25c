"""Templates: the list, the editor with the live composer, approval and archiving, and the
account's maker-checker setting."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.controllers.composer import composition_for
from portal.forms import FORM, one, parse_id
from portal.pages import render
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.templates import templates
from tenants.templates.templates import TemplateDetail

LIST_FILTERS = ("active", "approved", "draft", "archived")


def _sees_drafts(request: HTMXRequest) -> bool:
    """Writers and approvers work with drafts; everyone else sees only what can be sent."""
    allowed = current_grants(request).allowed()
    return "templates.manage" in allowed or "templates.approve" in allowed


def _form(data: dict[str, str]) -> dict[str, Any]:
    return {
        "name": (data.get("name") or "").strip(),
        "body": (data.get("body") or "").replace("\r\n", "\n"),
        "shared_down": data.get("shared_down") in ("on", "true", "1"),
    }


class TemplatesController(Controller):
    path = "/templates"

    @get("/", opt={"permission": "templates.view"}, name="templates")
    async def index(self, request: HTMXRequest, status: FromQuery[str | None] = None) -> Any:
        account = current_grants(request).account
        drafts = _sees_drafts(request)
        shown = (
            status if drafts and status in LIST_FILTERS else ("active" if drafts else "approved")
        )
        if shown == "active":
            rows = [
                t
                for t in await templates.usable_templates(account.id, status=None)
                if t.status != templates.ARCHIVED
            ]
        else:
            rows = await templates.usable_templates(account.id, status=shown)
        return await render(
            request,
            "templates.html.jinja",
            {
                "templates": rows,
                "owners": await templates.owner_names(rows),
                "pending": await templates.with_pending_draft(
                    [t.id for t in rows if t.account_id == account.id]
                ),
                "shown": shown,
                "sees_drafts": drafts,
                "maker_checker": await templates.maker_checker_enabled(account.id),
            },
            block="list",
        )

    @get("/new", opt={"permission": "templates.manage"})
    async def new(self, request: HTMXRequest) -> Any:
        return await render(
            request,
            "template_new.html.jinja",
            {
                "form": {"name": "", "body": "", "shared_down": False},
                "errors": {},
                "c": await composition_for(request, ""),
            },
        )

    @post("/", opt={"permission": "templates.manage"})
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        form = _form(data)
        try:
            created = await templates.create_template(
                actor=request_actor(request),
                account_id=account.id,
                name=form["name"],
                body=form["body"],
                shared_down=form["shared_down"],
            )
        except ValidationFailed as exc:
            return await render(
                request,
                "template_new.html.jinja",
                {
                    "form": form,
                    "errors": exc.errors,
                    "c": await composition_for(request, form["body"]),
                },
                block="editor",
                status_code=422,
            )
        target = f"/templates/{created.id}"
        if request.htmx:
            return Response(content="", status_code=201, headers={"HX-Redirect": target})
        return Redirect(path=target, status_code=303)

    async def _detail_page(
        self,
        request: HTMXRequest,
        detail: TemplateDetail,
        *,
        form: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        notice: str | None = None,
        problem: str | None = None,
        status_code: int = 200,
    ) -> Any:
        principal = request.scope["user"]
        latest = detail.pending or detail.approved
        if form is None:
            form = {
                "name": detail.template.name,
                "body": latest.body if latest else detail.template.body,
                "shared_down": detail.template.shared_down,
            }
        own_draft = bool(
            detail.pending
            and principal.user_id is not None
            and detail.pending.author_user_id == principal.user_id
        )
        return await render(
            request,
            "template_detail.html.jinja",
            {
                "d": detail,
                "form": form,
                "errors": errors or {},
                "notice": notice,
                "problem": problem,
                "c": await composition_for(request, form["body"]),
                "approved_c": (
                    await composition_for(request, detail.approved.body)
                    if detail.approved
                    else None
                ),
                # Maker-checker: the author of the pending draft may not approve it.
                "author_blocked": own_draft and detail.maker_checker,
            },
            block="detail",
            status_code=status_code,
        )

    @get("/{template_id:int}", opt={"permission": "templates.view"})
    async def show(self, request: HTMXRequest, template_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        detail = await templates.template_detail(
            account.id, template_id, include_drafts=_sees_drafts(request)
        )
        return await self._detail_page(request, detail)

    @post("/{template_id:int}", opt={"permission": "templates.manage"})
    async def update(
        self,
        request: HTMXRequest,
        template_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        account = current_grants(request).account
        form = _form(data)
        try:
            detail = await templates.edit_template(
                actor=request_actor(request),
                account_id=account.id,
                template_id=template_id,
                name=form["name"],
                body=form["body"],
                shared_down=form["shared_down"],
            )
        except ValidationFailed as exc:
            current = await templates.template_detail(account.id, template_id)
            return await self._detail_page(
                request, current, form=form, errors=exc.errors, status_code=422
            )
        except Conflict as exc:
            current = await templates.template_detail(account.id, template_id)
            return await self._detail_page(request, current, problem=exc.message, status_code=409)
        if not request.htmx:
            return Redirect(path=f"/templates/{template_id}", status_code=303)
        notice = (
            f"Saved. Version {detail.pending.number} awaits approval."
            if detail.pending
            else "Saved."
        )
        return await self._detail_page(request, detail, notice=notice)

    @post("/{template_id:int}/approve", opt={"permission": "templates.approve"})
    async def approve(
        self,
        request: HTMXRequest,
        template_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        account = current_grants(request).account
        raw = data.get("version_id") or ""
        if parse_id(raw) is None:
            raise NotFound("version not found")
        try:
            detail = await templates.approve_version(
                actor=request_actor(request),
                account_id=account.id,
                template_id=template_id,
                version_id=int(raw),
            )
        except Conflict as exc:
            current = await templates.template_detail(account.id, template_id)
            return await self._detail_page(request, current, problem=exc.message, status_code=409)
        if not request.htmx:
            return Redirect(path=f"/templates/{template_id}", status_code=303)
        number = detail.approved.number if detail.approved else ""
        return await self._detail_page(
            request, detail, notice=f"Version {number} approved; it is the one sent from now on."
        )

    @post("/{template_id:int}/archive", opt={"permission": "templates.manage"})
    async def archive(self, request: HTMXRequest, template_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        detail = await templates.archive_template(
            actor=request_actor(request), account_id=account.id, template_id=template_id
        )
        if not request.htmx:
            return Redirect(path=f"/templates/{template_id}", status_code=303)
        return await self._detail_page(
            request, detail, notice="Archived: it can no longer be sent."
        )

    @post("/{template_id:int}/quiet-exempt", opt={"permission": "templates.manage"})
    async def quiet_exempt(
        self,
        request: HTMXRequest,
        template_id: FromPath[int],
        data: Annotated[dict[str, Any], FORM],
    ) -> Redirect:
        """Mark the template transactional (sent through quiet hours) or not."""
        await templates.set_quiet_exempt(
            actor=request_actor(request),
            account_id=current_grants(request).account.id,
            template_id=template_id,
            exempt=one(data or {}, "exempt") == "1",
        )
        return Redirect(path=f"/templates/{template_id}", status_code=303)

    @post("/settings", opt={"permission": "settings.manage"})
    async def settings(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        enabled = await templates.set_maker_checker(
            actor=request_actor(request),
            account_id=account.id,
            enabled=data.get("maker_checker") in ("on", "true", "1"),
        )
        if not request.htmx:
            return Redirect(path="/templates", status_code=303)
        return await render(
            request,
            "templates.html.jinja",
            {"maker_checker": enabled, "saved": True},
            block="policy",
        )
