"""The usage report: counts of outbound messages, segments and credits over a period,
grouped by any of day, account, channel, status, country and sender, read from the
roll-ups (never from the messages). Counts only: no number and no text of any message leaves this module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any, NamedTuple

from tenants.accounts.tree import AccountView, timezones
from tenants.clock import now
from tenants.db import run_sql
from tenants.errors import ValidationFailed

GROUPS = ("day", "account", "channel", "status", "country", "sender")
_GROUP_COLUMNS = {
    "day": "r.day",
    "account": "r.account_id",
    "channel": "r.channel",
    "status": "r.status",
    "country": "r.country",
    "sender": "r.sender",
}
# Groupings only the route roll-ups hold; reports by day and account only read the fewest
# rows, usage_daily's; by country or sender without channel or status, usage_route_daily's;
# the others usage_rollup's, or usage_route_rollup's (every grouping at once).
ROUTE_GROUPS = ("country", "sender")
DAILY_GROUPS = ("day", "account")
ROUTE_DAILY_GROUPS = ("day", "account", "country", "sender")
MAX_DAYS = 400
# Where a message ends: what the dashboard stacks, and what counts as delivered.
FINAL_STATUSES = ("delivered", "read", "failed", "rejected", "enqueued_failed")
IN_FLIGHT_STATUSES = ("enqueued", "sent")
DELIVERED_STATUSES = ("delivered", "read")
REFUNDED_STATUSES = ("rejected", "enqueued_failed")


@dataclass(frozen=True)
class Period:
    """Days from `start` to `end`, both included, in each account's time zone."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True, slots=True)
class Counts:
    messages: int = 0
    segments: int = 0
    credits: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.messages + other.messages,
            self.segments + other.segments,
            self.credits + other.credits,
        )


class UsageRow(NamedTuple):
    """One group of a report. A tuple, not a frozen dataclass: a report by day, account
    and status over a quarter has ~30k rows, and a frozen dataclass costs ~3.5 us each to
    make (one object.__setattr__ per field), a tuple a tenth of it."""

    counts: Counts
    day: date | None = None
    account_id: int | None = None
    channel: str | None = None
    status: str | None = None
    country: str | None = None  # ISO region of the recipients ("" when unknown)
    sender: str | None = None  # the From number or sender ID ("" for the provider's default)


@dataclass(frozen=True)
class UsageReport:
    period: Period
    group_by: tuple[str, ...]
    rows: list[UsageRow]

    @property
    def totals(self) -> Counts:
        total = Counts()
        for row in self.rows:
            total += row.counts
        return total


def parse_day(value: str | None, field: str) -> date:
    if not value:
        raise ValidationFailed({field: "Required: a day as YYYY-MM-DD."})
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed({field: "A day as YYYY-MM-DD."}) from None


def parse_period(start: str | None, end: str | None) -> Period:
    """`from` and `to` as YYYY-MM-DD, `to` not before `from`, at most MAX_DAYS days."""
    period = Period(parse_day(start, "from"), parse_day(end, "to"))
    if period.end < period.start:
        raise ValidationFailed({"to": "Must not be before from."})
    if (period.end - period.start).days >= MAX_DAYS:
        raise ValidationFailed({"to": f"A period covers at most {MAX_DAYS} days."})
    return period


def parse_group_by(value: str | None) -> tuple[str, ...]:
    """Comma separated names of GROUPS, each once, kept in the order given."""
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ValidationFailed(
            {"group_by": f"Unknown {', '.join(unknown)}; choose from {', '.join(GROUPS)}."}
        )
    if len(set(names)) != len(names):
        raise ValidationFailed({"group_by": "Name each grouping once."})
    return tuple(names)


PERIOD_KINDS = ("day", "week", "month", "custom")


def named_period(kind: str, today: date, start: str | None, end: str | None) -> Period:
    """The period picker: today, the last 7 days, this month so far, or from..to."""
    if kind == "day":
        return Period(today, today)
    if kind == "week":
        return Period(today - timedelta(days=6), today)
    if kind == "month":
        return Period(today.replace(day=1), today)
    if kind == "custom":
        return parse_period(start, end)
    raise ValidationFailed({"period": f"Choose one of {', '.join(PERIOD_KINDS)}."})


async def today_in(account_id: int) -> date:
    """Today's date where the account is (its time zone)."""
    return today_where((await timezones([account_id])).get(account_id))


def today_where(zone: tzinfo | None) -> date:
    """Today's date in this time zone (an account's, from `timezones`)."""
    return now().astimezone(zone).date()


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _table(group_by: tuple[str, ...]) -> str:
    """The roll-up with the fewest rows that holds every grouping asked for."""
    if set(group_by) <= set(DAILY_GROUPS):
        return "usage_daily"
    if set(group_by) & set(ROUTE_GROUPS):
        return (
            "usage_route_daily"
            if set(group_by) <= set(ROUTE_DAILY_GROUPS)
            else "usage_route_rollup"
        )
    return "usage_rollup"


# The sender of a sub-account whose data the reader may not see: its numbers stay its own.
OTHER_SENDERS = "*"


def _columns(group_by: tuple[str, ...], senders_of: int | None) -> list[str]:
    for name in group_by:
        if name not in GROUPS:
            raise ValidationFailed({"group_by": f"Unknown {name}."})
    columns = {**_GROUP_COLUMNS}
    if senders_of is not None:
        columns["sender"] = (
            f"CASE WHEN r.account_id = {int(senders_of)} THEN r.sender ELSE '{OTHER_SENDERS}' END"
        )
    return [columns[g] for g in group_by]


async def usage_report(
    account: AccountView,
    period: Period,
    group_by: tuple[str, ...],
    *,
    subtree: bool = True,
    senders_of: int | None = None,
) -> UsageReport:
    """The account's usage (with its whole subtree unless `subtree` is False), summed per
    combination of `group_by`; groups that add up to nothing are left out. With
    `senders_of`, only that account's senders are named, every other one's summed as
    OTHER_SENDERS (for a reader who may not see sub-accounts' data)."""
    columns = _columns(group_by, senders_of)
    select = "".join(f"{c} AS {g}, " for c, g in zip(columns, group_by, strict=True))
    grouping = f" GROUP BY {', '.join(columns)}" if columns else ""
    ordering = f" ORDER BY {', '.join(columns)}" if columns else ""
    table = _table(group_by)
    if subtree:
        scope, arg = (
            "r.account_id IN (SELECT id FROM account WHERE path LIKE {})",
            account.path + "%",
        )
    else:
        scope, arg = "r.account_id = {}", account.id  # type: ignore[assignment]
    # The sums cast back to BIGINT: PostgreSQL's SUM of a BIGINT is a NUMERIC, read as a
    # Decimal per value, which costs more than the query when a report has 30k rows.
    rows = await run_sql(
        f"SELECT {select}CAST(SUM(r.messages) AS BIGINT) AS messages, "  # noqa: S608 (only names from GROUPS and an int are formatted in)
        "CAST(SUM(r.segments) AS BIGINT) AS segments, "
        f"CAST(SUM(r.credits) AS BIGINT) AS credits FROM {table} r WHERE {scope} "
        f"AND r.day >= {{}} AND r.day <= {{}}{grouping}{ordering}",
        arg,
        period.start,
        period.end,
    )
    by_day = "day" in group_by
    found = []
    for r in rows:
        counts = Counts(r["messages"] or 0, r["segments"] or 0, r["credits"] or 0)
        if not (counts.messages or counts.segments or counts.credits):
            continue
        found.append(
            UsageRow(
                counts,
                _as_date(r["day"]) if by_day else None,
                r.get("account"),
                r.get("channel"),
                r.get("status"),
                r.get("country"),
                r.get("sender"),
            )
        )
    return UsageReport(period=period, group_by=group_by, rows=found)
