"""Reports pages: usage (counts by account, channel or status, with a chart and CSV) and
spend for finance (ledger sums per account, CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants
from portal.charts import Chart, horizontal_bars, stacked_columns
from portal.pages import csv_download, csv_safe, render
from tenants.accounts import tree as accounts
from tenants.accounts.tree import AccountView
from tenants.errors import ValidationFailed
from tenants.links import links
from tenants.messaging import recurring
from tenants.reports import consent, spend, usage

PAGE_GROUPS = ("account", "channel", "status", "country", "sender")


@dataclass(frozen=True)
class Picked:
    """What the period picker and the grouping chose, as the form shows them again."""

    kind: str
    start: str
    end: str
    group_by: str
    period: usage.Period | None
    errors: dict[str, str]

    def query(self, **extra: str) -> str:
        values = {"period": self.kind, "group_by": self.group_by, **extra}
        if self.kind == "custom":
            values.update({"from": self.start, "to": self.end})
        return urlencode(values)


async def _pick(account: AccountView, params: dict[str, str]) -> Picked:
    kind = params.get("period") or "month"
    group_by = params.get("group_by") or "account"
    start, end = params.get("from", ""), params.get("to", "")
    errors: dict[str, str] = {}
    period = None
    if group_by not in PAGE_GROUPS:
        errors["group_by"] = f"Choose one of {', '.join(PAGE_GROUPS)}."
    try:
        period = usage.named_period(kind, await usage.today_in(account.id), start, end)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if period is not None and kind != "custom":
        start, end = period.start.isoformat(), period.end.isoformat()
    return Picked(kind, start, end, group_by, period if not errors else None, errors)


def _params(request: HTMXRequest) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if isinstance(v, str)}


async def _labels(root: AccountView) -> dict[int, str]:
    return {a.id: a.name for a in await accounts.subtree(root.id)}


def _label(row: usage.UsageRow, group_by: str, names: dict[int, str]) -> str:
    if group_by == "account":
        return names.get(row.account_id or 0, f"#{row.account_id}")
    if group_by == "country":
        return row.country or "unknown"
    if group_by == "sender":
        if row.sender == usage.OTHER_SENDERS:
            return "sub-accounts' senders"
        return row.sender or "provider default"
    return ((row.channel if group_by == "channel" else row.status) or "").replace("_", " ")


def daily_chart(report: usage.UsageReport) -> Chart:
    """Messages per day stacked by status, final statuses first (report by day, status)."""
    days = report.period.days
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = {}
    for r in report.rows:
        values = series.setdefault(r.status or "", [0] * len(days))
        if r.day in index:
            values[index[r.day]] += r.counts.messages
    ordered = [(s, series[s]) for s in sorted(series, key=_status_order)]
    return stacked_columns(
        "Messages per day by status", [d.strftime("%d %b") for d in days], ordered
    )


def _status_order(status: str) -> int:
    order = (*usage.FINAL_STATUSES, *usage.IN_FLIGHT_STATUSES)
    return order.index(status) if status in order else len(order)


class ReportsController(Controller):
    path = "/reports"

    @get("/", opt={"permission": "reports.view"}, name="reports-usage")
    async def usage_page(self, request: HTMXRequest) -> Any:
        grants = current_grants(request)
        root = grants.account
        picked = await _pick(root, _params(request))
        context: dict[str, Any] = {"picked": picked, "groups": PAGE_GROUPS, "rows": []}
        if picked.period is not None:
            grouped = await usage.usage_report(
                root, picked.period, (picked.group_by,), senders_of=senders_of(grants)
            )
            by_day = await usage.usage_report(root, picked.period, ("day", "status"))
            names = await _labels(root)
            items = [(_label(r, picked.group_by, names), r.counts.messages) for r in grouped.rows]
            context.update(
                rows=[(_label(r, picked.group_by, names), r.counts) for r in grouped.rows],
                totals=grouped.totals,
                chart=horizontal_bars(f"Messages by {picked.group_by}", items),
                daily=daily_chart(by_day),
                daily_rows=daily_table(by_day),
                runs=await recurring.count_runs(root, picked.period.start, picked.period.end),
                clicks=await links.clicks_by_day(root, picked.period.start, picked.period.end),
            )
        return await render(
            request,
            "reports.html.jinja",
            context,
            block="report",
            status_code=422 if picked.errors else 200,
        )

    @get("/usage.csv", opt={"permission": "reports.view"})
    async def usage_csv(self, request: HTMXRequest) -> Response[str]:
        grants = current_grants(request)
        root = grants.account
        picked = await _pick(root, _params(request))
        if picked.period is None:
            raise ValidationFailed(picked.errors)
        report = await usage.usage_report(
            root, picked.period, ("day", picked.group_by), senders_of=senders_of(grants)
        )
        names = await _labels(root)
        return csv_download(
            f"usage-{root.slug}-{picked.period.start}-{picked.period.end}.csv",
            ["day", picked.group_by, "messages", "segments", "credits"],
            (
                [
                    r.day.isoformat() if r.day else "",
                    csv_safe(_label(r, picked.group_by, names)),
                    r.counts.messages,
                    r.counts.segments,
                    r.counts.credits,
                ]
                for r in report.rows
            ),
        )

    @get("/spend", opt={"permission": "credits.view"}, name="reports-spend")
    async def spend_page(self, request: HTMXRequest) -> Any:
        root = current_grants(request).account
        picked = await _pick(root, {**_params(request), "group_by": "account"})
        context: dict[str, Any] = {"picked": picked}
        if picked.period is not None:
            report = await spend.spend_report(root, picked.period)
            context.update(report=report)
        return await render(
            request,
            "reports_spend.html.jinja",
            context,
            block="spend",
            status_code=422 if picked.errors else 200,
        )

    @get("/spend.csv", opt={"permission": "credits.view"})
    async def spend_csv(self, request: HTMXRequest) -> Response[str]:
        root = current_grants(request).account
        picked = await _pick(root, {**_params(request), "group_by": "account"})
        if picked.period is None:
            raise ValidationFailed(picked.errors)
        report = await spend.spend_report(root, picked.period)
        return csv_download(
            f"spend-{root.slug}-{picked.period.start}-{picked.period.end}.csv",
            [
                "account_id",
                "account",
                "purchases",
                "adjustments",
                "allocated_in",
                "allocated_out",
                "spent",
                "refunded",
                "net",
            ],
            (
                [
                    r.account_id or "",
                    csv_safe(r.name),
                    r.purchases,
                    r.adjustments,
                    r.allocated_in,
                    r.allocated_out,
                    r.spent,
                    r.refunded,
                    r.net,
                ]
                for r in [*report.rows, report.totals]
            ),
        )


def senders_of(grants: Any) -> int | None:
    """Whose senders (From numbers, sender IDs) the usage report may name: every account's
    for a reader of sub-accounts' data (or the operator); else only the reader's own."""
    if grants.is_operator or grants.decide("subaccounts.read_data").allowed:
        return None
    return int(grants.account.id)


def contacts_allowed(grants: Any, target: AccountView) -> bool:
    """Contact record ids are the account's data: listed with contacts.view, and for a
    sub-account only where the caller may also read sub-accounts' data."""
    if grants.is_operator:
        return True
    if not grants.decide("contacts.view").allowed:
        return False
    return target.id == grants.account.id or grants.decide("subaccounts.read_data").allowed


async def _consent(request: HTMXRequest) -> tuple[Picked, str, consent.ConsentReport | None]:
    grants = current_grants(request)
    params = _params(request)
    picked = await _pick(grants.account, {**params, "group_by": "account"})
    errors = dict(picked.errors)
    bucket = params.get("bucket") or "month"
    try:
        consent.parse_bucket(bucket)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors or picked.period is None:
        return Picked(**{**picked.__dict__, "period": None, "errors": errors}), bucket, None
    report = await consent.consent_report(
        grants.account,
        picked.period,
        bucket,
        with_contacts=contacts_allowed(grants, grants.account),
    )
    return picked, bucket, report


class ConsentReportController(Controller):
    path = "/reports"

    @get("/consent", opt={"permission": "reports.view"}, name="reports-consent")
    async def consent_page(self, request: HTMXRequest) -> Any:
        picked, bucket, report = await _consent(request)
        return await render(
            request,
            "reports_consent.html.jinja",
            {"picked": picked, "bucket": bucket, "buckets": consent.BUCKETS, "report": report},
            block="consent",
            status_code=422 if picked.errors else 200,
        )

    @get("/consent.csv", opt={"permission": "reports.view"})
    async def consent_csv(self, request: HTMXRequest) -> Response[str]:
        picked, bucket, report = await _consent(request)
        if report is None:
            raise ValidationFailed(picked.errors)
        root = current_grants(request).account
        return csv_download(
            f"consent-{root.slug}-{report.period.start}-{report.period.end}.csv",
            ["period", "origin", "source", "opt_outs", "contact_ids"],
            (
                [r.period, r.origin, r.source, r.opt_outs, " ".join(map(str, r.contact_ids))]
                for r in report.rows
            ),
        )


def daily_table(report: usage.UsageReport) -> list[tuple[str, dict[str, int], int]]:
    """The chart's table equivalent: per day, messages by status and in all."""
    days: dict[str, dict[str, int]] = {d.isoformat(): {} for d in report.period.days}
    for r in report.rows:
        if r.day is not None:
            days[r.day.isoformat()][r.status or ""] = r.counts.messages
    return [(d, by, sum(by.values())) for d, by in days.items()]
