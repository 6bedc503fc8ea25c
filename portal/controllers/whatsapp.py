"""/whatsapp/templates: the WhatsApp templates registered on the account's own provider
integrations (name, language, category, numbered parameters mapped to merge fields),
registering one, and refreshing approvals from the providers that tell them."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, form_id
from portal.pages import render
from tasks.whatsapp_templates import refresh_approvals
from tenants.errors import Conflict, ValidationFailed
from tenants.providers import integrations as providers
from tenants.rich import templates as wa_templates
from tenants.rich.templates import TemplateInput

TEMPLATE = "whatsapp_templates.html.jinja"
FIELDS = (
    "integration_id", "name", "language", "category", "body", "parameter_fields",
    "content_sid", "status",
)  # fmt: skip


async def _context(request: HTMXRequest, **extra: Any) -> dict[str, Any]:
    grants = current_grants(request)
    account = grants.account
    owned = [i for i in await providers.list_owned(account.id) if "whatsapp" in i.channels]
    ctx: dict[str, Any] = {
        "templates": await wa_templates.list_templates(account.id),
        "integrations": owned,
        "names": {i.id: i.name for i in owned},
        "may_manage": grants.decide("providers.manage").allowed,
        "categories": wa_templates.CATEGORIES,
        "statuses": ("approved", "pending", "rejected"),
        "reads_approval": wa_templates.READS_APPROVAL,
        "form": {"category": "UTILITY", "language": "en", "status": "approved"},
        "errors": {},
    }
    ctx.update(extra)
    return ctx


def _input(form: dict[str, str]) -> TemplateInput:
    integration_id = form_id(
        form["integration_id"], "integration_id", "Choose a provider integration."
    )
    return TemplateInput(
        integration_id=integration_id,
        name=form["name"],
        language=form["language"],
        category=form["category"].upper(),
        body=form["body"].replace("\r\n", "\n"),
        parameter_fields=[f.strip() for f in form["parameter_fields"].split(",") if f.strip()],
        provider_ref=form["content_sid"],
        status=form["status"].lower() or "unknown",
    )


class WhatsAppTemplatesController(Controller):
    path = "/whatsapp/templates"

    @get("/", opt={"permission": "messages.send_template"}, name="whatsapp_templates")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, TEMPLATE, await _context(request))

    @post("/", opt={"permission": "providers.manage"})
    async def register(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        form = {k: str((data or {}).get(k) or "").strip() for k in FIELDS}
        try:
            view = await wa_templates.register_template(
                request_actor(request), account.id, _input(form)
            )
        except ValidationFailed as exc:
            ctx = await _context(request, form=form, errors=exc.errors)
            return await render(request, TEMPLATE, ctx, block="register", status_code=422)
        except Conflict as exc:
            ctx = await _context(request, form=form, errors={"name": exc.message})
            return await render(request, TEMPLATE, ctx, block="register", status_code=409)
        if not request.htmx:
            return Redirect(path="/whatsapp/templates", status_code=303)
        ctx = await _context(request, registered=view)
        return await render(request, TEMPLATE, ctx, block="register", status_code=201)

    @post("/refresh", opt={"permission": "providers.manage"}, status_code=200)
    async def refresh(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        outcome = await refresh_approvals(account.id)
        ctx = await _context(request, outcome=outcome)
        return await render(request, TEMPLATE, ctx, block="register")
