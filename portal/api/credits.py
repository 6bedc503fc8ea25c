"""/api/v1/credits: transfers (allocate down, reclaim up; Idempotency-Key) and the ledger."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from msgspec import Struct

from portal.api.schemas import (
    Id,
    IdempotencyKey,
    Limit,
    Offset,
    QueryId,
    QueryLine,
    documented,
)
from portal.auth import current_grants, request_actor
from tenants.accounts import tree as accounts
from tenants.credits import ledger, pricing, transfers
from tenants.errors import ValidationFailed


class TransferOut(Struct):
    id: int
    from_account_id: int
    to_account_id: int
    amount: int
    kind: str
    created_at: str


class TransferCreate(Struct):
    to_account_id: Id
    amount: int
    from_account_id: Id | None = None


class LedgerRowOut(Struct):
    id: int
    account_id: int
    delta: int
    kind: str
    balance_after: int
    created_at: str
    reference: str
    counterparty_id: int | None
    who: str


class PricesOut(Struct):
    channel: str
    prices: dict[str, int]


def transfer_json(t: ledger.TransferView) -> TransferOut:
    return TransferOut(
        id=t.id,
        from_account_id=t.from_account_id,
        to_account_id=t.to_account_id,
        amount=t.amount,
        kind=t.kind,
        created_at=t.created_at.isoformat(),
    )


def ledger_json(r: ledger.LedgerRow) -> LedgerRowOut:
    return LedgerRowOut(
        id=r.id,
        account_id=r.account_id,
        delta=r.delta,
        kind=r.kind,
        balance_after=r.balance_after,
        created_at=r.created_at.isoformat(),
        reference=r.reference,
        counterparty_id=r.counterparty_id,
        who=r.who,
    )


class CreditsApi(Controller):
    path = "/credits"

    @post(
        "/transfers",
        opt={"permission": "credits.allocate"},
        status_code=201,
        **documented(404, 409),
    )
    async def create_transfer(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TransferCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TransferOut]:
        if idempotency_key is not None and not idempotency_key.strip():
            raise ValidationFailed({"Idempotency-Key": "Must not be empty when sent."})
        transfer, created = await transfers.transfer(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            from_account_id=data.from_account_id,
            to_account_id=data.to_account_id,
            amount=data.amount,
            idempotency_key=idempotency_key,
        )
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(content=transfer_json(transfer), status_code=201, headers=headers)

    @get("/ledger", opt={"permission": "credits.view"}, **documented(404))
    async def ledger(
        self,
        request: Request[Any, Any, Any],
        account_id: QueryId = None,
        kind: QueryLine = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[LedgerRowOut]:
        root = current_grants(request).account
        target = await accounts.get_in_subtree(root.id, account_id) if account_id else root
        rows, _ = await ledger.ledger(target.id, kind=kind or None, limit=limit, offset=offset)
        return [ledger_json(r) for r in rows]

    @get("/prices", opt={"permission": "credits.view"}, **documented())
    async def prices(self, request: Request[Any, Any, Any], channel: QueryLine = None) -> PricesOut:
        account = current_grants(request).account
        wanted = channel or "sms"
        return PricesOut(channel=wanted, prices=await pricing.prices_for(account.id, wanted))
