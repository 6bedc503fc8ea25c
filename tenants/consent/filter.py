"""Consent filtering: set-based checks of many numbers against the scope's state and the
global suppression list (who may be messaged, and each contact's status)."""

from __future__ import annotations

from collections.abc import Sequence

from tenants.consent.scopes import GROUPS, scoped_account, state_key
from tenants.consent.tables import ConsentState, channel_group
from tenants.db import array_argument, chunked, join_array, run_sql
from tenants.phones import normalize_phone

STATUSES = ("opted_in", "opted_out", "unknown")


SKIP_REASONS = ("invalid_number", "opted_out", "globally_suppressed")


FILTER_CHUNK = 50_000


async def _opted_out(scope_id: int, numbers: Sequence[str], group: str) -> set[str]:
    """Those of these E.164 numbers opted out of `group` in the scope."""
    found: set[str] = set()
    for part in chunked(numbers, FILTER_CHUNK):
        rows = await run_sql(
            f"SELECT consent_state.phone FROM consent_state {join_array('consent_state.key')} "  # noqa: S608 (no input is formatted in)
            "WHERE consent_state.status = 'opted_out'",
            array_argument([state_key(scope_id, n, group) for n in part]),
        )
        found.update(r["phone"] for r in rows)
    return found


async def _suppressed(numbers: Sequence[str]) -> set[str]:
    """Those of these E.164 numbers on the platform's global suppression list."""
    found: set[str] = set()
    for part in chunked(numbers, FILTER_CHUNK):
        rows = await run_sql(
            "SELECT global_suppression.phone FROM global_suppression "  # noqa: S608 (no input is formatted in)
            + join_array("global_suppression.phone"),
            array_argument(part),
        )
        found.update(r["phone"] for r in rows)
    return found


async def filter_recipients(
    account_id: int, phones: Sequence[str], channel: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """Split raw phone strings into (allowed E.164 numbers, [(raw, reason)] skipped).

    Numbers are normalised with the account's default region and de-duplicated (the first
    occurrence counts); the check is set-based: two queries for the whole list (each joins
    the numbers passed as one array) plus two for the account, never one per phone.
    """
    group = channel_group(channel)
    account = await scoped_account(account_id)
    skipped: list[tuple[int, str, str]] = []
    # One pass over the phones: each E.164 number once, with the index of its first
    # occurrence (a dict keeps them in order), no tuple made per recipient.
    first: dict[str, int] = {}
    region = account.default_region
    for index, raw in enumerate(phones):
        e164 = normalize_phone(raw, region)
        if e164 is None:
            skipped.append((index, raw, "invalid_number"))
        elif e164 not in first:
            first[e164] = index
    numbers = list(first)
    opted_out = await _opted_out(account.scope_id, numbers, group)
    suppressed = await _suppressed(numbers)
    if not (opted_out or suppressed):
        return numbers, [(raw, reason) for _, raw, reason in skipped]
    allowed: list[str] = []
    for e164 in numbers:
        if e164 in suppressed:
            skipped.append((first[e164], phones[first[e164]], "globally_suppressed"))
        elif e164 in opted_out:
            skipped.append((first[e164], phones[first[e164]], "opted_out"))
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
