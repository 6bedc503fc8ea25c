"""The spend report for finance: purchases, adjustments, credits allocated in and out,
spend and refunds per account of a subtree over a period, summed from the ledger itself,
so each account's net equals the sum of its ledger rows in the period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from tenants.accounts.tables import Account
from tenants.accounts.tree import AccountView, path_ids, subtree, zone_named
from tenants.db import run_sql
from tenants.reports.usage import Period

TRANSFER_KINDS = frozenset({"allocate", "reclaim", "top_up"})


@dataclass
class SpendRow:
    account_id: int
    name: str
    slug: str
    depth: int
    purchases: int = 0
    adjustments: int = 0
    allocated_in: int = 0
    allocated_out: int = 0  # a negative number: credits that left for another account
    spent: int = 0  # positive: credits spent
    refunded: int = 0

    @property
    def net(self) -> int:
        """The change of the balance over the period: the sum of the ledger rows."""
        return (
            self.purchases
            + self.adjustments
            + self.allocated_in
            + self.allocated_out
            - self.spent
            + self.refunded
        )

    def add(self, kind: str, plus: int, minus: int) -> None:
        if kind == "purchase":
            self.purchases += plus + minus
        elif kind == "adjustment":
            self.adjustments += plus + minus
        elif kind in TRANSFER_KINDS:
            self.allocated_in += plus
            self.allocated_out += minus
        elif kind == "spend":
            self.spent -= plus + minus
        elif kind == "refund":
            self.refunded += plus + minus
        else:  # a kind added later still reconciles, as an adjustment
            self.adjustments += plus + minus


@dataclass
class SpendReport:
    period: Period
    start: datetime
    end: datetime
    rows: list[SpendRow] = field(default_factory=list)

    @property
    def totals(self) -> SpendRow:
        total = SpendRow(account_id=0, name="Total", slug="", depth=0)
        for r in self.rows:
            total.purchases += r.purchases
            total.adjustments += r.adjustments
            total.allocated_in += r.allocated_in
            total.allocated_out += r.allocated_out
            total.spent += r.spent
            total.refunded += r.refunded
        return total


async def local_bounds(account_id: int, period: Period) -> tuple[datetime, datetime]:
    """The period's first instant and the instant after its last day, in UTC, as the
    account's time zone counts days."""
    row = await Account.select(Account.timezone).where(Account.id == account_id).first()
    zone = zone_named((row or {}).get("timezone"))
    start = datetime.combine(period.start, time(), zone)
    end = datetime.combine(period.end + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


async def spend_report(account: AccountView, period: Period) -> SpendReport:
    """Every account of the subtree, parents before children, with its ledger sums."""
    start, end = await local_bounds(account.id, period)
    # Parents first, each followed by its own descendants.
    accounts = sorted(await subtree(account.id), key=lambda a: path_ids(a.path))
    by_id = {
        a.id: SpendRow(account_id=a.id, name=a.name, slug=a.slug, depth=a.depth - account.depth)
        for a in accounts
    }
    sums = await run_sql(
        "SELECT l.account_id, l.kind, "
        "SUM(CASE WHEN l.delta > 0 THEN l.delta ELSE 0 END) AS plus, "
        "SUM(CASE WHEN l.delta < 0 THEN l.delta ELSE 0 END) AS minus "
        "FROM credit_ledger l WHERE l.account_id IN "
        "(SELECT id FROM account WHERE path LIKE {}) "
        "AND l.created_at >= {} AND l.created_at < {} GROUP BY l.account_id, l.kind",
        account.path + "%",
        start,
        end,
    )
    for r in sums:
        row = by_id.get(r["account_id"])
        if row is not None:
            row.add(r["kind"], int(r["plus"] or 0), int(r["minus"] or 0))
    return SpendReport(period=period, start=start, end=end, rows=list(by_id.values()))
