"""/keywords: claim words on numbers for the account or a descendant, and set what each word
does (forwarded inbound messages go to the customer webhooks set on /webhooks)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, form_id, parse_id
from portal.pages import render
from tenants.accounts import tree as accounts
from tenants.errors import Conflict, ValidationFailed
from tenants.numbers import keywords, numbers

TEMPLATE = "keywords.html.jinja"


async def _context(request: HTMXRequest, **extra: Any) -> dict[str, Any]:
    account = current_grants(request).account
    rows = await keywords.keywords_for(account.id)
    ctx: dict[str, Any] = {
        "keywords": rows,
        "lists": await keywords.contact_lists_of(sorted({k.account_id for k in rows})),
        "numbers": await numbers.numbers_for(account.id),
        "subtree": await accounts.subtree(account.id) if account.kind != "platform" else [],
        "action_kinds": keywords.ACTION_KINDS,
        "claim_form": {"account_id": str(account.id)},
        "claim_errors": {},
    }
    ctx.update(extra)
    return ctx


async def _keyword_block(
    request: HTMXRequest, keyword_id: int, *, status_code: int = 200, **extra: Any
) -> Any:
    account = current_grants(request).account
    kw = await keywords.get_owned_keyword(account.id, keyword_id)
    ctx = {
        "kw": kw,
        "lists": await keywords.contact_lists_of([kw.account_id]),
        "action_kinds": keywords.ACTION_KINDS,
        "action_errors": {},
        "action_form": {},
        **extra,
    }
    return await render(request, TEMPLATE, ctx, block="keyword", status_code=status_code)


class KeywordsController(Controller):
    path = "/keywords"

    @get("/", opt={"permission": "keywords.manage"}, name="keywords")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, TEMPLATE, await _context(request))

    @post("/", opt={"permission": "keywords.manage"})
    async def claim(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        form = {k: (data.get(k) or "").strip() for k in ("number_id", "word", "account_id")}
        errors: dict[str, str] = {}
        conflict = None
        claimed = None
        number_id = parse_id(form["number_id"])
        if number_id is None:
            errors["number_id"] = "Choose a number."
        owner_id = parse_id(form["account_id"] or account.id)
        if owner_id is None:
            errors["account_id"] = "Choose an account."
        if number_id is not None and owner_id is not None:
            try:
                claimed = await keywords.claim_keyword(
                    actor=request_actor(request),
                    within_account_id=account.id,
                    number_id=number_id,
                    word=form["word"],
                    account_id=owner_id,
                )
            except ValidationFailed as exc:
                errors = exc.errors
            except Conflict as exc:
                conflict = exc
        if errors or conflict:
            ctx = await _context(
                request,
                claim_form=form,
                claim_errors=errors,
                conflict=conflict.message if conflict else None,
            )
            status = 409 if conflict else 422
            return await render(request, TEMPLATE, ctx, block="claim_form", status_code=status)
        if not request.htmx:
            return Redirect(path="/keywords", status_code=303)
        ctx = await _context(request, claimed=claimed)
        return await render(
            request,
            TEMPLATE,
            ctx,
            block="claim_form",
            status_code=201,
            headers={"HX-Trigger": "keywords-changed"},
        )

    @post("/{keyword_id:int}/release", opt={"permission": "keywords.manage"})
    async def release(self, request: HTMXRequest, keyword_id: FromPath[int]) -> Any:
        await keywords.release_keyword(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            keyword_id=keyword_id,
        )
        if not request.htmx:
            return Redirect(path="/keywords", status_code=303)
        return Response(content="", status_code=200, media_type="text/html")

    @post("/{keyword_id:int}/actions", opt={"permission": "keywords.manage"})
    async def add_action(
        self, request: HTMXRequest, keyword_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        form = {k: (data.get(k) or "").strip() for k in ("kind", "reply_text", "list_id")}
        list_id: int | None = None
        try:
            if form["kind"] == "add_to_list":
                list_id = form_id(form["list_id"], "list_id", "Choose a contact list.")
            await keywords.add_action(
                actor=request_actor(request),
                within_account_id=current_grants(request).account.id,
                keyword_id=keyword_id,
                kind=form["kind"],
                reply_text=form["reply_text"],
                list_id=list_id,
            )
        except ValidationFailed as exc:
            return await _keyword_block(
                request, keyword_id, status_code=422, action_errors=exc.errors, action_form=form
            )
        if not request.htmx:
            return Redirect(path="/keywords", status_code=303)
        return await _keyword_block(request, keyword_id, status_code=201)

    @post(
        "/{keyword_id:int}/actions/{action_id:int}/remove",
        opt={"permission": "keywords.manage"},
    )
    async def remove_action(
        self, request: HTMXRequest, keyword_id: FromPath[int], action_id: FromPath[int]
    ) -> Any:
        await keywords.remove_action(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            keyword_id=keyword_id,
            action_id=action_id,
        )
        if not request.htmx:
            return Redirect(path="/keywords", status_code=303)
        return await _keyword_block(request, keyword_id)
