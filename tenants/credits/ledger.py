"""Credits: the append-only ledger, wallets, purchases, transfers down the tree, spending
(reserve/refund for sends), monthly caps, low-balance alerts and the price table.

The balance column on `Account` is a cache of the ledger that can never go negative: every
debit is one conditional UPDATE (`... WHERE balance >= n RETURNING balance`) and the
ledger row that explains it is written in the same transaction, so the balance always
equals the sum of the account's ledger rows.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from piccolo.query import WhereRaw
from piccolo.query.functions.aggregate import Count, Sum

from tenants import clock
from tenants.accounts.tables import Account
from tenants.accounts.tree import AccountView, get_account, get_accounts, get_in_subtree, path_ids
from tenants.audit import record as audit
from tenants.credits.tables import (
    CreditTransfer,
    LedgerEntry,
    MonthlySpend,
    Notice,
    PriceRule,
    PurchaseOrder,
    Reservation,
    WalletSettings,
)
from tenants.db import DB, is_unique_violation, transaction
from tenants.errors import Conflict, InsufficientCredits, NotFound, ValidationFailed

KINDS = ("purchase", "adjustment", "allocate", "reclaim", "top_up", "spend", "refund")
TRANSFER_KINDS = ("allocate", "reclaim", "top_up")
CHANNELS = ("sms", "mms", "rcs", "whatsapp")
DEFAULT_PRICES: dict[str, int] = {"sms": 1, "mms": 3, "rcs": 1, "whatsapp": 2}
MAX_AMOUNT = 100_000_000
MAX_PRICE = 10_000
ORDER_STATUSES = ("pending", "approved", "rejected")


# --------------------------------------------------------------------------- tables


# --------------------------------------------------------------------------- views


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
class WalletSettingsView:
    account_id: int
    shared_wallet: bool = False
    monthly_cap: int | None = None
    low_balance_threshold: int | None = None
    auto_top_up: bool = False
    top_up_amount: int = 0


@dataclass(frozen=True)
class NoticeView:
    id: int
    account_id: int
    subject_account_id: int | None
    kind: str
    message: str
    created_at: datetime


# --------------------------------------------------------------------------- primitives


def _check_amount(amount: Any, field: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationFailed({field: "Enter a whole number of credits."})
    if amount <= 0:
        raise ValidationFailed({field: "The amount must be at least 1 credit."})
    if amount > MAX_AMOUNT:
        raise ValidationFailed({field: f"The amount must be at most {MAX_AMOUNT:,} credits."})
    return amount


def _check_key(key: str | None) -> str:
    key = (key or "").strip()
    if not key:
        return uuid.uuid4().hex
    if len(key) > 200:
        raise ValidationFailed({"idempotency_key": "At most 200 characters."})
    return key


async def _credit(account_id: int, amount: int) -> int:
    rows = (
        await Account.update({Account.balance: Account.balance + amount})
        .where(Account.id == account_id)
        .returning(Account.balance)
    )
    if not rows:
        raise NotFound(f"account {account_id} not found")
    return int(rows[0]["balance"])


async def _debit(account_id: int, amount: int) -> int | None:
    """The one conditional statement that spends: the new balance, or None if refused."""
    rows = (
        await Account.update({Account.balance: Account.balance - amount})
        .where((Account.id == account_id) & (Account.balance >= amount))
        .returning(Account.balance)
    )
    return int(rows[0]["balance"]) if rows else None


async def _write(
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


async def _account_row(account_id: int) -> dict[str, Any]:
    row = (
        await Account.select(
            Account.id, Account.name, Account.path, Account.parent, Account.balance
        )
        .where(Account.id == account_id)
        .first()
    )
    if row is None:
        raise NotFound(f"account {account_id} not found")
    return row


async def balance(account_id: int) -> int:
    """The account's own wallet balance (0 for an account on a shared wallet)."""
    return int((await _account_row(account_id))["balance"])


async def ledger_sum(account_id: int) -> int:
    """Σ of the account's ledger rows; equals `balance` (the invariant tests check)."""
    row = await LedgerEntry.select(Sum(LedgerEntry.delta, alias="total")).where(
        LedgerEntry.account_id == account_id
    )
    return int(row[0]["total"] or 0) if row else 0


# --------------------------------------------------------------------------- wallets


def _settings_view(row: dict[str, Any] | None, account_id: int) -> WalletSettingsView:
    if row is None:
        return WalletSettingsView(account_id=account_id)
    return WalletSettingsView(
        account_id=account_id,
        shared_wallet=bool(row["shared_wallet"]),
        monthly_cap=row["monthly_cap"],
        low_balance_threshold=row["low_balance_threshold"],
        auto_top_up=bool(row["auto_top_up"]),
        top_up_amount=int(row["top_up_amount"] or 0),
    )


async def wallet_settings(account_id: int) -> WalletSettingsView:
    row = await WalletSettings.select().where(WalletSettings.account_id == account_id).first()
    return _settings_view(row, account_id)


async def wallet_settings_many(account_ids: list[int]) -> dict[int, WalletSettingsView]:
    rows = (
        await WalletSettings.select().where(WalletSettings.account_id.is_in(account_ids))
        if account_ids
        else []
    )
    found = {r["account_id"]: _settings_view(r, r["account_id"]) for r in rows}
    return {i: found.get(i, WalletSettingsView(account_id=i)) for i in account_ids}


async def _wallet_for(
    account_id: int,
) -> tuple[int, WalletSettingsView, WalletSettingsView]:
    """(paying wallet id, the account's own settings, the wallet's settings) in two queries."""
    ids = path_ids((await _account_row(account_id))["path"])
    rows = await WalletSettings.select().where(WalletSettings.account_id.is_in(ids))
    found = {r["account_id"]: _settings_view(r, r["account_id"]) for r in rows}
    wallet_id = ids[0]
    for candidate in reversed(ids):
        if not (candidate in found and found[candidate].shared_wallet):
            wallet_id = candidate
            break

    def of(i: int) -> WalletSettingsView:
        return found.get(i) or WalletSettingsView(account_id=i)

    return wallet_id, of(account_id), of(wallet_id)


async def wallet_of(account_id: int) -> int:
    """The account whose balance pays for this account's sends: itself, or on a shared
    wallet the nearest ancestor that keeps its own wallet."""
    return (await _wallet_for(account_id))[0]


async def update_wallet_settings(
    *,
    actor: audit.Actor,
    within_account_id: int,
    account_id: int,
    shared_wallet: bool,
    monthly_cap: int | None,
    low_balance_threshold: int | None,
    auto_top_up: bool,
    top_up_amount: int,
) -> WalletSettingsView:
    """Set a sub-account's wallet options; only an account above it may (its parent's admins)."""
    errors: dict[str, str] = {}
    if monthly_cap is not None and not 0 <= monthly_cap <= MAX_AMOUNT:
        errors["monthly_cap"] = "The monthly cap must be between 0 and 100,000,000 credits."
    if low_balance_threshold is not None and not 0 <= low_balance_threshold <= MAX_AMOUNT:
        errors["low_balance_threshold"] = "The threshold must be between 0 and 100,000,000."
    if not 0 <= top_up_amount <= MAX_AMOUNT:
        errors["top_up_amount"] = "The top-up amount must be between 0 and 100,000,000."
    if auto_top_up and top_up_amount <= 0:
        errors["top_up_amount"] = "Set how many credits an automatic top-up moves."
    if auto_top_up and low_balance_threshold is None:
        errors["low_balance_threshold"] = "Automatic top-up needs a low-balance threshold."
    if auto_top_up and shared_wallet:
        errors["auto_top_up"] = "An account on a shared wallet has no balance of its own to top up."
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        target = await get_in_subtree(within_account_id, account_id)
        if target.id == within_account_id or target.parent_id is None:
            raise ValidationFailed(
                {"account_id": "Wallet options of an account are set from the account above it."}
            )
        if shared_wallet and target.balance != 0:
            raise ValidationFailed(
                {
                    "shared_wallet": f"{target.name} still holds {target.balance:,} credits; "
                    "reclaim them before it draws from a shared wallet."
                }
            )
        before = await wallet_settings(account_id)
        values: dict[Any, Any] = {
            WalletSettings.shared_wallet: shared_wallet,
            WalletSettings.monthly_cap: monthly_cap,
            WalletSettings.low_balance_threshold: low_balance_threshold,
            WalletSettings.auto_top_up: auto_top_up,
            WalletSettings.top_up_amount: top_up_amount,
        }
        updated = (
            await WalletSettings.update(values)
            .where(WalletSettings.account_id == account_id)
            .returning(WalletSettings.id)
        )
        if not updated:
            await WalletSettings.insert(
                WalletSettings(
                    account_id=account_id,
                    shared_wallet=shared_wallet,
                    monthly_cap=monthly_cap,
                    low_balance_threshold=low_balance_threshold,
                    auto_top_up=auto_top_up,
                    top_up_amount=top_up_amount,
                )
            )
        after = await wallet_settings(account_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="credits.wallet_settings",
            target_type="account",
            target_id=account_id,
            before=before.__dict__,
            after=after.__dict__,
        )
        return after


def _month() -> str:
    return clock.now().strftime("%Y-%m")


async def month_spend(account_id: int, month: str | None = None) -> int:
    row = (
        await MonthlySpend.select(MonthlySpend.spent)
        .where(MonthlySpend.unique_key == f"{account_id}|{month or _month()}")
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


# --------------------------------------------------------------------------- spending


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
    _check_amount(amount)
    key = _check_key(idempotency_key)
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
    wallet_id, settings, paying = await _wallet_for(account_id)
    month = _month()
    if not await _count_month_spend(account_id, amount, settings.monthly_cap, month):
        raise Conflict(
            f"This send of {amount:,} credits would pass the monthly cap of "
            f"{settings.monthly_cap:,} credits ({await month_spend(account_id, month):,} "
            "spent this month).",
            code="monthly_cap_reached",
        )
    after = await _debit(wallet_id, amount)
    if after is None:
        # The caller may catch this and carry on in its transaction: undo the count.
        await _uncount_month_spend(account_id, amount, month)
        have = await balance(wallet_id)
        raise InsufficientCredits(
            f"This send costs {amount:,} credits but only {have:,} are available."
        )
    entry_id = await _write(
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
    await _after_debit(wallet_id, after + amount, after, trigger_id=entry_id, settings=paying)
    return entry_id


async def refund(
    account_id: int, amount: int, *, reference: str, idempotency_key: str
) -> int | None:
    """Give back credits of a send reserved with the same `reference` to the wallet that
    paid it (a `refund` row); returns the row id. Refunds of a reference never exceed what
    was reserved under it: returns None and writes nothing when nothing is left to refund.
    Idempotent by key; nests inside the caller's transaction."""
    _check_amount(amount)
    key = _check_key(idempotency_key)
    return await _once(
        account_id, "refund", key, lambda: _refund(account_id, amount, reference, key)
    )


async def _refund(account_id: int, amount: int, reference: str, key: str) -> int | None:
    candidates = (
        await Reservation.select(Reservation.id)
        .where((Reservation.account_id == account_id) & (Reservation.reference == reference))
        .order_by(Reservation.id)
    )
    for candidate in candidates:
        # One conditional statement per reservation: concurrent refunds cannot over-refund.
        rows = (
            await Reservation.update({Reservation.refunded: Reservation.refunded + amount})
            .where(
                (Reservation.id == candidate["id"]) & WhereRaw("refunded + {} <= amount", amount)
            )
            .returning(Reservation.wallet_id, Reservation.month, Reservation.ledger_entry_id)
        )
        if rows:
            taken = rows[0]
            break
    else:
        return None
    after = await _credit(taken["wallet_id"], amount)
    entry_id = await _write(
        taken["wallet_id"],
        amount,
        after,
        "refund",
        key=key,
        actor=audit.SYSTEM,
        spender_id=account_id,
        counterparty_id=account_id if taken["wallet_id"] != account_id else None,
        reference=reference,
    )
    await _uncount_month_spend(account_id, amount, taken["month"])
    return entry_id


async def _after_debit(
    wallet_id: int,
    before: int,
    after: int,
    *,
    trigger_id: int,
    settings: WalletSettingsView | None = None,
) -> None:
    """When a debit takes a wallet below its threshold: tell the parent's admins and, if
    set, top it up from the parent's wallet (only if the parent can afford it)."""
    if settings is None:
        settings = await wallet_settings(wallet_id)
    threshold = settings.low_balance_threshold
    if threshold is None or not before >= threshold > after:
        return
    account = await _account_row(wallet_id)
    parent_id = account["parent"]
    if parent_id is None:
        return
    message = f"{account['name']} fell below {threshold:,} credits (balance {after:,})."
    if settings.auto_top_up and settings.top_up_amount > 0:
        source_id = await wallet_of(parent_id)
        amount = settings.top_up_amount
        source_after = await _debit(source_id, amount)
        if source_after is None:
            source = await _account_row(source_id)
            message += (
                f" Automatic top-up of {amount:,} failed: {source['name']} holds only "
                f"{source['balance']:,}."
            )
        else:
            transfer_id = await _insert_transfer(
                kind="top_up",
                from_id=source_id,
                to_id=wallet_id,
                amount=amount,
                initiator_id=parent_id,
                key=f"top-up-after-{trigger_id}",
                fingerprint="",
                reference="automatic top-up",
                actor=audit.SYSTEM,
            )
            await _write(
                source_id,
                -amount,
                source_after,
                "top_up",
                key=f"transfer-{transfer_id}-out",
                actor=audit.SYSTEM,
                counterparty_id=wallet_id,
                transfer_id=transfer_id,
                reference="automatic top-up",
            )
            topped = await _credit(wallet_id, amount)
            await _write(
                wallet_id,
                amount,
                topped,
                "top_up",
                key=f"transfer-{transfer_id}-in",
                actor=audit.SYSTEM,
                counterparty_id=source_id,
                transfer_id=transfer_id,
                reference="automatic top-up",
            )
            message += f" Topped up automatically with {amount:,} credits (now {topped:,})."
            await _after_debit(
                source_id, source_after + amount, source_after, trigger_id=trigger_id
            )
    await Notice.insert(
        Notice(
            account_id=parent_id, subject_account_id=wallet_id, kind="low_balance", message=message
        )
    )


# --------------------------------------------------------------------------- transfers


def _transfer_view(row: dict[str, Any]) -> TransferView:
    return TransferView(
        id=row["id"],
        kind=row["kind"],
        from_account_id=row["from_account_id"],
        to_account_id=row["to_account_id"],
        amount=row["amount"],
        created_at=row["created_at"],
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


def transfer_fingerprint(from_id: int, to_id: int, amount: int) -> str:
    body = json.dumps({"from": from_id, "to": to_id, "amount": amount}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


async def _replayed(initiator_id: int, key: str, fingerprint: str) -> TransferView | None:
    row = (
        await CreditTransfer.select()
        .where(CreditTransfer.unique_key == f"{initiator_id}|{key}")
        .first()
    )
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used for a different transfer.",
            code="idempotency_key_reused",
        )
    return _transfer_view(row)


async def _pair_in_subtree(
    within_account_id: int, from_id: int, to_id: int
) -> tuple[AccountView, AccountView]:
    """Both ends of a transfer, which must lie in the caller's subtree (else NotFound)."""
    found = {a.id: a for a in await get_accounts([within_account_id, from_id, to_id])}
    within = found.get(within_account_id)
    if within is None:
        raise NotFound(f"account {within_account_id} not found")
    pair = []
    for account_id in (from_id, to_id):
        account = found.get(account_id)
        if account is None or not account.path.startswith(within.path):
            raise NotFound(f"account {account_id} not found")
        pair.append(account)
    return pair[0], pair[1]


async def transfer(
    *,
    actor: audit.Actor,
    within_account_id: int,
    to_account_id: int,
    amount: int,
    from_account_id: int | None = None,
    idempotency_key: str | None = None,
    reference: str = "",
    direction: str | None = None,
) -> tuple[TransferView, bool]:
    """Move credits between an account and a descendant, both in the caller's subtree:
    downwards it is an allocation, upwards a reclaim (`direction` insists on one). Returns
    (transfer, created); a replay with the same key returns the first transfer and
    created=False."""
    amount = _check_amount(amount)
    key = _check_key(idempotency_key)
    from_id = from_account_id if from_account_id is not None else within_account_id
    fingerprint = transfer_fingerprint(from_id, to_account_id, amount)
    try:
        async with transaction():
            replay = await _replayed(within_account_id, key, fingerprint)
            if replay is not None:
                return replay, False
            source, target = await _pair_in_subtree(within_account_id, from_id, to_account_id)
            kind = None
            if target.id != source.id and target.path.startswith(source.path):
                kind = "allocate"
            elif target.id != source.id and source.path.startswith(target.path):
                kind = "reclaim"
            if direction == "allocate" and kind != "allocate":
                raise ValidationFailed(
                    {
                        "to_account_id": "Credits are allocated down the tree, to an account "
                        f"below {source.name}."
                    }
                )
            if direction == "reclaim" and kind != "reclaim":
                raise ValidationFailed(
                    {
                        "from_account_id": f"Credits are reclaimed from an account below {target.name}."
                    }
                )
            if kind is None:
                raise ValidationFailed(
                    {
                        "to_account_id": "Credits move only between an account and one of its "
                        "descendants (allocate down, reclaim up)."
                    }
                )
            return await _move(
                kind=kind,
                source=source,
                target=target,
                amount=amount,
                initiator_id=within_account_id,
                key=key,
                fingerprint=fingerprint,
                reference=reference,
                actor=actor,
            ), True
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        # A concurrent request with the same key won the race: answer with its transfer.
        replay = await _replayed(within_account_id, key, fingerprint)
        if replay is None:
            raise
        return replay, False


async def _move(
    *,
    kind: str,
    source: AccountView,
    target: AccountView,
    amount: int,
    initiator_id: int,
    key: str,
    fingerprint: str,
    reference: str,
    actor: audit.Actor,
) -> TransferView:
    settings = await wallet_settings_many([source.id, target.id])
    if kind == "allocate" and settings[target.id].shared_wallet:
        raise Conflict(
            f"{target.name} draws from a shared wallet; it has no balance of its own to fund.",
            code="shared_wallet",
        )
    source_after = await _debit(source.id, amount)
    if source_after is None:
        have = await balance(source.id)
        raise InsufficientCredits(
            f"{source.name} holds {have:,} credits, not enough to move {amount:,}."
        )
    created_at = clock.now()
    transfer_id = await _insert_transfer(
        created_at=created_at,
        kind=kind,
        from_id=source.id,
        to_id=target.id,
        amount=amount,
        initiator_id=initiator_id,
        key=key,
        fingerprint=fingerprint,
        reference=reference,
        actor=actor,
    )
    out_id = await _write(
        source.id,
        -amount,
        source_after,
        kind,
        key=f"transfer-{transfer_id}-out",
        actor=actor,
        counterparty_id=target.id,
        transfer_id=transfer_id,
        reference=reference,
    )
    target_after = await _credit(target.id, amount)
    await _write(
        target.id,
        amount,
        target_after,
        kind,
        key=f"transfer-{transfer_id}-in",
        actor=actor,
        counterparty_id=source.id,
        transfer_id=transfer_id,
        reference=reference,
    )
    await audit.record(
        actor,
        account_id=initiator_id,
        action=f"credits.{kind}",
        target_type="credit_transfer",
        target_id=transfer_id,
        before={"from_balance": source_after + amount, "to_balance": target_after - amount},
        after={
            "from_account_id": source.id,
            "to_account_id": target.id,
            "amount": amount,
            "from_balance": source_after,
            "to_balance": target_after,
        },
    )
    await _after_debit(
        source.id,
        source_after + amount,
        source_after,
        trigger_id=out_id,
        settings=settings[source.id],
    )
    return TransferView(
        id=transfer_id,
        kind=kind,
        from_account_id=source.id,
        to_account_id=target.id,
        amount=amount,
        created_at=created_at,
    )


async def allocate(
    *,
    actor: audit.Actor,
    within_account_id: int,
    to_account_id: int,
    amount: int,
    from_account_id: int | None = None,
    idempotency_key: str | None = None,
    reference: str = "",
) -> TransferView:
    """Move credits down: from an account (default: the caller's) to one of its descendants."""
    result, _ = await transfer(
        actor=actor,
        within_account_id=within_account_id,
        from_account_id=from_account_id,
        to_account_id=to_account_id,
        amount=amount,
        idempotency_key=idempotency_key,
        reference=reference,
        direction="allocate",
    )
    return result


async def reclaim(
    *,
    actor: audit.Actor,
    within_account_id: int,
    from_account_id: int,
    amount: int,
    to_account_id: int | None = None,
    idempotency_key: str | None = None,
    reference: str = "",
) -> TransferView:
    """Move unused credits up: from a descendant back to an account above it (default: the
    caller's). A sub-account cannot pull from above; only the account above reclaims."""
    result, _ = await transfer(
        actor=actor,
        within_account_id=within_account_id,
        from_account_id=from_account_id,
        to_account_id=to_account_id if to_account_id is not None else within_account_id,
        amount=amount,
        idempotency_key=idempotency_key,
        reference=reference,
        direction="reclaim",
    )
    return result


# --------------------------------------------------------------------------- purchases


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
    return OrderView(
        id=row["id"],
        account_id=row["account_id"],
        amount=row["amount"],
        gateway=row["gateway"],
        status=row["status"],
        reference=row["reference"],
        requested_by=row["requested_by"],
        decided_by=row["decided_by"],
        decision_note=row["decision_note"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
    )


async def get_order(order_id: int) -> OrderView:
    row = await PurchaseOrder.select().where(PurchaseOrder.id == order_id).first()
    if row is None:
        raise NotFound(f"order {order_id} not found")
    return _order_view(row)


async def purchase(
    account_id: int, amount: int, *, actor: audit.Actor, gateway: str = "invoice"
) -> OrderView:
    """Start buying credits through a gateway. A gateway that is paid at once writes the
    purchase now; the invoice gateway leaves a pending order for the operator."""
    amount = _check_amount(amount)
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


async def approve_order(order_id: int, *, actor: audit.Actor, note: str = "") -> OrderView:
    """Mark a pending order paid and write its purchase row (once, whatever the retries)."""
    async with transaction():
        rows = (
            await PurchaseOrder.update(
                {
                    PurchaseOrder.status: "approved",
                    PurchaseOrder.decided_by: actor.label,
                    PurchaseOrder.decided_at: clock.now(),
                    PurchaseOrder.decision_note: note,
                }
            )
            .where((PurchaseOrder.id == order_id) & (PurchaseOrder.status == "pending"))
            .returning(PurchaseOrder.account_id, PurchaseOrder.amount, PurchaseOrder.reference)
        )
        if not rows:
            order = await get_order(order_id)
            if order.status == "approved":
                return order
            raise Conflict(f"Order #{order_id} was already {order.status}.", code="order_decided")
        account_id, amount = rows[0]["account_id"], rows[0]["amount"]
        after = await _credit(account_id, amount)
        entry_id = await _write(
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
        rows = (
            await PurchaseOrder.update(
                {
                    PurchaseOrder.status: "rejected",
                    PurchaseOrder.decided_by: actor.label,
                    PurchaseOrder.decided_at: clock.now(),
                    PurchaseOrder.decision_note: note,
                }
            )
            .where((PurchaseOrder.id == order_id) & (PurchaseOrder.status == "pending"))
            .returning(PurchaseOrder.account_id)
        )
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
    key = _check_key(idempotency_key)
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
            after = await _credit(account_id, amount)
        else:
            debited = await _debit(account_id, -amount)
            if debited is None:
                raise InsufficientCredits(
                    f"The account holds {await balance(account_id):,} credits, "
                    f"fewer than {-amount:,}."
                )
            after = debited
        entry_id = await _write(
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


# --------------------------------------------------------------------------- ledger


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


# --------------------------------------------------------------------------- notices


async def notices(account_id: int, *, limit: int = 20) -> list[NoticeView]:
    rows = (
        await Notice.select()
        .where((Notice.account_id == account_id) & Notice.dismissed_at.is_null())
        .order_by(Notice.id, ascending=False)
        .limit(limit)
    )
    return [
        NoticeView(
            id=r["id"],
            account_id=r["account_id"],
            subject_account_id=r["subject_account_id"],
            kind=r["kind"],
            message=r["message"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def dismiss_notice(*, actor: audit.Actor, account_id: int, notice_id: int) -> None:
    async with transaction():
        rows = (
            await Notice.update({Notice.dismissed_at: clock.now()})
            .where((Notice.id == notice_id) & (Notice.account_id == account_id))
            .returning(Notice.id)
        )
        if not rows:
            raise NotFound("notice not found")
        await audit.record(
            actor,
            account_id=account_id,
            action="notice.dismiss",
            target_type="notice",
            target_id=notice_id,
        )


# --------------------------------------------------------------------------- prices


async def _platform_ids() -> list[int]:
    rows = await Account.select(Account.id).where(Account.kind == "platform").order_by(Account.id)
    return [r["id"] for r in rows]


def _overlay(parent: dict[str, int], rules: dict[str, int], *, floored: bool) -> dict[str, int]:
    """Apply one account's rules on top of the table above it. A rule replaces the value
    for its country; below a master it never goes under what the parent pays (its cost),
    even if the price above was raised after the rule was set."""
    table = dict(parent)
    for country, credits in rules.items():
        table[country] = max(credits, parent.get(country, parent["*"])) if floored else credits
    return table


async def price_layers(account_id: int, channel: str) -> list[tuple[int, dict[str, int], bool]]:
    """(account id, its own rules, floored) from the platform defaults down to the account."""
    if channel not in CHANNELS:
        raise ValidationFailed({"channel": f"Channel must be one of: {', '.join(CHANNELS)}."})
    ids = path_ids((await _account_row(account_id))["path"])
    platform = [i for i in await _platform_ids() if i not in ids]
    chain = platform + ids
    rows = await PriceRule.select(PriceRule.account_id, PriceRule.country, PriceRule.credits).where(
        PriceRule.account_id.is_in(chain) & (PriceRule.channel == channel)
    )
    by_account: dict[int, dict[str, int]] = {}
    for r in rows:
        by_account.setdefault(r["account_id"], {})[r["country"]] = r["credits"]
    return [(i, by_account.get(i, {}), i in ids and ids.index(i) > 0) for i in chain]


async def prices_for(account_id: int, channel: str) -> dict[str, int]:
    """Credits per segment by destination country (ISO-3166 alpha-2) for `channel` as seen
    by `account_id`; key "*" is the price for every other country."""
    table = {"*": DEFAULT_PRICES.get(channel, 1)}
    for _, rules, floored in await price_layers(account_id, channel):
        table = _overlay(table, rules, floored=floored)
    return table


async def cost_floor(account_id: int, channel: str) -> dict[str, int] | None:
    """What the account's parent pays per segment: the lowest price that may be set on the
    account. None for a root account (the operator prices masters freely)."""
    parent_id = (await _account_row(account_id))["parent"]
    return await prices_for(parent_id, channel) if parent_id is not None else None


async def price_rules(account_id: int) -> list[dict[str, Any]]:
    rows = (
        await PriceRule.select(
            PriceRule.id, PriceRule.channel, PriceRule.country, PriceRule.credits
        )
        .where(PriceRule.account_id == account_id)
        .order_by(PriceRule.channel)
        .order_by(PriceRule.country)
    )
    return list(rows)


def _check_country(country: str) -> str:
    country = (country or "").strip().upper()
    if country != "*" and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise ValidationFailed(
            {"country": "Use a two-letter ISO country code (e.g. AU) or * for all others."}
        )
    return country


async def set_price(
    *,
    actor: audit.Actor,
    account_id: int,
    channel: str,
    country: str,
    credits: int,
    is_operator: bool,
    within_account_id: int,
) -> dict[str, int]:
    """Set a price on `account_id` for itself and its subtree. The operator prices masters
    (and the platform defaults); an account prices its descendants, never below what the
    target's parent pays. Returns the target's new table for the channel."""
    country = _check_country(country)
    errors: dict[str, str] = {}
    if channel not in CHANNELS:
        errors["channel"] = f"Channel must be one of: {', '.join(CHANNELS)}."
    if isinstance(credits, bool) or not isinstance(credits, int) or not 0 < credits <= MAX_PRICE:
        errors["credits"] = f"Enter a whole number of credits from 1 to {MAX_PRICE:,}."
    if errors:
        raise ValidationFailed(errors)
    async with transaction():
        if is_operator:
            target = await get_account(account_id)
        else:
            target = await get_in_subtree(within_account_id, account_id)
        if target.parent_id is None and not is_operator:
            raise ValidationFailed(
                {"account_id": "The platform operator sets a master account's prices."}
            )
        if target.id == within_account_id and not is_operator:
            raise ValidationFailed(
                {"account_id": "An account's own prices are set by the account above it."}
            )
        floor = await cost_floor(target.id, channel)
        minimum = floor.get(country, floor["*"]) if floor else 1
        if credits < minimum:
            raise ValidationFailed(
                {"credits": f"At least {minimum} credit(s): the parent pays {minimum} per segment."}
            )
        key = f"{target.id}|{channel}|{country}"
        before = (
            await PriceRule.select(PriceRule.credits).where(PriceRule.unique_key == key).first()
        )
        if before:
            await PriceRule.update({PriceRule.credits: credits}).where(PriceRule.unique_key == key)
        else:
            await PriceRule.insert(
                PriceRule(
                    account_id=target.id,
                    channel=channel,
                    country=country,
                    credits=credits,
                    unique_key=key,
                )
            )
        await audit.record(
            actor,
            account_id=target.id,
            action="pricing.set",
            target_type="price_rule",
            target_id=key,
            before={"credits": before["credits"]} if before else None,
            after={"channel": channel, "country": country, "credits": credits},
        )
        return await prices_for(target.id, channel)


async def delete_price(
    *,
    actor: audit.Actor,
    account_id: int,
    channel: str,
    country: str,
    is_operator: bool,
    within_account_id: int,
) -> None:
    country = _check_country(country)
    async with transaction():
        if is_operator:
            target = await get_account(account_id)
        else:
            target = await get_in_subtree(within_account_id, account_id)
            if target.id == within_account_id:
                raise ValidationFailed(
                    {"account_id": "An account's own prices are set by the account above it."}
                )
        key = f"{target.id}|{channel}|{country}"
        rows = await PriceRule.delete().where(PriceRule.unique_key == key).returning(PriceRule.id)
        if not rows:
            raise NotFound("price not found")
        await audit.record(
            actor,
            account_id=target.id,
            action="pricing.delete",
            target_type="price_rule",
            target_id=key,
        )
