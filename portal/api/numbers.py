"""/api/v1/numbers, /api/v1/senders and /api/v1/sender-ids."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from portal.api.accounts import _body, _opt_int, _opt_str
from portal.auth import current_grants, request_actor
from tenants.errors import ValidationFailed
from tenants.numbers import numbers


def number_json(n: numbers.NumberView) -> dict[str, Any]:
    return {
        "id": n.id,
        "number": n.number,
        "kind": n.kind,
        "label": n.label,
        "owner_id": n.owner_id,
        "account_id": n.holder_id,
        "assigned": n.assigned_id is not None,
    }


def sender_id_json(s: numbers.SenderIdView) -> dict[str, Any]:
    return {
        "id": s.id,
        "account_id": s.account_id,
        "value": s.value,
        "kind": s.kind,
        "status": s.status,
        "note": s.note,
    }


class NumbersApi(Controller):
    @get("/numbers", opt={"permission": "account.view"})
    async def list_numbers(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        """Numbers the key's account holds, uses through an ancestor, or owns."""
        account = current_grants(request).account
        return [number_json(n) for n in await numbers.numbers_for(account.id)]

    @get("/senders", opt={"permission": "account.view"})
    async def list_senders(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        """What the key's account may put in a message's `sender`."""
        account = current_grants(request).account
        return [
            {"kind": s.kind, "value": s.value, "label": s.label, "receives_replies": s.is_number}
            for s in await numbers.usable_senders(account.id)
        ]

    @post("/numbers/{number_id:int}/assign", opt={"permission": "numbers.manage"})
    async def assign(
        self, request: Request[Any, Any, Any], number_id: int, data: Any
    ) -> dict[str, Any]:
        body = _body(data)
        to_id = _opt_int(body, "account_id")
        if to_id is None:
            raise ValidationFailed({"account_id": "Required: the account to hand the number to."})
        changed = await numbers.assign_number(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            number_id=number_id,
            to_account_id=to_id,
        )
        return number_json(changed)

    @get("/sender-ids", opt={"permission": "numbers.manage"})
    async def list_sender_ids(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        account = current_grants(request).account
        return [sender_id_json(s) for s in await numbers.sender_ids_in_subtree(account.id)]

    @post("/sender-ids", opt={"permission": "numbers.manage"}, status_code=201)
    async def register_sender_id(
        self, request: Request[Any, Any, Any], data: Any
    ) -> dict[str, Any]:
        body = _body(data)
        account = current_grants(request).account
        target = _opt_int(body, "account_id")
        created = await numbers.register_sender_id(
            actor=request_actor(request),
            within_account_id=account.id,
            account_id=target if target is not None else account.id,
            value=_opt_str(body, "value") or "",
        )
        return sender_id_json(created)
