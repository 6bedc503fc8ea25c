"""When a recurring send runs: daily, weekly on chosen days, or monthly (a day of the month
or the last weekday), at a wall-clock time in a time zone, until a date or a count.

Pure functions over plain values. Each run is a local date plus the local time made into
an aware datetime with zoneinfo, so a daylight-saving change keeps the wall-clock time; a
local time that does not exist that day (the hour skipped in spring) moves forward by
the gap, one that exists twice (autumn) as its first occurrence."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

FREQUENCIES = ("daily", "weekly", "monthly")
LAST_WEEKDAY = 0  # month_day 0: the last Monday-to-Friday of the month
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Looking further than this for a next run means the rule has none (it ended).
HORIZON_DAYS = 366 * 5


@dataclass(frozen=True)
class Rule:
    frequency: str
    local_time: time
    zone: ZoneInfo
    start: date
    weekdays: frozenset[int] = frozenset()
    month_day: int = 1
    until: date | None = None
    max_runs: int | None = None

    def describe(self) -> str:
        at = self.local_time.strftime("%H:%M")
        if self.frequency == "daily":
            what = "Every day"
        elif self.frequency == "weekly":
            what = "Every " + ", ".join(WEEKDAY_NAMES[d] for d in sorted(self.weekdays))
        elif self.month_day == LAST_WEEKDAY:
            what = "Monthly on the last weekday"
        else:
            what = f"Monthly on day {self.month_day}"
        end = ""
        if self.until:
            end = f", until {self.until.isoformat()}"
        if self.max_runs:
            end += f", {self.max_runs} runs"
        return f"{what} at {at} ({self.zone.key}){end}"


def last_weekday(year: int, month: int) -> date:
    day = date(year, month, calendar.monthrange(year, month)[1])
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _runs_on(rule: Rule, day: date) -> bool:
    if rule.frequency == "daily":
        return True
    if rule.frequency == "weekly":
        return day.weekday() in rule.weekdays
    if rule.month_day == LAST_WEEKDAY:
        return day == last_weekday(day.year, day.month)
    # Day 31 in a 30-day month runs on its last day.
    return day.day == min(rule.month_day, calendar.monthrange(day.year, day.month)[1])


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local day (see the module docstring)."""
    # fold=0 reads a time in a gap with the offset before it (02:30 becomes 03:30 when
    # 02:00 jumps to 03:00) and a repeated time as its first occurrence.
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def runs_from(rule: Rule, after: datetime) -> Iterator[datetime]:
    """Run instants (UTC) strictly after `after`, within the rule's dates, in order."""
    day = max(rule.start, after.astimezone(rule.zone).date())
    last = day + timedelta(days=HORIZON_DAYS)
    while day <= last and (rule.until is None or day <= rule.until):
        if _runs_on(rule, day):
            instant = local_instant(day, rule.local_time, rule.zone)
            if instant > after:
                yield instant
        day += timedelta(days=1)


def next_run(rule: Rule, after: datetime, runs_counted: int = 0) -> datetime | None:
    """The first run after `after`, or None when the rule has ended (date or count)."""
    if rule.max_runs is not None and runs_counted >= rule.max_runs:
        return None
    return next(runs_from(rule, after), None)


def upcoming(rule: Rule, first: datetime | None, runs_counted: int, count: int) -> list[datetime]:
    """Up to `count` runs starting with `first` (the schedule's next run), within the count."""
    if first is None:
        return []
    left = count if rule.max_runs is None else min(count, rule.max_runs - runs_counted)
    found: list[datetime] = []
    moment = first - timedelta(microseconds=1)
    for instant in runs_from(rule, moment):
        if len(found) >= left:
            break
        found.append(instant)
    return found
