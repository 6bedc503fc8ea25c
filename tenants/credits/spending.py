"""Spending: reserve credits for a send, refund them, and count the month's spend against
the monthly cap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from piccolo.query import WhereRaw

from tenants import clock
from tenants.accounts.tree import timezones, zone_named
from tenants.audit import record as audit
from tenants.credits.ledger import (
    balance,
    check_amount,
    check_key,
    credit,
    debit,
    write_entry,
)
from tenants.credits.tables import (
    LedgerEntry,
    MonthlySpend,
    Reservation,
)
from tenants.credits.wallets import after_debit, paying_wallet
from tenants.db import DB, is_unique_violation, transaction
from tenants.errors import Conflict, InsufficientCredits


async def current_month(account_id: int) -> str:
    """This calendar month ("YYYY-MM") where the account is: its own time zone decides when
    a month starts, for the monthly cap and the month's figures."""
    zone = (await timezones([account_id])).get(account_id) or zone_named(None)
    return clock.now().astimezone(zone).strftime("%Y-%m")


async def month_spend(account_id: int, month: str | None = None) -> int:
    """Credits the account spent in `month` (default: its current month, in its zone)."""
    month = month or await current_month(account_id)
    row = (
        await MonthlySpend.select(MonthlySpend.spent)
        .where(MonthlySpend.unique_key == f"{account_id}|{month}")
        .first()
    )
    return int(row["spent"]) if row else 0


async def _count_month_spend(account_id: int, amount: int, cap: int | None, month: str) -> bool:
    """Add to the month's spend in one conditional statement; False if the cap forbids it."""
    key = f"{account_id}|{month}"
    await MonthlySpend.insert(
        MonthlySpend(unique_key=key, account_id=account_id, month=month, spent=0)
    ).on_conflict(target=MonthlySpend.unique_key, action="DO NOTHING")
    query = MonthlySpend.update({MonthlySpend.spent: MonthlySpend.spent + amount}).where(
        MonthlySpend.unique_key == key
    )
    if cap is not None:
        query = query.where(MonthlySpend.spent <= cap - amount)
    return bool(await query.returning(MonthlySpend.id))


async def _uncount_month_spend(account_id: int, amount: int, month: str) -> None:
    await MonthlySpend.update({MonthlySpend.spent: MonthlySpend.spent - amount}).where(
        (MonthlySpend.unique_key == f"{account_id}|{month}") & (MonthlySpend.spent >= amount)
    )


async def reserve(
    account_id: int,
    amount: int,
    *,
    reference: str,
    idempotency_key: str,
    actor: audit.Actor | None = None,
) -> int:
    """Charge a send: debit `amount` from the wallet that pays for `account_id` and write a
    `spend` row; returns the row id. Raises InsufficientCredits (or Conflict with code
    `monthly_cap_reached`) and writes nothing when it cannot be paid. A replay with the same
    idempotency key returns the first row id without charging again. Nests inside the
    caller's transaction (the one that writes the messages)."""
    check_amount(amount)
    key = check_key(idempotency_key)
    entry_id = await _once(
        account_id,
        "spend",
        key,
        lambda: _reserve(account_id, amount, reference, key, actor or audit.SYSTEM),
    )
    if entry_id is None:  # _reserve always returns an id or raises
        raise RuntimeError("reserve wrote no ledger row")
    return entry_id


async def _replay_id(account_id: int, kind: str, key: str) -> int | None:
    row = (
        await LedgerEntry.select(LedgerEntry.id)
        .where(
            (LedgerEntry.spender_id == account_id)
            & (LedgerEntry.kind == kind)
            & (LedgerEntry.idempotency_key == key)
        )
        .first()
    )
    return int(row["id"]) if row else None


async def _once(
    account_id: int, kind: str, key: str, write: Callable[[], Awaitable[int | None]]
) -> int | None:
    """Run a keyed spend/refund once: a replay returns the first row id. Two requests with
    one key racing each other meet at the unique index; the loser answers with the
    winner's row when it owns its transaction, else asks its caller to retry."""
    owns_transaction = DB.current_transaction.get() is None
    try:
        async with transaction():
            existing = await _replay_id(account_id, kind, key)
            if existing is not None:
                return existing
            return await write()
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        if owns_transaction:
            existing = await _replay_id(account_id, kind, key)
            if existing is not None:
                return existing
        raise Conflict(
            "The same request is being processed; retry it.", code="idempotency_in_progress"
        ) from exc


async def _reserve(account_id: int, amount: int, reference: str, key: str, who: audit.Actor) -> int:
    payer = await paying_wallet(account_id)
    wallet_id = payer.wallet_id
    month = await current_month(account_id)
    if not await _count_month_spend(account_id, amount, payer.own.monthly_cap, month):
        raise Conflict(
            f"This send of {amount:,} credits would pass the monthly cap of "
            f"{payer.own.monthly_cap:,} credits ({await month_spend(account_id, month):,} "
            "spent this month).",
            code="monthly_cap_reached",
        )
    after = await debit(wallet_id, amount)
    if after is None:
        # The caller may catch this and carry on in its transaction: undo the count.
        await _uncount_month_spend(account_id, amount, month)
        have = await balance(wallet_id)
        raise InsufficientCredits(
            f"This send costs {amount:,} credits but only {have:,} are available."
        )
    entry_id = await write_entry(
        wallet_id,
        -amount,
        after,
        "spend",
        key=key,
        actor=who,
        spender_id=account_id,
        counterparty_id=account_id if wallet_id != account_id else None,
        reference=reference,
    )
    await Reservation.insert(
        Reservation(
            ledger_entry_id=entry_id,
            account_id=account_id,
            wallet_id=wallet_id,
            reference=reference[:200],
            amount=amount,
            refunded=0,
            month=month,
        )
    )
    await after_debit(wallet_id, after + amount, after, trigger_id=entry_id, settings=payer.paying)
    return entry_id


async def refund(
    account_id: int, amount: int, *, reference: str, idempotency_key: str
) -> int | None:
    """Give back credits of a send reserved with the same `reference` to the wallet that
    paid it (a `refund` row); returns the row id. Refunds of a reference never exceed what
    was reserved under it: returns None and writes nothing when nothing is left to refund.
    Idempotent by key; nests inside the caller's transaction."""
    check_amount(amount)
    key = check_key(idempotency_key)
    return await _once(
        account_id, "refund", key, lambda: _refund(account_id, amount, reference, key)
    )


async def _refund(account_id: int, amount: int, reference: str, key: str) -> int | None:
    pieces = await _take_refund(account_id, amount, reference)
    if not pieces:
        return None
    entry_ids = []
    by_wallet: dict[int, int] = {}
    for piece in pieces:
        by_wallet[piece["wallet_id"]] = by_wallet.get(piece["wallet_id"], 0) + piece["take"]
        await _uncount_month_spend(account_id, piece["take"], piece["month"])
    for n, (wallet_id, back) in enumerate(sorted(by_wallet.items())):
        after = await credit(wallet_id, back)
        entry_ids.append(
            await write_entry(
                wallet_id,
                back,
                after,
                "refund",
                # One entry per paying wallet (a reference is paid from one wallet unless
                # the payer changed between a streamed campaign's chunks).
                key=key if n == 0 else f"{key}#{n}",
                actor=audit.SYSTEM,
                spender_id=account_id,
                counterparty_id=account_id if wallet_id != account_id else None,
                reference=reference,
            )
        )
    return entry_ids[0]


async def _take_refund(account_id: int, amount: int, reference: str) -> list[dict[str, Any]]:
    """Mark `amount` refunded on the reservations of `reference`, oldest first, splitting it
    across them when no single one has room (a streamed campaign reserves per chunk under
    one reference); each piece is one conditional statement, so concurrent refunds cannot
    over-refund. Returns the pieces taken, or [] (nothing marked) when the reservations of
    the reference have less than `amount` left."""
    candidates = (
        await Reservation.select(Reservation.id, Reservation.amount, Reservation.refunded)
        .where((Reservation.account_id == account_id) & (Reservation.reference == reference))
        .order_by(Reservation.id)
    )
    pieces: list[dict[str, Any]] = []
    remaining = amount
    for candidate in candidates:
        take = min(remaining, int(candidate["amount"]) - int(candidate["refunded"]))
        if take <= 0:
            continue
        rows = (
            await Reservation.update({Reservation.refunded: Reservation.refunded + take})
            .where((Reservation.id == candidate["id"]) & WhereRaw("refunded + {} <= amount", take))
            .returning(Reservation.id, Reservation.wallet_id, Reservation.month)
        )
        if rows:
            pieces.append(rows[0] | {"take": take})
            remaining -= take
            if remaining == 0:
                return pieces
    for piece in pieces:  # not enough left: give back what was marked
        await Reservation.update(
            {Reservation.refunded: Reservation.refunded - piece["take"]}
        ).where(Reservation.id == piece["id"])
    return []
