"""Consent filtering: set-based checks of many numbers against the scope's state and the
global suppression list (who may be messaged, and each contact's status)."""

from __future__ import annotations

from collections.abc import Sequence

from tenants.consent.scopes import GROUPS, scoped_account, state_key
from tenants.consent.tables import (
    ConsentState,
    GlobalSuppression,
    channel_group,
)
from tenants.phones import normalize_phone

STATUSES = ("opted_in", "opted_out", "unknown")


SKIP_REASONS = ("invalid_number", "opted_out", "globally_suppressed")


FILTER_CHUNK = 5000


async def filter_recipients(
    account_id: int, phones: Sequence[str], channel: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """Split raw phone strings into (allowed E.164 numbers, [(raw, reason)] skipped).

    Numbers are normalised with the account's default region and de-duplicated (the first
    occurrence counts); the check is set-based: two queries per chunk of FILTER_CHUNK phones
    plus two for the account, never one per phone.
    """
    group = channel_group(channel)
    account = await scoped_account(account_id)
    skipped: list[tuple[int, str, str]] = []
    candidates: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(phones):
        e164 = normalize_phone(raw, account.default_region) if isinstance(raw, str) else None
        if e164 is None:
            skipped.append((index, raw, "invalid_number"))
        elif e164 not in seen:
            seen.add(e164)
            candidates.append((index, raw, e164))
    allowed: list[str] = []
    for start in range(0, len(candidates), FILTER_CHUNK):
        chunk = candidates[start : start + FILTER_CHUNK]
        numbers = [e164 for _, _, e164 in chunk]
        keys = [state_key(account.scope_id, n, group) for n in numbers]
        opted_out = {
            r["phone"]
            for r in await ConsentState.select(ConsentState.phone).where(
                ConsentState.key.is_in(keys) & (ConsentState.status == "opted_out")
            )
        }
        suppressed = {
            r["phone"]
            for r in await GlobalSuppression.select(GlobalSuppression.phone).where(
                GlobalSuppression.phone.is_in(numbers)
            )
        }
        for index, raw, e164 in chunk:
            if e164 in suppressed:
                skipped.append((index, raw, "globally_suppressed"))
            elif e164 in opted_out:
                skipped.append((index, raw, "opted_out"))
            else:
                allowed.append(e164)
    skipped.sort(key=lambda s: s[0])
    return allowed, [(raw, reason) for _, raw, reason in skipped]


async def statuses(account_id: int, phones: Sequence[str]) -> dict[tuple[str, str], str]:
    """Current status of E.164 numbers in the account's scope for both channel groups
    (for lists of contacts): {(phone, group): status}, absent means unknown."""
    if not phones:
        return {}
    account = await scoped_account(account_id)
    keys = [state_key(account.scope_id, p, g) for p in phones for g in GROUPS]
    rows = await ConsentState.select(
        ConsentState.phone, ConsentState.channel_group, ConsentState.status
    ).where(ConsentState.key.is_in(keys))
    return {(r["phone"], r["channel_group"]): r["status"] for r in rows}
