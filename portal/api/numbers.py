"""/api/v1/numbers, /api/v1/senders and /api/v1/sender-ids."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from msgspec import Struct

from portal.api.schemas import Id, Line, PathId, documented
from portal.auth import current_grants, request_actor
from tenants.numbers import numbers


class NumberOut(Struct):
    id: int
    number: str
    kind: str
    label: str
    owner_id: int
    account_id: int
    assigned: bool


class SenderOut(Struct):
    kind: str
    value: str
    label: str
    receives_replies: bool


class SenderIdOut(Struct):
    id: int
    account_id: int
    value: str
    kind: str
    status: str
    note: str


class NumberAssign(Struct):
    account_id: Id


class SenderIdCreate(Struct):
    value: Line
    account_id: Id | None = None


def number_json(n: numbers.NumberView) -> NumberOut:
    return NumberOut(
        id=n.id,
        number=n.number,
        kind=n.kind,
        label=n.label,
        owner_id=n.owner_id,
        account_id=n.holder_id,
        assigned=n.assigned_id is not None,
    )


def sender_id_json(s: numbers.SenderIdView) -> SenderIdOut:
    return SenderIdOut(
        id=s.id,
        account_id=s.account_id,
        value=s.value,
        kind=s.kind,
        status=s.status,
        note=s.note,
    )


class NumbersApi(Controller):
    @get("/numbers", opt={"permission": "account.view"}, **documented())
    async def list_numbers(self, request: Request[Any, Any, Any]) -> list[NumberOut]:
        """Numbers the key's account holds, uses through an ancestor, or owns."""
        account = current_grants(request).account
        return [number_json(n) for n in await numbers.numbers_for(account.id)]

    @get("/senders", opt={"permission": "account.view"}, **documented())
    async def list_senders(self, request: Request[Any, Any, Any]) -> list[SenderOut]:
        """What the key's account may put in a message's `sender`."""
        account = current_grants(request).account
        return [
            SenderOut(kind=s.kind, value=s.value, label=s.label, receives_replies=s.is_number)
            for s in await numbers.usable_senders(account.id)
        ]

    @post(
        "/numbers/{number_id:int}/assign",
        opt={"permission": "numbers.manage"},
        status_code=201,
        **documented(404, 409),
    )
    async def assign(
        self, request: Request[Any, Any, Any], number_id: PathId, data: JSONBody[NumberAssign]
    ) -> NumberOut:
        changed = await numbers.assign_number(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            number_id=number_id,
            to_account_id=data.account_id,
        )
        return number_json(changed)

    @get("/sender-ids", opt={"permission": "numbers.manage"}, **documented())
    async def list_sender_ids(self, request: Request[Any, Any, Any]) -> list[SenderIdOut]:
        account = current_grants(request).account
        return [sender_id_json(s) for s in await numbers.sender_ids_in_subtree(account.id)]

    @post(
        "/sender-ids", opt={"permission": "numbers.manage"}, status_code=201, **documented(404, 409)
    )
    async def register_sender_id(
        self, request: Request[Any, Any, Any], data: JSONBody[SenderIdCreate]
    ) -> SenderIdOut:
        account = current_grants(request).account
        created = await numbers.register_sender_id(
            actor=request_actor(request),
            within_account_id=account.id,
            account_id=data.account_id if data.account_id is not None else account.id,
            value=data.value,
        )
        return sender_id_json(created)
