"""The consent report that explains its numbers: the opt-outs that bind one account in a
period, split into those it received itself and those received elsewhere in its consent
scope (inherited through the account tree), by period and source. Only contact record ids
of the account's own contacts are listed: never a number or a text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from tenants.accounts.tree import AccountView, timezones, zone_named
from tenants.consent.events import SOURCES
from tenants.consent.scopes import resolve_consent_scope, scope_members
from tenants.consent.tables import ConsentEvent
from tenants.contacts.tables import Contact
from tenants.db import chunked
from tenants.errors import ValidationFailed
from tenants.reports.spend import local_bounds
from tenants.reports.usage import Period

BUCKETS = ("day", "week", "month")
ORIGINS = ("received", "inherited")


@dataclass
class ConsentRow:
    period: str  # 2026-11-22, 2026-W47 or 2026-11, in the account's time zone
    origin: str  # received by this account, or inherited from elsewhere in its scope
    source: str  # keyword, manual, api, import, operator or provider (a provider's report)
    opt_outs: int = 0
    contact_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ConsentReport:
    account_id: int
    period: Period
    bucket: str
    rows: list[ConsentRow]

    def total(self, origin: str | None = None) -> int:
        return sum(r.opt_outs for r in self.rows if origin in (None, r.origin))


def parse_bucket(value: str | None) -> str:
    bucket = (value or "month").strip()
    if bucket not in BUCKETS:
        raise ValidationFailed({"bucket": f"Choose one of {', '.join(BUCKETS)}."})
    return bucket


def bucket_label(day: date, bucket: str) -> str:
    if bucket == "day":
        return day.isoformat()
    if bucket == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


async def _own_contacts(account_id: int, phones: set[str]) -> dict[str, int]:
    """phone -> id of the account's own contact record with that number."""
    found: dict[str, int] = {}
    for part in chunked(sorted(f"{account_id}|{p}" for p in phones), 5000):
        rows = await Contact.select(Contact.id, Contact.phone).where(
            Contact.account_phone.is_in(list(part))
        )
        found.update({r["phone"]: r["id"] for r in rows})
    return found


async def consent_report(
    account: AccountView, period: Period, bucket: str = "month", *, with_contacts: bool = True
) -> ConsentReport:
    """Opt-outs binding `account` in `period` (days in its time zone): received by it, or by
    another account of its consent scope. `with_contacts` lists the ids of the account's
    own contact records they concern (counts only otherwise)."""
    members = await scope_members(await resolve_consent_scope(account.id)) or [account.id]
    start, end = await local_bounds(account.id, period)
    events = await ConsentEvent.select(
        ConsentEvent.account_id, ConsentEvent.phone, ConsentEvent.source, ConsentEvent.at
    ).where(
        ConsentEvent.account_id.is_in(sorted(set(members) | {account.id}))
        & (ConsentEvent.action == "opt_out")
        & (ConsentEvent.at >= start)
        & (ConsentEvent.at < end)
    )
    zone = (await timezones([account.id])).get(account.id) or zone_named(None)
    contacts = (
        await _own_contacts(account.id, {e["phone"] for e in events}) if with_contacts else {}
    )
    rows: dict[tuple[str, str, str], ConsentRow] = {}
    for e in events:
        label = bucket_label(e["at"].astimezone(zone).date(), bucket)
        origin = "received" if e["account_id"] == account.id else "inherited"
        row = rows.setdefault((label, origin, e["source"]), ConsentRow(label, origin, e["source"]))
        row.opt_outs += 1
        contact_id = contacts.get(e["phone"])
        if contact_id is not None and contact_id not in row.contact_ids:
            row.contact_ids.append(contact_id)
    for row in rows.values():
        row.contact_ids.sort()
    order = {s: i for i, s in enumerate(SOURCES)}
    ordered = sorted(
        rows.values(),
        key=lambda r: (r.period, ORIGINS.index(r.origin), order.get(r.source, len(order))),
    )
    return ConsentReport(account.id, period, bucket, ordered)
