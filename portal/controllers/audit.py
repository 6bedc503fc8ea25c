"""/audit: the audit log of the working account and its subtree, filterable."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, get
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants
from portal.pages import render
from tenants.accounts import tree as accounts
from tenants.audit import record as audit

PAGE_SIZE = 50


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class AuditController(Controller):
    path = "/audit"

    @get("/", opt={"permission": "audit.view"}, name="audit")
    async def index(
        self,
        request: HTMXRequest,
        action: FromQuery[str] = "",
        actor: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        before_id: FromQuery[int | None] = None,
    ) -> Any:
        root = current_grants(request).account
        names = {a.id: a.name for a in await accounts.subtree(root.id)}
        filters = audit.AuditFilter(
            action=action.strip(),
            actor=actor.strip(),
            since=_date(since),
            until=_date(until),
            before_id=before_id,
        )
        errors = {}
        if since and filters.since is None:
            errors["since"] = "Use a date like 2026-11-22."
        if until and filters.until is None:
            errors["until"] = "Use a date like 2026-11-22."
        events = await audit.list_events(names, filters, limit=PAGE_SIZE + 1)
        return await render(
            request,
            "audit.html.jinja",
            {
                "events": events[:PAGE_SIZE],
                "more": events[PAGE_SIZE - 1].id if len(events) > PAGE_SIZE else None,
                "actions": await audit.known_actions(list(names)),
                "filters": {"action": action, "actor": actor, "since": since, "until": until},
                "errors": errors,
            },
            block="results",
        )
