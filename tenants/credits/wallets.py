"""Wallets: per-account wallet settings (shared wallet, monthly cap, low-balance threshold,
automatic top-up), which wallet pays for an account, and the low-balance notices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenants import clock
from tenants.accounts.tree import get_account, get_in_subtree
from tenants.audit import record as audit
from tenants.credits.ledger import (
    MAX_AMOUNT,
    account_row,
    book_transfer,
    debit,
)
from tenants.credits.tables import (
    Notice,
    WalletSettings,
)
from tenants.db import shared_read, transaction, view_of
from tenants.errors import NotFound, ValidationFailed


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


@dataclass(frozen=True)
class PayingWallet:
    """Who pays for an account's sends, and the settings that govern the charge."""

    wallet_id: int
    own: WalletSettingsView  # the account's settings (its monthly cap)
    paying: WalletSettingsView  # the paying wallet's settings (its threshold, top-up)


async def paying_wallet(account_id: int) -> PayingWallet:
    """The paying wallet of an account and both settings, in two queries (kept across an
    inbound group's blocks while cache_version stands: wallet_settings is watched)."""

    async def load() -> PayingWallet:
        ids = (await get_account(account_id)).ancestor_ids
        rows = await WalletSettings.select().where(WalletSettings.account_id.is_in(ids))
        found = {r["account_id"]: _settings_view(r, r["account_id"]) for r in rows}
        wallet_id = ids[0]
        for candidate in reversed(ids):
            if not (candidate in found and found[candidate].shared_wallet):
                wallet_id = candidate
                break

        def of(i: int) -> WalletSettingsView:
            return found.get(i) or WalletSettingsView(account_id=i)

        return PayingWallet(wallet_id=wallet_id, own=of(account_id), paying=of(wallet_id))

    return await shared_read(("paying_wallet", account_id), load, settled=True)


async def wallet_of(account_id: int) -> int:
    """The account whose balance pays for this account's sends: itself, or on a shared
    wallet the nearest ancestor that keeps its own wallet."""
    return (await paying_wallet(account_id)).wallet_id


@dataclass(frozen=True)
class WalletOptions:
    """The wallet options an account above sets on a sub-account."""

    shared_wallet: bool
    monthly_cap: int | None
    low_balance_threshold: int | None
    auto_top_up: bool
    top_up_amount: int


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
    options = WalletOptions(
        shared_wallet=shared_wallet,
        monthly_cap=monthly_cap,
        low_balance_threshold=low_balance_threshold,
        auto_top_up=auto_top_up,
        top_up_amount=top_up_amount,
    )
    _check_options(options)
    async with transaction():
        await _check_target(within_account_id, account_id, options)
        before = await wallet_settings(account_id)
        await _save_options(account_id, options)
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


def _check_options(options: WalletOptions) -> None:
    errors: dict[str, str] = {}
    cap, threshold = options.monthly_cap, options.low_balance_threshold
    if cap is not None and not 0 <= cap <= MAX_AMOUNT:
        errors["monthly_cap"] = "The monthly cap must be between 0 and 100,000,000 credits."
    if threshold is not None and not 0 <= threshold <= MAX_AMOUNT:
        errors["low_balance_threshold"] = "The threshold must be between 0 and 100,000,000."
    if not 0 <= options.top_up_amount <= MAX_AMOUNT:
        errors["top_up_amount"] = "The top-up amount must be between 0 and 100,000,000."
    if options.auto_top_up and options.top_up_amount <= 0:
        errors["top_up_amount"] = "Set how many credits an automatic top-up moves."
    if options.auto_top_up and threshold is None:
        errors["low_balance_threshold"] = "Automatic top-up needs a low-balance threshold."
    if options.auto_top_up and options.shared_wallet:
        errors["auto_top_up"] = "An account on a shared wallet has no balance of its own to top up."
    if errors:
        raise ValidationFailed(errors)


async def _check_target(within_account_id: int, account_id: int, options: WalletOptions) -> None:
    """The target lies below the caller's account and can take the options."""
    target = await get_in_subtree(within_account_id, account_id)
    if target.id == within_account_id or target.parent_id is None:
        raise ValidationFailed(
            {"account_id": "Wallet options of an account are set from the account above it."}
        )
    if options.shared_wallet and target.balance != 0:
        raise ValidationFailed(
            {
                "shared_wallet": f"{target.name} still holds {target.balance:,} credits; "
                "reclaim them before it draws from a shared wallet."
            }
        )


async def _save_options(account_id: int, options: WalletOptions) -> None:
    values: dict[Any, Any] = {
        WalletSettings.shared_wallet: options.shared_wallet,
        WalletSettings.monthly_cap: options.monthly_cap,
        WalletSettings.low_balance_threshold: options.low_balance_threshold,
        WalletSettings.auto_top_up: options.auto_top_up,
        WalletSettings.top_up_amount: options.top_up_amount,
    }
    updated = (
        await WalletSettings.update(values)
        .where(WalletSettings.account_id == account_id)
        .returning(WalletSettings.id)
    )
    if not updated:
        await WalletSettings.insert(WalletSettings(account_id=account_id, **options.__dict__))


async def after_debit(
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
    account = await account_row(wallet_id)
    parent_id = account["parent"]
    if parent_id is None:
        return
    message = f"{account['name']} fell below {threshold:,} credits (balance {after:,})."
    if settings.auto_top_up and settings.top_up_amount > 0:
        message += await _auto_top_up(
            wallet_id, parent_id, settings.top_up_amount, trigger_id=trigger_id
        )
    await Notice.insert(
        Notice(
            account_id=parent_id, subject_account_id=wallet_id, kind="low_balance", message=message
        )
    )


async def _auto_top_up(wallet_id: int, parent_id: int, amount: int, *, trigger_id: int) -> str:
    """Move `amount` from the parent's paying wallet into the wallet; returns the sentence
    the low-balance notice adds (topped up, or why not)."""
    source_id = await wallet_of(parent_id)
    source_after = await debit(source_id, amount)
    if source_after is None:
        source = await account_row(source_id)
        return (
            f" Automatic top-up of {amount:,} failed: {source['name']} holds only "
            f"{source['balance']:,}."
        )
    booked = await book_transfer(
        kind="top_up",
        source_id=source_id,
        source_balance=source_after,
        target_id=wallet_id,
        amount=amount,
        initiator_id=parent_id,
        key=f"top-up-after-{trigger_id}",
        fingerprint="",
        reference="automatic top-up",
        actor=audit.SYSTEM,
    )
    # The top-up may in turn take the parent's wallet below its own threshold.
    await after_debit(source_id, source_after + amount, source_after, trigger_id=trigger_id)
    return f" Topped up automatically with {amount:,} credits (now {booked.target_balance:,})."


async def notices(account_id: int, *, limit: int = 20) -> list[NoticeView]:
    rows = (
        await Notice.select()
        .where((Notice.account_id == account_id) & Notice.dismissed_at.is_null())
        .order_by(Notice.id, ascending=False)
        .limit(limit)
    )
    return [
        view_of(
            NoticeView,
            r,
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
