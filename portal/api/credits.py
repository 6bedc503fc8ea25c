"""/api/v1/credits: transfers (allocate down, reclaim up; Idempotency-Key) and the ledger."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post

from portal.api.accounts import _body, _opt_int
from portal.auth import current_grants, request_actor
from tenants.accounts import tree as accounts
from tenants.credits import ledger, pricing, transfers
from tenants.errors import ValidationFailed

LEDGER_MAX = 1000


def transfer_json(t: ledger.TransferView) -> dict[str, Any]:
    return {
        "id": t.id,
        "from_account_id": t.from_account_id,
        "to_account_id": t.to_account_id,
        "amount": t.amount,
        "kind": t.kind,
        "created_at": t.created_at.isoformat(),
    }


def ledger_json(r: ledger.LedgerRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "account_id": r.account_id,
        "delta": r.delta,
        "kind": r.kind,
        "balance_after": r.balance_after,
        "created_at": r.created_at.isoformat(),
        "reference": r.reference,
        "counterparty_id": r.counterparty_id,
        "who": r.who,
    }


class CreditsApi(Controller):
    path = "/credits"

    @post("/transfers", opt={"permission": "credits.allocate"}, status_code=201)
    async def create_transfer(self, request: Request[Any, Any, Any], data: Any) -> Response[Any]:
        body = _body(data)
        to_id = _opt_int(body, "to_account_id")
        if to_id is None:
            raise ValidationFailed({"to_account_id": "Required: the account receiving credits."})
        amount = body.get("amount")
        if amount is None:
            raise ValidationFailed({"amount": "Required: a whole number of credits."})
        key = request.headers.get("idempotency-key")
        if key is not None and not key.strip():
            raise ValidationFailed({"Idempotency-Key": "Must not be empty when sent."})
        transfer, created = await transfers.transfer(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            from_account_id=_opt_int(body, "from_account_id"),
            to_account_id=to_id,
            amount=amount,
            idempotency_key=key,
        )
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(content=transfer_json(transfer), status_code=201, headers=headers)

    @get("/ledger", opt={"permission": "credits.view"})
    async def ledger(
        self,
        request: Request[Any, Any, Any],
        account_id: int | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        root = current_grants(request).account
        target = await accounts.get_in_subtree(root.id, account_id) if account_id else root
        if not 1 <= limit <= LEDGER_MAX:
            raise ValidationFailed({"limit": f"Between 1 and {LEDGER_MAX}."})
        if offset < 0:
            raise ValidationFailed({"offset": "Must not be negative."})
        rows, _ = await ledger.ledger(target.id, kind=kind or None, limit=limit, offset=offset)
        return [ledger_json(r) for r in rows]

    @get("/prices", opt={"permission": "credits.view"})
    async def prices(self, request: Request[Any, Any, Any], channel: str = "sms") -> dict[str, Any]:
        account = current_grants(request).account
        return {"channel": channel, "prices": await pricing.prices_for(account.id, channel)}
