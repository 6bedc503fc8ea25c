"""The opt-out report: opt-outs counted by receiving account and period, with the ids of
the contact records they concern, never numbers or names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tenants.accounts.tables import Account
from tenants.accounts.tree import get_account
from tenants.consent.tables import ConsentEvent
from tenants.contacts.tables import Contact

PERIODS = ("day", "week", "month")


@dataclass
class ReportRow:
    account_id: int
    account_name: str
    period: str  # 2026-11-22, 2026-W47 or 2026-11
    opt_outs: int
    contact_ids: list[int] = field(default_factory=list)


def period_label(at: datetime, period: str) -> str:
    if period == "day":
        return at.date().isoformat()
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{at.year}-{at.month:02d}"


async def opt_out_report(
    account_id: int,
    *,
    period: str = "month",
    since: date | None = None,
    until: date | None = None,
    contact_ids_for: set[int] | None = None,
) -> list[ReportRow]:
    """Opt-outs received by `account_id` and its descendants between `since` and `until`
    (inclusive dates, UTC). Contact ids are listed only for the accounts in
    `contact_ids_for` (those whose contacts the caller may read); others show counts."""
    if period not in PERIODS:
        period = "month"
    root = await get_account(account_id)
    accounts = {
        r["id"]: r["name"]
        for r in await Account.select(Account.id, Account.name).where(
            Account.path.like(root.path + "%")
        )
    }
    where = ConsentEvent.account_id.is_in(list(accounts)) & (ConsentEvent.action == "opt_out")
    if since is not None:
        where = where & (
            ConsentEvent.at >= datetime(since.year, since.month, since.day, tzinfo=UTC)
        )
    if until is not None:
        end = until + timedelta(days=1)
        where = where & (ConsentEvent.at < datetime(end.year, end.month, end.day, tzinfo=UTC))
    events = await ConsentEvent.select(
        ConsentEvent.account_id, ConsentEvent.phone, ConsentEvent.at
    ).where(where)
    readable = contact_ids_for or set()
    wanted = {(e["account_id"], e["phone"]) for e in events if e["account_id"] in readable}
    contact_of: dict[tuple[int, str], int] = {}
    keys = sorted(f"{a}|{p}" for a, p in wanted)
    for start in range(0, len(keys), 5000):
        for r in await Contact.select(Contact.id, Contact.account_id, Contact.phone).where(
            Contact.account_phone.is_in(keys[start : start + 5000])
        ):
            contact_of[(r["account_id"], r["phone"])] = r["id"]
    rows: dict[tuple[int, str], ReportRow] = {}
    for e in events:
        label = period_label(e["at"], period)
        row = rows.setdefault(
            (e["account_id"], label),
            ReportRow(e["account_id"], accounts[e["account_id"]], label, 0),
        )
        row.opt_outs += 1
        contact_id = contact_of.get((e["account_id"], e["phone"]))
        if contact_id is not None and contact_id not in row.contact_ids:
            row.contact_ids.append(contact_id)
    for row in rows.values():
        row.contact_ids.sort()
    return sorted(rows.values(), key=lambda r: (r.period, r.account_name), reverse=True)
