"""Credits ledger: the debit/credit primitives, the append-only ledger rows that explain
every balance change, operator adjustments and the ledger queries.

The balance column on `Account` is a cache of the ledger that can never go negative: every
debit is one conditional UPDATE (`... WHERE balance >= n RETURNING balance`) and the
ledger row that explains it is written in the same transaction, so the balance always
equals the sum of the account's ledger rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.query.functions.aggregate import Count, Sum

from tenants import clock
from tenants.accounts.tables import Account
from tenants.accounts.tree import get_account
from tenants.audit import record as audit
from tenants.credits.tables import (
    CreditTransfer,
    LedgerEntry,
)
from tenants.db import first_or_404, transaction, view_of
from tenants.errors import InsufficientCredits, NotFound, ValidationFailed

KINDS = ("purchase", "adjustment", "allocate", "reclaim", "top_up", "spend", "refund")


TRANSFER_KINDS = ("allocate", "reclaim", "top_up")


MAX_AMOUNT = 100_000_000


@dataclass(frozen=True)
class LedgerRow:
    id: int
    account_id: int
    delta: int
    balance_after: int
    kind: str
    counterparty_id: int | None
    counterparty_name: str
    spender_id: int | None
    reference: str
    idempotency_key: str
    who: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class TransferView:
    id: int
    kind: str
    from_account_id: int
    to_account_id: int
    amount: int
    created_at: datetime


def check_amount(amount: Any, field: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationFailed({field: "Enter a whole number of credits."})
    if amount <= 0:
        raise ValidationFailed({field: "The amount must be at least 1 credit."})
    if amount > MAX_AMOUNT:
        raise ValidationFailed({field: f"The amount must be at most {MAX_AMOUNT:,} credits."})
    return amount


def check_key(key: str | None) -> str:
    key = (key or "").strip()
    if not key:
        return uuid.uuid4().hex
    if len(key) > 200:
        raise ValidationFailed({"idempotency_key": "At most 200 characters."})
    return key


async def credit(account_id: int, amount: int) -> int:
    rows = (
        await Account.update({Account.balance: Account.balance + amount})
        .where(Account.id == account_id)
        .returning(Account.balance)
    )
    if not rows:
        raise NotFound(f"account {account_id} not found")
    return int(rows[0]["balance"])


async def debit(account_id: int, amount: int) -> int | None:
    """The one conditional statement that spends: the new balance, or None if refused."""
    rows = (
        await Account.update({Account.balance: Account.balance - amount})
        .where((Account.id == account_id) & (Account.balance >= amount))
        .returning(Account.balance)
    )
    return int(rows[0]["balance"]) if rows else None


async def write_entry(
    account_id: int,
    delta: int,
    balance_after: int,
    kind: str,
    *,
    key: str,
    actor: audit.Actor,
    counterparty_id: int | None = None,
    spender_id: int | None = None,
    reference: str = "",
    transfer_id: int | None = None,
    order_id: int | None = None,
    note: str = "",
) -> int:
    rows = await LedgerEntry.insert(
        LedgerEntry(
            account_id=account_id,
            delta=delta,
            balance_after=balance_after,
            kind=kind,
            counterparty_id=counterparty_id,
            spender_id=spender_id,
            reference=reference[:200],
            idempotency_key=key,
            unique_key=f"{account_id}|{spender_id or ''}|{key}",
            transfer_id=transfer_id,
            order_id=order_id,
            note=note,
            actor_user_id=actor.user_id,
            actor_api_key_id=actor.api_key_id,
            actor_label=actor.label,
        )
    ).returning(LedgerEntry.id)
    return int(rows[0]["id"])


async def account_row(account_id: int) -> dict[str, Any]:
    row = await first_or_404(
        Account.select(
            Account.id, Account.name, Account.path, Account.parent, Account.balance
        ).where(Account.id == account_id),
        f"account {account_id} not found",
    )
    return row


async def balance(account_id: int) -> int:
    """The account's own wallet balance (0 for an account on a shared wallet)."""
    return int((await account_row(account_id))["balance"])


async def ledger_sum(account_id: int) -> int:
    """Σ of the account's ledger rows; equals `balance` (the invariant tests check)."""
    row = await LedgerEntry.select(Sum(LedgerEntry.delta, alias="total")).where(
        LedgerEntry.account_id == account_id
    )
    return int(row[0]["total"] or 0) if row else 0


def transfer_view(row: dict[str, Any]) -> TransferView:
    return view_of(
        TransferView,
        row,
    )


async def _insert_transfer(
    *,
    kind: str,
    from_id: int,
    to_id: int,
    amount: int,
    initiator_id: int,
    key: str,
    fingerprint: str,
    reference: str,
    actor: audit.Actor,
    created_at: datetime | None = None,
) -> int:
    rows = await CreditTransfer.insert(
        CreditTransfer(
            created_at=created_at or clock.now(),
            kind=kind,
            from_account_id=from_id,
            to_account_id=to_id,
            amount=amount,
            initiator_account_id=initiator_id,
            idempotency_key=key,
            unique_key=f"{initiator_id}|{key}",
            fingerprint=fingerprint,
            reference=reference[:200],
            actor_label=actor.label,
        )
    ).returning(CreditTransfer.id)
    return int(rows[0]["id"])


@dataclass(frozen=True)
class BookedTransfer:
    """What booking a move wrote: its transfer row, the source's ledger row and the
    target's balance after the credit."""

    transfer_id: int
    out_entry_id: int
    target_balance: int


async def book_transfer(
    *,
    kind: str,
    source_id: int,
    source_balance: int,
    target_id: int,
    amount: int,
    initiator_id: int,
    key: str,
    fingerprint: str,
    reference: str,
    actor: audit.Actor,
    created_at: datetime | None = None,
) -> BookedTransfer:
    """Record a move whose debit of the source already succeeded (leaving it at
    `source_balance`): the transfer row, the source's ledger row, the credit to the target
    and the target's ledger row, in that order and in the caller's transaction."""
    transfer_id = await _insert_transfer(
        created_at=created_at,
        kind=kind,
        from_id=source_id,
        to_id=target_id,
        amount=amount,
        initiator_id=initiator_id,
        key=key,
        fingerprint=fingerprint,
        reference=reference,
        actor=actor,
    )
    out_id = await write_entry(
        source_id,
        -amount,
        source_balance,
        kind,
        key=f"transfer-{transfer_id}-out",
        actor=actor,
        counterparty_id=target_id,
        transfer_id=transfer_id,
        reference=reference,
    )
    target_balance = await credit(target_id, amount)
    await write_entry(
        target_id,
        amount,
        target_balance,
        kind,
        key=f"transfer-{transfer_id}-in",
        actor=actor,
        counterparty_id=source_id,
        transfer_id=transfer_id,
        reference=reference,
    )
    return BookedTransfer(
        transfer_id=transfer_id, out_entry_id=out_id, target_balance=target_balance
    )


async def adjust(
    account_id: int,
    amount: int,
    *,
    reason: str,
    actor: audit.Actor,
    idempotency_key: str | None = None,
) -> int:
    """Operator correction: add (or, negative, remove) credits with a stated reason."""
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Say why the balance is adjusted."
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        errors["amount"] = "Enter a non-zero whole number of credits."
    elif abs(amount) > MAX_AMOUNT:
        errors["amount"] = f"At most {MAX_AMOUNT:,} credits."
    if errors:
        raise ValidationFailed(errors)
    key = check_key(idempotency_key)
    async with transaction():
        existing = (
            await LedgerEntry.select(LedgerEntry.id)
            .where(LedgerEntry.unique_key == f"{account_id}||{key}")
            .first()
        )
        if existing:
            return int(existing["id"])
        await get_account(account_id)
        if amount > 0:
            after = await credit(account_id, amount)
        else:
            debited = await debit(account_id, -amount)
            if debited is None:
                raise InsufficientCredits(
                    f"The account holds {await balance(account_id):,} credits, "
                    f"fewer than {-amount:,}."
                )
            after = debited
        entry_id = await write_entry(
            account_id, amount, after, "adjustment", key=key, actor=actor, note=reason
        )
        await audit.record(
            actor,
            account_id=account_id,
            action="credits.adjust",
            target_type="credit_ledger",
            target_id=entry_id,
            before={"balance": after - amount},
            after={"balance": after, "reason": reason},
        )
        return entry_id


async def _names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await Account.select(Account.id, Account.name).where(Account.id.is_in(list(ids)))
    return {r["id"]: r["name"] for r in rows}


async def ledger(
    account_id: int,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LedgerRow], int]:
    """The account's ledger rows, newest first, filtered; returns (page, total matching)."""
    if kind is not None and kind not in KINDS:
        raise ValidationFailed({"kind": f"Kind must be one of: {', '.join(KINDS)}."})
    conditions: Any = LedgerEntry.account_id == account_id
    if kind:
        conditions &= LedgerEntry.kind == kind
    if since is not None:
        conditions &= LedgerEntry.created_at >= since
    if until is not None:
        conditions &= LedgerEntry.created_at < until
    total_rows = await LedgerEntry.select(Count(LedgerEntry.id, alias="n")).where(conditions)
    total = int(total_rows[0]["n"]) if total_rows else 0
    rows = (
        await LedgerEntry.select()
        .where(conditions)
        .order_by(LedgerEntry.id, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    names = await _names({r["counterparty_id"] for r in rows if r["counterparty_id"]})
    return [
        LedgerRow(
            id=r["id"],
            account_id=r["account_id"],
            delta=r["delta"],
            balance_after=r["balance_after"],
            kind=r["kind"],
            counterparty_id=r["counterparty_id"],
            counterparty_name=names.get(r["counterparty_id"], "") if r["counterparty_id"] else "",
            spender_id=r["spender_id"],
            reference=r["reference"],
            idempotency_key=r["idempotency_key"],
            who=r["actor_label"],
            note=r["note"],
            created_at=r["created_at"],
        )
        for r in rows
    ], total
