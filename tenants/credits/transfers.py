"""Transfers: move credits between an account and a descendant (allocate down, reclaim
up), idempotent by key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tenants import clock
from tenants.accounts.tree import AccountView, get_accounts
from tenants.audit import record as audit
from tenants.credits.ledger import (
    BookedTransfer,
    TransferView,
    balance,
    book_transfer,
    check_amount,
    check_key,
    debit,
    transfer_view,
)
from tenants.credits.tables import (
    CreditTransfer,
)
from tenants.credits.wallets import after_debit, wallet_settings_many
from tenants.db import is_unique_violation, transaction
from tenants.errors import Conflict, InsufficientCredits, NotFound, ValidationFailed


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
    return transfer_view(row)


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
    amount = check_amount(amount)
    from_id = from_account_id if from_account_id is not None else within_account_id
    move = Move(
        initiator_id=within_account_id,
        amount=amount,
        key=check_key(idempotency_key),
        fingerprint=transfer_fingerprint(from_id, to_account_id, amount),
        reference=reference,
        actor=actor,
    )
    try:
        async with transaction():
            replay = await _replayed(move.initiator_id, move.key, move.fingerprint)
            if replay is not None:
                return replay, False
            source, target = await _pair_in_subtree(within_account_id, from_id, to_account_id)
            kind = _kind_between(source, target, direction)
            return await _move(kind, source, target, move), True
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        # A concurrent request with the same key won the race: answer with its transfer.
        replay = await _replayed(move.initiator_id, move.key, move.fingerprint)
        if replay is None:
            raise
        return replay, False


@dataclass(frozen=True)
class Move:
    """What a transfer request carries to the step that books it."""

    initiator_id: int
    amount: int
    key: str
    fingerprint: str
    reference: str
    actor: audit.Actor


def _kind_between(source: AccountView, target: AccountView, direction: str | None) -> str:
    """ "allocate" down the tree, "reclaim" up it; anything else (or against `direction`)
    is refused naming the field to change."""
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
            {"from_account_id": f"Credits are reclaimed from an account below {target.name}."}
        )
    if kind is None:
        raise ValidationFailed(
            {
                "to_account_id": "Credits move only between an account and one of its "
                "descendants (allocate down, reclaim up)."
            }
        )
    return kind


async def _move(kind: str, source: AccountView, target: AccountView, move: Move) -> TransferView:
    settings = await wallet_settings_many([source.id, target.id])
    if kind == "allocate" and settings[target.id].shared_wallet:
        raise Conflict(
            f"{target.name} draws from a shared wallet; it has no balance of its own to fund.",
            code="shared_wallet",
        )
    amount = move.amount
    source_after = await debit(source.id, amount)
    if source_after is None:
        have = await balance(source.id)
        raise InsufficientCredits(
            f"{source.name} holds {have:,} credits, not enough to move {amount:,}."
        )
    created_at = clock.now()
    booked = await book_transfer(
        created_at=created_at,
        kind=kind,
        source_id=source.id,
        source_balance=source_after,
        target_id=target.id,
        amount=amount,
        initiator_id=move.initiator_id,
        key=move.key,
        fingerprint=move.fingerprint,
        reference=move.reference,
        actor=move.actor,
    )
    await _audit_move(kind, source.id, target.id, move, source_after, booked)
    await after_debit(
        source.id,
        source_after + amount,
        source_after,
        trigger_id=booked.out_entry_id,
        settings=settings[source.id],
    )
    return TransferView(
        id=booked.transfer_id,
        kind=kind,
        from_account_id=source.id,
        to_account_id=target.id,
        amount=amount,
        created_at=created_at,
    )


async def _audit_move(
    kind: str, source_id: int, target_id: int, move: Move, source_after: int, booked: BookedTransfer
) -> None:
    amount = move.amount
    await audit.record(
        move.actor,
        account_id=move.initiator_id,
        action=f"credits.{kind}",
        target_type="credit_transfer",
        target_id=booked.transfer_id,
        before={
            "from_balance": source_after + amount,
            "to_balance": booked.target_balance - amount,
        },
        after={
            "from_account_id": source_id,
            "to_account_id": target_id,
            "amount": amount,
            "from_balance": source_after,
            "to_balance": booked.target_balance,
        },
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
