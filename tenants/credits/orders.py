"""Orders: buying credits through a payment gateway (the port), and the operator's approval
or rejection of pending orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tenants import clock
from tenants.accounts.tree import get_account
from tenants.audit import record as audit
from tenants.credits.ledger import check_amount, credit, write_entry
from tenants.credits.tables import (
    PurchaseOrder,
)
from tenants.credits.wallets import wallet_of
from tenants.db import first_or_404, transaction, view_of
from tenants.errors import Conflict, ValidationFailed

ORDER_STATUSES = ("pending", "approved", "rejected")


@dataclass(frozen=True)
class OrderView:
    id: int
    account_id: int
    amount: int
    gateway: str
    status: str
    reference: str
    requested_by: str
    decided_by: str
    decision_note: str
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class GatewayResult:
    """What a gateway says about a new order: paid now, or waiting (e.g. an invoice)."""

    paid: bool
    reference: str = ""


class PaymentGateway(Protocol):
    name: str
    label: str

    async def start(self, order: OrderView) -> GatewayResult: ...


class InvoiceGateway:
    """Bank transfer against an invoice: the order waits until the operator approves it."""

    name = "invoice"
    label = "Invoice (pay by bank transfer; the platform approves on receipt)"

    async def start(self, order: OrderView) -> GatewayResult:
        return GatewayResult(paid=False, reference=f"INV-{order.id:06d}")


GATEWAYS: dict[str, PaymentGateway] = {"invoice": InvoiceGateway()}


def _order_view(row: dict[str, Any]) -> OrderView:
    return view_of(
        OrderView,
        row,
    )


async def get_order(order_id: int) -> OrderView:
    row = await first_or_404(
        PurchaseOrder.select().where(PurchaseOrder.id == order_id), f"order {order_id} not found"
    )
    return _order_view(row)


async def purchase(
    account_id: int, amount: int, *, actor: audit.Actor, gateway: str = "invoice"
) -> OrderView:
    """Start buying credits through a gateway. A gateway that is paid at once writes the
    purchase now; the invoice gateway leaves a pending order for the operator."""
    amount = check_amount(amount)
    if gateway not in GATEWAYS:
        raise ValidationFailed({"gateway": "Choose a payment method."})
    async with transaction():
        account = await get_account(account_id)
        if account.kind == "platform":
            raise ValidationFailed({"account_id": "The platform account does not buy credits."})
        if await wallet_of(account_id) != account_id:
            raise Conflict(
                f"{account.name} draws from a shared wallet; credits are bought by the "
                "account that holds it.",
                code="shared_wallet",
            )
        rows = await PurchaseOrder.insert(
            PurchaseOrder(
                account_id=account_id, amount=amount, gateway=gateway, requested_by=actor.label
            )
        ).returning(PurchaseOrder.id)
        order = await get_order(rows[0]["id"])
        result = await GATEWAYS[gateway].start(order)
        await PurchaseOrder.update({PurchaseOrder.reference: result.reference}).where(
            PurchaseOrder.id == order.id
        )
        await audit.record(
            actor,
            account_id=account_id,
            action="credits.order",
            target_type="credit_order",
            target_id=order.id,
            after={"amount": amount, "gateway": gateway, "reference": result.reference},
        )
        if result.paid:
            return await approve_order(order.id, actor=actor)
        return await get_order(order.id)


async def _decide(
    order_id: int, status: str, *, actor: audit.Actor, note: str
) -> list[dict[str, Any]]:
    """Move the order from pending to `status`; its account, amount and reference, or no
    row when it was not pending any more."""
    rows: list[dict[str, Any]] = (
        await PurchaseOrder.update(
            {
                PurchaseOrder.status: status,
                PurchaseOrder.decided_by: actor.label,
                PurchaseOrder.decided_at: clock.now(),
                PurchaseOrder.decision_note: note,
            }
        )
        .where((PurchaseOrder.id == order_id) & (PurchaseOrder.status == "pending"))
        .returning(PurchaseOrder.account_id, PurchaseOrder.amount, PurchaseOrder.reference)
    )
    return rows


async def approve_order(order_id: int, *, actor: audit.Actor, note: str = "") -> OrderView:
    """Mark a pending order paid and write its purchase row (once, whatever the retries)."""
    async with transaction():
        rows = await _decide(order_id, "approved", actor=actor, note=note)
        if not rows:
            order = await get_order(order_id)
            if order.status == "approved":
                return order
            raise Conflict(f"Order #{order_id} was already {order.status}.", code="order_decided")
        account_id, amount = rows[0]["account_id"], rows[0]["amount"]
        after = await credit(account_id, amount)
        entry_id = await write_entry(
            account_id,
            amount,
            after,
            "purchase",
            key=f"order-{order_id}",
            actor=actor,
            order_id=order_id,
            reference=rows[0]["reference"] or f"order #{order_id}",
            note=note,
        )
        await PurchaseOrder.update({PurchaseOrder.ledger_entry_id: entry_id}).where(
            PurchaseOrder.id == order_id
        )
        await audit.record(
            actor,
            account_id=account_id,
            action="credits.order_approve",
            target_type="credit_order",
            target_id=order_id,
            before={"status": "pending", "balance": after - amount},
            after={"status": "approved", "balance": after},
        )
        return await get_order(order_id)


async def reject_order(order_id: int, *, actor: audit.Actor, note: str = "") -> OrderView:
    async with transaction():
        rows = await _decide(order_id, "rejected", actor=actor, note=note)
        if not rows:
            order = await get_order(order_id)
            raise Conflict(f"Order #{order_id} was already {order.status}.", code="order_decided")
        await audit.record(
            actor,
            account_id=rows[0]["account_id"],
            action="credits.order_reject",
            target_type="credit_order",
            target_id=order_id,
            before={"status": "pending"},
            after={"status": "rejected", "note": note},
        )
        return await get_order(order_id)


async def orders(
    *, account_id: int | None = None, status: str | None = None, limit: int = 100
) -> list[OrderView]:
    query = PurchaseOrder.select().order_by(PurchaseOrder.id, ascending=False).limit(limit)
    if account_id is not None:
        query = query.where(PurchaseOrder.account_id == account_id)
    if status:
        query = query.where(PurchaseOrder.status == status)
    return [_order_view(r) for r in await query]
