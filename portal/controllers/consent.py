"""Consent pages: account settings (consent_mode with a preview of its effect), the
master's compliance keywords and replies, the opt-out report, and the operator's global
suppression list."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import block_or_redirect, render
from tenants.accounts import tree as accounts
from tenants.consent import keywords as consent_keywords
from tenants.consent import report as consent_report
from tenants.consent import scopes as consent_scopes
from tenants.consent import suppression as consent_suppression
from tenants.errors import PermissionDenied, ValidationFailed


async def _settings_ctx(root_id: int) -> dict[str, Any]:
    tree = await accounts.subtree(root_id)
    scopes = consent_scopes.scope_map((a.id, a.parent_id, a.consent_mode) for a in tree)
    names = {a.id: a.name for a in tree}
    return {
        "tree": tree,
        "scope_names": {a.id: names.get(scopes[a.id], "") for a in tree},
        "root_id": root_id,
        "previews": {},
        "messages": {},
    }


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise ValidationFailed({"since": "Dates are YYYY-MM-DD."}) from None


class ConsentController(Controller):
    @get("/settings", opt={"permission": "settings.manage"}, name="settings")
    async def settings(self, request: HTMXRequest) -> Any:
        root = current_grants(request).account
        return await render(request, "consent_settings.html.jinja", await _settings_ctx(root.id))

    @post("/settings/consent-mode/{account_id:int}", opt={"permission": "settings.manage"})
    async def consent_mode(
        self, request: HTMXRequest, account_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        """`step=preview` shows the effect; `step=save` changes the mode and re-derives."""
        root = current_grants(request).account
        target = await accounts.get_in_subtree(root.id, account_id)
        mode = data.get("consent_mode", "")
        ctx = await _settings_ctx(root.id)
        ctx["node"] = target
        ctx["chosen"] = mode
        status = 200
        try:
            if target.id == root.id:
                raise PermissionDenied("The working account's consent mode is set from above.")
            if data.get("step") == "save":
                updated = await consent_scopes.set_consent_mode(
                    actor=request_actor(request),
                    within_account_id=root.id,
                    account_id=account_id,
                    consent_mode=mode,
                )
                ctx = await _settings_ctx(root.id)
                ctx["node"] = updated
                ctx["messages"] = {account_id: f"Saved: {updated.name} is now {mode}."}
                if not request.htmx:
                    return Redirect(path="/settings", status_code=303)
            else:
                ctx["previews"] = {
                    account_id: await consent_scopes.preview_consent_mode(account_id, mode)
                }
        except ValidationFailed as exc:
            ctx["errors"] = {account_id: exc.errors.get("consent_mode", exc.message)}
            status = 422
        return await render(
            request, "consent_settings.html.jinja", ctx, block="mode_row", status_code=status
        )

    @get("/consent/keywords", opt={"permission": "keywords.manage"})
    async def keywords(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        return await render(request, "consent_keywords.html.jinja", await _keywords_ctx(account))

    @post("/consent/keywords", opt={"permission": "keywords.manage"})
    async def save_keywords(
        self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]
    ) -> Any:
        account = current_grants(request).account
        actor = request_actor(request)
        errors: dict[str, str] = {}
        for kind in consent_keywords.KEYWORD_KINDS:
            try:
                await consent_keywords.set_custom_keywords(
                    actor=actor,
                    account_id=account.id,
                    kind=kind,
                    words=consent_keywords.parse_keyword_words(data.get(f"words_{kind}", "")),
                )
            except ValidationFailed as exc:
                errors[f"words_{kind}"] = next(iter(exc.errors.values()))
            try:
                await consent_keywords.set_confirmation_reply(
                    actor=actor,
                    account_id=account.id,
                    kind=kind,
                    body=data.get(f"reply_{kind}", ""),
                )
            except ValidationFailed as exc:
                errors[f"reply_{kind}"] = next(iter(exc.errors.values()))
        ctx = await _keywords_ctx(account) | {"errors": errors, "saved": not errors}
        if errors:
            ctx["form"] = data
        if not request.htmx and not errors:
            return Redirect(path="/consent/keywords", status_code=303)
        return await render(
            request,
            "consent_keywords.html.jinja",
            ctx,
            block="keywords_form",
            status_code=422 if errors else 200,
        )

    @get("/consent/report", opt={"permission": "contacts.view"})
    async def report(
        self,
        request: HTMXRequest,
        period: FromQuery[str] = "month",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
    ) -> Any:
        grants = current_grants(request)
        account = grants.account
        tree = await accounts.subtree(account.id)
        # Contact ids belong to each account's data: listed only where the caller may read it.
        readable = {account.id}
        if grants.decide("subaccounts.read_data").allowed or grants.is_operator:
            readable |= {a.id for a in tree}
        rows = await consent_report.opt_out_report(
            account.id,
            period=period,
            since=_date(since),
            until=_date(until),
            contact_ids_for=readable,
        )
        return await render(
            request,
            "consent_report.html.jinja",
            {
                "rows": rows,
                "period": period if period in consent_report.PERIODS else "month",
                "since": since,
                "until": until,
                "total": sum(r.opt_outs for r in rows),
                "readable": readable,
            },
            block="report",
        )

    @get("/platform/suppression", opt={"permission": "platform.operate"})
    async def suppression(
        self, request: HTMXRequest, q: FromQuery[str] = "", page: FromQuery[int] = 1
    ) -> Any:
        return await render(request, "suppression.html.jinja", await _suppression_ctx(q, page))

    @post("/platform/suppression", opt={"permission": "platform.operate"})
    async def add_suppression(
        self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]
    ) -> Any:
        try:
            added = await consent_suppression.add_global_suppression(
                actor=request_actor(request),
                phone=data.get("phone", ""),
                reason=data.get("reason", ""),
            )
        except ValidationFailed as exc:
            ctx = await _suppression_ctx("", 1) | {"errors": exc.errors, "form": data}
            return await render(
                request, "suppression.html.jinja", ctx, block="suppression_body", status_code=422
            )
        if not request.htmx:
            return Redirect(path="/platform/suppression", status_code=303)
        ctx = await _suppression_ctx("", 1) | {"added": added}
        return await render(request, "suppression.html.jinja", ctx, block="suppression_body")

    @post(
        "/platform/suppression/{suppression_id:int}/delete", opt={"permission": "platform.operate"}
    )
    async def remove_suppression(self, request: HTMXRequest, suppression_id: FromPath[int]) -> Any:
        await consent_suppression.remove_global_suppression(
            actor=request_actor(request), suppression_id=suppression_id
        )
        return await block_or_redirect(
            request,
            "/platform/suppression",
            "suppression.html.jinja",
            "suppression_body",
            lambda: _suppression_ctx("", 1),
        )


async def _keywords_ctx(account: accounts.AccountView) -> dict[str, Any]:
    return {
        "is_master": account.parent_id is None,
        "defaults": consent_keywords.DEFAULT_KEYWORDS,
        "effective": await consent_keywords.keyword_lists(account.id),
        "custom": await consent_keywords.custom_keywords(account.id),
        "replies": await consent_keywords.confirmation_replies(account.id),
        "errors": {},
        "form": None,
        "saved": False,
    }


async def _suppression_ctx(q: str, page: int) -> dict[str, Any]:
    page = max(page, 1)
    items, total = await consent_suppression.list_global_suppressions(
        search=q, offset=(page - 1) * 50
    )
    return {
        "items": items,
        "total": total,
        "q": q,
        "page": page,
        "errors": {},
        "form": {},
        "added": None,
    }
