"""Quiet hours: an account's window for marketing sends (e.g. 09:00 to 20:00, not on
Sundays; or overnight, 21:00 until 08:00 the next morning), inherited down the tree unless
an account sets its own, applied in the RECIPIENT's time zone as phonenumbers tells it from
the number, by the local wall clock (DST included). A number whose region spans several
zones (+61 mobiles: Perth to Sydney) waits for the first moment that is inside the window
in all of them. A message that would go in quiet hours is held until then. A day with no
sends is the whole local day, also for an overnight window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from tenants import clock
from tenants.accounts import tree as accounts_tree
from tenants.audit import record as audit
from tenants.db import transaction
from tenants.errors import ValidationFailed
from tenants.messaging.recurrence import WEEKDAY_NAMES, local_instant
from tenants.messaging.tables import Message, QuietHours

# Searching further than this for a window safe in every zone of a number means there is
# none (a +1 toll-free number spans Guam to Hawaii): its first zone decides alone.
SEARCH_DAYS = 8
_PREFIX_DIGITS = 6
_zones_by_prefix: dict[str, tuple[ZoneInfo, ...]] = {}


@dataclass(frozen=True)
class QuietWindow:
    enabled: bool
    start: time
    end: time
    days: frozenset[int]  # weekdays (Monday = 0) with no sends at all
    from_account_id: int | None  # whose setting this is (None: nobody set one)

    @property
    def overnight(self) -> bool:
        """The window runs past midnight (21:00 to 08:00: from 21:00 until 08:00 the next
        morning; each local day is open from 00:00 to 08:00 and from 21:00 on)."""
        return self.end < self.start

    def describe(self) -> str:
        if not self.enabled:
            return "No quiet hours"
        days = ", ".join(WEEKDAY_NAMES[d] for d in sorted(self.days))
        text = f"Sends go {self.start:%H:%M} to {self.end:%H:%M}"
        text += " (overnight)" if self.overnight else ""
        text += " in the recipient's time"
        return text + (f", never on {days}" if days else "")

    def allows(self, instant: datetime, zone: ZoneInfo) -> bool:
        local = instant.astimezone(zone)
        if local.weekday() in self.days:
            return False
        if self.overnight:
            return local.time() >= self.start or local.time() < self.end
        return self.start <= local.time() < self.end

    def next_in_zone(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """The first allowed moment at or after `instant` in one zone: the window opens at
        its start each open day (and, overnight, at midnight too)."""
        if self.allows(instant, zone):
            return instant
        day = instant.astimezone(zone).date()
        starts = (time(0), self.start) if self.overnight else (self.start,)
        for _ in range(SEARCH_DAYS + 1):
            if day.weekday() not in self.days:
                for at in starts:
                    opens = opening(day, at, zone)
                    if opens >= instant and self.allows(opens, zone):
                        return opens
            day += timedelta(days=1)
        return instant  # every day is closed: validation refuses that, keep it sending

    def release_time(self, instant: datetime, zones: Sequence[ZoneInfo]) -> datetime:
        """The first moment at or after `instant` allowed in every zone (a fixed point:
        move to the latest zone's next opening until all agree)."""
        if not self.enabled or not zones:
            return instant
        candidate = instant
        limit = instant + timedelta(days=SEARCH_DAYS)
        while candidate <= limit:
            later = max(self.next_in_zone(candidate, z) for z in zones)
            if later == candidate:
                return candidate
            candidate = later
        return self.next_in_zone(instant, zones[0])


def opening(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant the local clock first reads `at` or later on `day`: `at` itself, or, when
    the clocks skip over it (DST starts), the moment they jump (found to the second)."""
    wall = datetime.combine(day, at)
    after = local_instant(day, at, zone)  # a skipped time read with the offset before it
    if after.astimezone(zone).replace(tzinfo=None) == wall:
        return after
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # ... and with the one after
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before).total_seconds() // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after


NO_QUIET_HOURS = QuietWindow(False, time(0), time(0), frozenset(), None)


def _window(row: dict[str, object]) -> QuietWindow:
    days = frozenset(
        int(d)
        for d in str(row["days"] or "").split(",")
        if d.strip().isascii() and d.strip().isdigit()
    )
    return QuietWindow(
        bool(row["enabled"]),
        time.fromisoformat(str(row["start"])),
        time.fromisoformat(str(row["end"])),
        days,
        int(str(row["account_id"])),
    )


async def effective_quiet_hours(account_id: int) -> QuietWindow:
    """The account's own quiet hours, else the nearest ancestor's, else none."""
    account = await accounts_tree.get_account(account_id)
    chain = [*account.ancestor_ids, account.id]
    rows = await QuietHours.select().where(QuietHours.account_id.is_in(chain))
    by_account = {r["account_id"]: r for r in rows}
    for candidate in reversed(chain):
        if candidate in by_account:
            return _window(by_account[candidate])
    return NO_QUIET_HOURS


def _parse_time(value: str, field: str, errors: dict[str, str]) -> time | None:
    try:
        parsed = time.fromisoformat(value.strip())
    except ValueError:
        errors[field] = "Write the time as HH:MM."
        return None
    return parsed.replace(second=0, microsecond=0)


def validate_window(start: str, end: str, days: Sequence[int]) -> tuple[time, time, list[int]]:
    errors: dict[str, str] = {}
    opens = _parse_time(start, "start", errors)
    closes = _parse_time(end, "end", errors)
    if opens is not None and opens == closes:
        errors["end"] = (
            "The window must end at another time than it starts (after midnight is fine)."
        )
    if any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
        errors["days"] = "Days are weekdays 0 (Monday) to 6 (Sunday)."
    elif len(set(days)) == 7:
        errors["days"] = "At least one day must allow sending."
    if errors:
        raise ValidationFailed(errors)
    assert opens is not None and closes is not None
    return opens, closes, sorted(set(days))


async def set_quiet_hours(
    actor: audit.Actor,
    account_id: int,
    *,
    enabled: bool,
    start: str = "09:00",
    end: str = "20:00",
    days: Sequence[int] = (6,),
) -> QuietWindow:
    """The account's own quiet hours (overriding any inherited); `enabled` False sets
    "none here" for this account and those that inherit from it."""
    opens, closes, day_list = validate_window(start, end, days)
    values: dict[str, Any] = {
        "enabled": enabled,
        "start": opens.strftime("%H:%M"),
        "end": closes.strftime("%H:%M"),
        "days": ",".join(map(str, day_list)),
    }
    async with transaction():
        before = await QuietHours.select().where(QuietHours.account_id == account_id).first()
        await QuietHours.delete().where(QuietHours.account_id == account_id)
        await QuietHours.insert(QuietHours(account_id=account_id, **values))
        await audit.record(
            actor,
            account_id=account_id,
            action="quiet_hours.set",
            target_type="account",
            target_id=account_id,
            before={k: before[k] for k in values} if before else None,
            after=values,
        )
    return await effective_quiet_hours(account_id)


async def inherit_quiet_hours(actor: audit.Actor, account_id: int) -> QuietWindow:
    """Drop the account's own setting: it inherits again."""
    async with transaction():
        deleted = (
            await QuietHours.delete()
            .where(QuietHours.account_id == account_id)
            .returning(QuietHours.id)
        )
        if deleted:
            await audit.record(
                actor,
                account_id=account_id,
                action="quiet_hours.inherit",
                target_type="account",
                target_id=account_id,
            )
    return await effective_quiet_hours(account_id)


def _zone_key(e164: str) -> str:
    """The number's calling code and first national digits: what its zones depend on
    (the zone data and the number-type patterns go by leading digits; numbers reach here
    already validated), so phonenumbers is asked once per prefix, not once per number."""
    digits = e164[1:]
    for size in (1, 2, 3):
        if int(digits[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[: size + _PREFIX_DIGITS]
    return digits


def _zones(e164: str) -> tuple[ZoneInfo, ...]:
    key = _zone_key(e164)
    zones = _zones_by_prefix.get(key)
    if zones is None:
        try:
            names = phone_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
        except phonenumbers.NumberParseException:
            names = ()
        found = []
        for name in names:
            try:
                found.append(ZoneInfo(name))
            except (ZoneInfoNotFoundError, ValueError):  # "Etc/Unknown"
                continue
        zones = tuple(found)
        if len(_zones_by_prefix) < 200_000:
            _zones_by_prefix[key] = zones
    return zones


def zones_for_number(e164: str, fallback: ZoneInfo) -> tuple[ZoneInfo, ...]:
    """The recipient's possible time zones (phonenumbers); the account's when unknown."""
    return _zones(e164) or (fallback,)


def hold_until(
    window: QuietWindow, instant: datetime, numbers: Sequence[str], fallback: ZoneInfo
) -> dict[str, datetime]:
    """The numbers that would get a message in quiet hours at `instant`, each with the
    time it is held until (worked out once per distinct set of zones)."""
    if not window.enabled:
        return {}
    by_zones: dict[tuple[ZoneInfo, ...], datetime] = {}
    held: dict[str, datetime] = {}
    for e164 in numbers:
        zones = zones_for_number(e164, fallback)
        release = by_zones.get(zones)
        if release is None:
            release = by_zones[zones] = window.release_time(instant, zones)
        if release > instant:
            held[e164] = release
    return held


@dataclass(frozen=True)
class HeldMessage:
    id: int
    batch_id: int | None
    to: str
    body: str
    held_until: datetime


async def held_messages(account_id: int, limit: int = 200) -> list[HeldMessage]:
    """The account's messages waiting for quiet hours to end, soonest release first."""
    rows = (
        await Message.select(
            Message.id, Message.batch_id, Message.to_number, Message.body, Message.held_until
        )
        .where(
            (Message.account_id == account_id)
            & (Message.status == "enqueued")
            & (Message.held_until > clock.now())
        )
        .order_by(Message.held_until)
        .limit(limit)
    )
    return [
        HeldMessage(r["id"], r["batch_id"], r["to_number"], r["body"], r["held_until"])
        for r in rows
    ]
