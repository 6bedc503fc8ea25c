"""Pricing: per-account price rules by channel and country, layered from the platform
defaults down the tree, never below what the parent pays."""

from __future__ import annotations

from typing import Any

from tenants.accounts.tables import Account
from tenants.accounts.tree import AccountView, get_account, get_in_subtree
from tenants.audit import record as audit
from tenants.credits.ledger import account_row
from tenants.credits.tables import (
    PriceRule,
)
from tenants.db import shared_read, transaction
from tenants.errors import NotFound, ValidationFailed

CHANNELS = ("sms", "mms", "rcs", "whatsapp")


DEFAULT_PRICES: dict[str, int] = {"sms": 1, "mms": 3, "rcs": 1, "whatsapp": 2}


MAX_PRICE = 10_000


async def _platform_ids() -> list[int]:
    async def load() -> tuple[int, ...]:
        rows = (
            await Account.select(Account.id).where(Account.kind == "platform").order_by(Account.id)
        )
        return tuple(r["id"] for r in rows)

    return list(await shared_read(("platform_ids_in_order",), load, settled=True))


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

    async def load() -> tuple[tuple[int, tuple[tuple[str, int], ...], bool], ...]:
        ids = (await get_account(account_id)).ancestor_ids
        platform = [i for i in await _platform_ids() if i not in ids]
        chain = platform + ids
        rows = await PriceRule.select(
            PriceRule.account_id, PriceRule.country, PriceRule.credits
        ).where(PriceRule.account_id.is_in(chain) & (PriceRule.channel == channel))
        by_account: dict[int, dict[str, int]] = {}
        for r in rows:
            by_account.setdefault(r["account_id"], {})[r["country"]] = r["credits"]
        return tuple(
            (i, tuple(by_account.get(i, {}).items()), i in ids and ids.index(i) > 0) for i in chain
        )

    # Kept across an inbound group's blocks while cache_version stands (price_rule and
    # the account tree are watched); each caller gets its own dicts.
    kept = await shared_read(("price_layers", account_id, channel), load, settled=True)
    return [(i, dict(rules), floored) for i, rules, floored in kept]


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
    parent_id = (await account_row(account_id))["parent"]
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
    _check_channel_and_credits(channel, credits)
    async with transaction():
        target = await _priced_target(account_id, is_operator, within_account_id)
        await _check_above_floor(target.id, channel, country, credits)
        key = f"{target.id}|{channel}|{country}"
        before = await _upsert_rule(target.id, channel, country, credits, key)
        await audit.record(
            actor,
            account_id=target.id,
            action="pricing.set",
            target_type="price_rule",
            target_id=key,
            before={"credits": before} if before is not None else None,
            after={"channel": channel, "country": country, "credits": credits},
        )
        return await prices_for(target.id, channel)


def _check_channel_and_credits(channel: str, credits: int) -> None:
    errors: dict[str, str] = {}
    if channel not in CHANNELS:
        errors["channel"] = f"Channel must be one of: {', '.join(CHANNELS)}."
    if isinstance(credits, bool) or not isinstance(credits, int) or not 0 < credits <= MAX_PRICE:
        errors["credits"] = f"Enter a whole number of credits from 1 to {MAX_PRICE:,}."
    if errors:
        raise ValidationFailed(errors)


async def _priced_target(account_id: int, is_operator: bool, within_account_id: int) -> AccountView:
    """The account whose price is set: any for the operator; else one strictly below the
    caller's account and not a root."""
    if is_operator:
        return await get_account(account_id)
    target = await get_in_subtree(within_account_id, account_id)
    if target.parent_id is None:
        raise ValidationFailed(
            {"account_id": "The platform operator sets a master account's prices."}
        )
    if target.id == within_account_id:
        raise ValidationFailed(
            {"account_id": "An account's own prices are set by the account above it."}
        )
    return target


async def _check_above_floor(account_id: int, channel: str, country: str, credits: int) -> None:
    floor = await cost_floor(account_id, channel)
    minimum = floor.get(country, floor["*"]) if floor else 1
    if credits < minimum:
        raise ValidationFailed(
            {"credits": f"At least {minimum} credit(s): the parent pays {minimum} per segment."}
        )


async def _upsert_rule(
    account_id: int, channel: str, country: str, credits: int, key: str
) -> int | None:
    """Write the rule; returns the credits it replaced (None when it is new)."""
    before = await PriceRule.select(PriceRule.credits).where(PriceRule.unique_key == key).first()
    if before:
        await PriceRule.update({PriceRule.credits: credits}).where(PriceRule.unique_key == key)
        return int(before["credits"])
    await PriceRule.insert(
        PriceRule(
            account_id=account_id,
            channel=channel,
            country=country,
            credits=credits,
            unique_key=key,
        )
    )
    return None


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
