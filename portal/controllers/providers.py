"""Provider integrations: the list and the add form (fields per provider), one
integration's page (settings, secrets shown once, callback URLs, test connection,
enable/disable), and the operator's permission for masters to add their own."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import block_or_redirect, render
from tasks.gateways import test_connection
from tenants.accounts import tree as accounts
from tenants.errors import ValidationFailed
from tenants.providers import integrations as providers


async def _list_ctx(request: HTMXRequest, **extra: Any) -> dict[str, Any]:
    grants = current_grants(request)
    account = grants.account
    refusal = await providers.ownership_refusal(account, is_operator=grants.is_operator)
    owned = [] if refusal else await providers.list_owned(account.id)
    ctx: dict[str, Any] = {
        "kinds": providers.KINDS,
        "refusal": refusal,
        "owned": owned,
        "urls": {i.id: await providers.callback_urls_of(i) for i in owned},
        "available": await providers.available_integrations(account.id) if refusal else [],
        "kind": "",
        "form": {},
        "errors": {},
        "masters": [],
        "permits": {},
    }
    if grants.is_operator and account.kind == "platform":
        ctx["masters"] = await accounts.root_accounts(kind="master")
        ctx["permits"] = await providers.master_permits()
    ctx.update(extra)
    return ctx


def _values(data: dict[str, str], kind: str) -> dict[str, str]:
    spec = providers.KINDS.get(kind)
    return {f.name: data.get(f.name, "") for f in spec.fields} if spec else {}


class ProvidersController(Controller):
    path = "/providers"

    @get("/", opt={"permission": "providers.manage"}, name="providers")
    async def index(self, request: HTMXRequest, kind: FromQuery[str | None] = None) -> Any:
        chosen = kind if kind in providers.KINDS else ""
        return await render(
            request,
            "providers.html.jinja",
            await _list_ctx(request, kind=chosen),
            block="add_form" if kind is not None else None,
        )

    @post("/", opt={"permission": "providers.manage"})
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        grants = current_grants(request)
        kind = data.get("kind", "")
        form = {
            "name": data.get("name", ""),
            "rate_limit": data.get("rate_limit", ""),
            **_values(data, kind),
        }
        try:
            created = await providers.create_integration(
                request_actor(request),
                account_id=grants.account.id,
                kind=kind,
                name=data.get("name", ""),
                values=_values(data, kind),
                rate_limit=data.get("rate_limit"),
                is_operator=grants.is_operator,
            )
        except ValidationFailed as exc:
            # Secrets typed in are not echoed back into the form.
            spec = providers.KINDS.get(kind)
            for f in spec.secret_fields if spec else ():
                form.pop(f.name, None)
            return await render(
                request,
                "providers.html.jinja",
                await _list_ctx(
                    request,
                    kind=kind if kind in providers.KINDS else "",
                    form=form,
                    errors=exc.errors,
                ),
                block="add_form",
                status_code=422,
            )
        return await render(
            request,
            "provider_detail.html.jinja",
            await _detail_ctx(
                created.integration, shown_once=created.shown_once, just_created=True
            ),
            block="detail_main",
            status_code=201,
            headers={
                "HX-Retarget": "#main",
                "HX-Reswap": "innerHTML",
                "HX-Push-Url": f"/providers/{created.integration.id}",
            },
        )

    @get("/{integration_id:int}", opt={"permission": "providers.manage"})
    async def detail(self, request: HTMXRequest, integration_id: FromPath[int]) -> Any:
        view = await providers.get_integration(current_grants(request).account.id, integration_id)
        return await render(request, "provider_detail.html.jinja", await _detail_ctx(view))

    @post("/{integration_id:int}", opt={"permission": "providers.manage"})
    async def update(
        self,
        request: HTMXRequest,
        integration_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        account_id = current_grants(request).account.id
        view = await providers.get_integration(account_id, integration_id)
        try:
            updated = await providers.update_integration(
                request_actor(request),
                account_id=account_id,
                integration_id=integration_id,
                name=data.get("name", ""),
                values=_values(data, view.kind),
                rate_limit=data.get("rate_limit"),
            )
        except ValidationFailed as exc:
            form = {
                "name": data.get("name", ""),
                "rate_limit": data.get("rate_limit", ""),
                **_values(data, view.kind),
            }
            for f in view.spec.secret_fields:
                form.pop(f.name, None)
            return await render(
                request,
                "provider_detail.html.jinja",
                await _detail_ctx(view, form=form, errors=exc.errors),
                block="edit_form",
                status_code=422,
                headers={"HX-Retarget": "#edit-form", "HX-Reswap": "outerHTML"},
            )
        return await render(
            request,
            "provider_detail.html.jinja",
            await _detail_ctx(updated.integration, shown_once=updated.shown_once, saved=True),
            block="detail_body",
        )

    @post("/{integration_id:int}/test", opt={"permission": "providers.manage"})
    async def test(self, request: HTMXRequest, integration_id: FromPath[int]) -> Any:
        account_id = current_grants(request).account.id
        await providers.get_integration(account_id, integration_id)
        check = await test_connection(integration_id)
        view = await providers.record_test(
            request_actor(request),
            account_id=account_id,
            integration_id=integration_id,
            ok=check.ok,
            message=check.message,
        )
        return await _status_panel(request, view)

    @post("/{integration_id:int}/status", opt={"permission": "providers.manage"})
    async def set_status(
        self,
        request: HTMXRequest,
        integration_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        view = await providers.set_integration_status(
            request_actor(request),
            account_id=current_grants(request).account.id,
            integration_id=integration_id,
            status=data.get("status", ""),
        )
        return await _status_panel(request, view)

    @post("/permits/{account_id:int}", opt={"permission": "platform.operate"})
    async def permit(
        self, request: HTMXRequest, account_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        await providers.set_master_permit(
            request_actor(request), master_id=account_id, allowed=data.get("allowed") == "1"
        )
        return await block_or_redirect(
            request, "/providers", "providers.html.jinja", "permits", lambda: _list_ctx(request)
        )


async def _status_panel(request: HTMXRequest, view: providers.IntegrationView) -> Any:
    """After a test or a status change: the detail page's status panel, or back to it."""
    return await block_or_redirect(
        request,
        f"/providers/{view.id}",
        "provider_detail.html.jinja",
        "status_panel",
        lambda: _detail_ctx(view),
    )


async def _detail_ctx(view: providers.IntegrationView, **extra: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "integration": view,
        "spec": view.spec,
        "urls": await providers.callback_urls_of(view),
        "waiting": await providers.messages_waiting(view.key),
        "form": {"name": view.name, "rate_limit": view.rate_limit or "", **view.settings},
        "errors": {},
        "shown_once": {},
        "just_created": False,
        "saved": False,
    }
    ctx.update(extra)
    return ctx
