"""/numbers: the operator adds numbers to masters and reviews sender IDs; masters assign
numbers down their tree and take them back; accounts register sender IDs."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, form_id, parse_id
from portal.pages import render
from tenants.accounts import tree as accounts
from tenants.accounts.tree import AccountView
from tenants.errors import Conflict, ValidationFailed
from tenants.numbers import numbers

TEMPLATE = "numbers.html.jinja"


async def _assignable(account: AccountView, rows: list[numbers.NumberView]) -> dict[int, list]:
    """Per owner: the accounts its numbers may be handed to (owner's subtree)."""
    out: dict[int, list[AccountView]] = {}
    for number in rows:
        if number.owner_id not in out and numbers.may_manage_number(number, account):
            out[number.owner_id] = await accounts.subtree(number.owner_id)
    return out


async def _context(request: HTMXRequest, **extra: Any) -> dict[str, Any]:
    grants = current_grants(request)
    account = grants.account
    rows = await numbers.numbers_for(account.id)
    operator = grants.decide("platform.operate").allowed
    ctx: dict[str, Any] = {
        "numbers": rows,
        "manageable": {n.id for n in rows if numbers.may_manage_number(n, account)},
        "assignable": await _assignable(account, rows),
        "sender_ids": await numbers.sender_ids_in_subtree(account.id),
        "subtree": await accounts.subtree(account.id) if account.kind != "platform" else [],
        "is_operator": operator,
        "masters": await accounts.root_accounts(kind="master") if operator else [],
        "pending": await numbers.sender_ids_with_status("pending") if operator else [],
        "kinds": numbers.NUMBER_KINDS,
        "number_form": {"kind": "long_code"},
        "number_errors": {},
        "sender_form": {"account_id": str(account.id)},
        "sender_errors": {},
    }
    ctx.update(extra)
    return ctx


class NumbersController(Controller):
    path = "/numbers"

    @get("/", opt={"permission": "numbers.manage"}, name="numbers")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(request, TEMPLATE, await _context(request))

    @post("/", opt={"permission": "platform.operate"})
    async def add(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        form = {k: (data.get(k) or "").strip() for k in ("number", "kind", "owner_id", "label")}
        try:
            if parse_id(form["owner_id"]) is None:
                errors = {"owner_id": "Choose a master account."}
                try:
                    numbers.normalize_number(form["number"], form["kind"])
                except ValidationFailed as exc:
                    errors = exc.errors | errors
                raise ValidationFailed(errors)
            added = await numbers.add_number(
                actor=request_actor(request),
                owner_account_id=form_id(form["owner_id"], "owner_id", "Choose a master account."),
                number=form["number"],
                kind=form["kind"],
                label=form["label"],
            )
        except ValidationFailed as exc:
            ctx = await _context(request, number_form=form, number_errors=exc.errors)
            # The form posts into the numbers table; its errors belong in the form itself.
            return await render(
                request,
                TEMPLATE,
                ctx,
                block="add_number",
                status_code=422,
                headers={"HX-Retarget": "#add-number-form", "HX-Reswap": "outerHTML"},
            )
        if not request.htmx:
            return Redirect(path="/numbers", status_code=303)
        ctx = await _context(request, added=added)
        return await render(request, TEMPLATE, ctx, block="numbers_section", status_code=201)

    @post("/{number_id:int}/assign", opt={"permission": "numbers.manage"})
    async def assign(
        self, request: HTMXRequest, number_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        to_id = form_id(data.get("account_id"), "account_id", "Choose an account.")
        changed = await numbers.assign_number(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            number_id=number_id,
            to_account_id=to_id,
        )
        return await self._numbers_changed(request, changed)

    @post("/{number_id:int}/reclaim", opt={"permission": "numbers.manage"})
    async def reclaim(self, request: HTMXRequest, number_id: FromPath[int]) -> Any:
        changed = await numbers.reclaim_number(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            number_id=number_id,
        )
        return await self._numbers_changed(request, changed)

    @post("/{number_id:int}/remove", opt={"permission": "platform.operate"})
    async def remove(self, request: HTMXRequest, number_id: FromPath[int]) -> Any:
        removed = await numbers.get_number(number_id)
        await numbers.remove_number(actor=request_actor(request), number_id=number_id)
        if not request.htmx:
            return Redirect(path="/numbers", status_code=303)
        ctx = await _context(request, removed=removed)
        return await render(request, TEMPLATE, ctx, block="numbers_section")

    async def _numbers_changed(self, request: HTMXRequest, changed: numbers.NumberView) -> Any:
        if not request.htmx:
            return Redirect(path="/numbers", status_code=303)
        ctx = await _context(request, changed=changed)
        return await render(request, TEMPLATE, ctx, block="numbers_section")

    @post("/sender-ids", opt={"permission": "numbers.manage"})
    async def register_sender_id(
        self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]
    ) -> Any:
        account = current_grants(request).account
        form = {k: (data.get(k) or "").strip() for k in ("account_id", "value")}
        try:
            target = form_id(form["account_id"] or account.id, "account_id", "Choose an account.")
            registered = await numbers.register_sender_id(
                actor=request_actor(request),
                within_account_id=account.id,
                account_id=target,
                value=form["value"],
            )
        except ValidationFailed as exc:
            ctx = await _context(request, sender_form=form, sender_errors=exc.errors)
            return await render(request, TEMPLATE, ctx, block="sender_ids_section", status_code=422)
        except Conflict as exc:
            ctx = await _context(request, sender_form=form, sender_errors={"value": exc.message})
            return await render(request, TEMPLATE, ctx, block="sender_ids_section", status_code=409)
        if not request.htmx:
            return Redirect(path="/numbers", status_code=303)
        ctx = await _context(request, registered=registered)
        return await render(request, TEMPLATE, ctx, block="sender_ids_section", status_code=201)

    @post("/sender-ids/{sender_id_id:int}/withdraw", opt={"permission": "numbers.manage"})
    async def withdraw_sender_id(self, request: HTMXRequest, sender_id_id: FromPath[int]) -> Any:
        await numbers.withdraw_sender_id(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            sender_id_id=sender_id_id,
        )
        if not request.htmx:
            return Redirect(path="/numbers", status_code=303)
        return await render(request, TEMPLATE, await _context(request), block="sender_ids_section")

    @post("/sender-ids/{sender_id_id:int}/decide", opt={"permission": "platform.operate"})
    async def decide_sender_id(
        self,
        request: HTMXRequest,
        sender_id_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        status = (data.get("status") or "").strip()
        note = (data.get("note") or "").strip()
        try:
            decided = await numbers.decide_sender_id(
                actor=request_actor(request), sender_id_id=sender_id_id, status=status, note=note
            )
        except ValidationFailed as exc:
            ctx = await _context(
                request, review_errors={sender_id_id: next(iter(exc.errors.values()))}
            )
            return await render(request, TEMPLATE, ctx, block="review_section", status_code=422)
        if not request.htmx:
            return Redirect(path="/numbers", status_code=303)
        ctx = await _context(request, decided=decided)
        return await render(request, TEMPLATE, ctx, block="review_section")
