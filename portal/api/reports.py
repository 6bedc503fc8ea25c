"""/api/v1/reports: the usage report (counts only) and the consent report (counts and
contact record ids) of the key's account or a descendant."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter

from portal.api.schemas import LINE_MAX, LINE_PATTERN, QueryId, QueryLine, documented
from portal.auth import current_grants
from portal.controllers.reports import contacts_allowed, senders_of
from tenants.accounts import tree as accounts
from tenants.links import links
from tenants.reports import consent, usage


def _day_parameter(name: str) -> QueryParameter:
    return QueryParameter(
        name=name, pattern=LINE_PATTERN, max_length=LINE_MAX, description="A day as YYYY-MM-DD."
    )


class UsageQuery(msgspec.Struct, frozen=True):
    """The query string, validated: the period, the groupings and the account."""

    period: usage.Period
    group_by: tuple[str, ...]
    account_id: int | None = None

    @classmethod
    def parse(
        cls, start: str | None, end: str | None, group_by: str | None, account_id: int | None
    ) -> UsageQuery:
        return cls(
            period=usage.parse_period(start, end),
            group_by=usage.parse_group_by(group_by),
            account_id=account_id,
        )


class UsageTotals(msgspec.Struct, frozen=True):
    messages: int
    segments: int
    credits: int


class ClicksAnswer(msgspec.Struct, frozen=True, rename={"start": "from", "end": "to"}):
    """Requests for the tracked short links of the period: by people, and by bots."""

    start: str
    end: str
    clicks: int
    bot_clicks: int


class UsageRowOut(msgspec.Struct, frozen=True, omit_defaults=True):
    """One group: only the keys grouped by are present."""

    messages: int
    segments: int
    credits: int
    day: str | msgspec.UnsetType = msgspec.UNSET
    account_id: int | msgspec.UnsetType = msgspec.UNSET
    channel: str | msgspec.UnsetType = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET
    country: str | msgspec.UnsetType = msgspec.UNSET
    sender: str | msgspec.UnsetType = msgspec.UNSET


class UsageAnswer(msgspec.Struct, frozen=True, rename={"start": "from", "end": "to"}):
    start: str
    end: str
    rows: list[UsageRowOut]
    totals: UsageTotals


def usage_answer(report: usage.UsageReport) -> UsageAnswer:
    rows = [
        UsageRowOut(
            messages=r.counts.messages,
            segments=r.counts.segments,
            credits=r.counts.credits,
            day=r.day.isoformat() if r.day else msgspec.UNSET,
            account_id=r.account_id if r.account_id is not None else msgspec.UNSET,
            channel=r.channel if r.channel is not None else msgspec.UNSET,
            status=r.status if r.status is not None else msgspec.UNSET,
            country=r.country if r.country is not None else msgspec.UNSET,
            sender=r.sender if r.sender is not None else msgspec.UNSET,
        )
        for r in report.rows
    ]
    totals = report.totals
    return UsageAnswer(
        start=report.period.start.isoformat(),
        end=report.period.end.isoformat(),
        rows=rows,
        totals=UsageTotals(totals.messages, totals.segments, totals.credits),
    )


class ReportsApi(Controller):
    path = "/reports"

    @get("/usage", opt={"permission": "reports.view"}, **documented(404))
    async def usage(
        self,
        request: Request[Any, Any, Any],
        start: Annotated[str | None, _day_parameter("from")] = None,
        end: Annotated[str | None, _day_parameter("to")] = None,
        group_by: QueryLine = None,
        account_id: QueryId = None,
    ) -> UsageAnswer:
        query = UsageQuery.parse(start, end, group_by, account_id)
        grants = current_grants(request)
        root = grants.account
        target = (
            await accounts.get_in_subtree(root.id, query.account_id)
            if query.account_id is not None
            else root
        )
        report = await usage.usage_report(
            target, query.period, query.group_by, senders_of=senders_of(grants)
        )
        return usage_answer(report)

    @get("/clicks", opt={"permission": "reports.view"}, **documented(404))
    async def clicks(
        self,
        request: Request[Any, Any, Any],
        start: Annotated[str | None, _day_parameter("from")] = None,
        end: Annotated[str | None, _day_parameter("to")] = None,
        account_id: QueryId = None,
    ) -> ClicksAnswer:
        """Short link clicks of the account (or a descendant) and its subtree, per period."""
        period = usage.parse_period(start, end)
        root = current_grants(request).account
        target = (
            await accounts.get_in_subtree(root.id, account_id) if account_id is not None else root
        )
        found = await links.clicks_in_period(target, period.start, period.end)
        return ClicksAnswer(
            period.start.isoformat(), period.end.isoformat(), found.clicks, found.bot_clicks
        )


class ConsentRowOut(msgspec.Struct, frozen=True):
    period: str
    origin: str
    source: str
    opt_outs: int
    contact_ids: list[int]


class ConsentTotals(msgspec.Struct, frozen=True):
    opt_outs: int
    received: int
    inherited: int


class ConsentAnswer(msgspec.Struct, frozen=True, rename={"start": "from", "end": "to"}):
    account_id: int
    start: str
    end: str
    bucket: str
    rows: list[ConsentRowOut]
    totals: ConsentTotals


def consent_answer(report: consent.ConsentReport) -> ConsentAnswer:
    return ConsentAnswer(
        account_id=report.account_id,
        start=report.period.start.isoformat(),
        end=report.period.end.isoformat(),
        bucket=report.bucket,
        rows=[
            ConsentRowOut(r.period, r.origin, r.source, r.opt_outs, list(r.contact_ids))
            for r in report.rows
        ],
        totals=ConsentTotals(report.total(), report.total("received"), report.total("inherited")),
    )


class ConsentReportApi(Controller):
    path = "/reports"

    @get("/consent", opt={"permission": "reports.view"}, **documented(404))
    async def consent(
        self,
        request: Request[Any, Any, Any],
        start: Annotated[str | None, _day_parameter("from")] = None,
        end: Annotated[str | None, _day_parameter("to")] = None,
        bucket: QueryLine = None,
        account_id: QueryId = None,
    ) -> ConsentAnswer:
        period = usage.parse_period(start, end)
        chosen = consent.parse_bucket(bucket)
        grants = current_grants(request)
        target = (
            await accounts.get_in_subtree(grants.account.id, account_id)
            if account_id is not None
            else grants.account
        )
        report = await consent.consent_report(
            target, period, chosen, with_contacts=contacts_allowed(grants, target)
        )
        return consent_answer(report)
