"""/api/v1/consent: a number's consent trace, and recording an opt-out or opt-in."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Struct

from portal.api.schemas import Line, QueryLine, Text, documented
from portal.auth import current_grants, request_actor
from tenants.consent import events as consent_events
from tenants.errors import ValidationFailed


class ConsentEventOut(Struct):
    action: str
    source: str
    account_id: int
    at: str


class ConsentOut(Struct):
    phone: str
    channel_group: str
    status: str
    scope_account_id: int
    globally_suppressed: bool
    events: list[ConsentEventOut]


class ConsentRecorded(ConsentOut):
    changed: bool


class ConsentRecord(Struct):
    phone: Line
    action: Literal["opt_out", "opt_in"]
    channel: Line = "sms"
    note: Text = ""


def _events(trace: consent_events.ConsentExplanation) -> list[ConsentEventOut]:
    # Oldest first, like a message's events.
    return [
        ConsentEventOut(
            action=e.action, source=e.source, account_id=e.account_id, at=e.at.isoformat()
        )
        for e in reversed(trace.history)
    ]


def trace_json(trace: consent_events.ConsentExplanation) -> ConsentOut:
    return ConsentOut(
        phone=trace.phone,
        channel_group=trace.channel_group,
        status=trace.status,
        scope_account_id=trace.scope_account_id,
        globally_suppressed=trace.globally_suppressed,
        events=_events(trace),
    )


class ConsentApi(Controller):
    @get("/consent/{phone:str}", opt={"permission": "contacts.view"}, **documented())
    async def show(
        self, request: Request[Any, Any, Any], phone: FromPath[str], channel: QueryLine = None
    ) -> ConsentOut:
        account = current_grants(request).account
        return trace_json(await consent_events.explain(account.id, phone, channel or "sms"))

    @post("/consent", opt={"permission": "consent.manage"}, status_code=201, **documented(409))
    async def record(
        self, request: Request[Any, Any, Any], data: JSONBody[ConsentRecord]
    ) -> ConsentRecorded:
        account = current_grants(request).account
        if not data.phone:
            raise ValidationFailed({"phone": "A phone number is required."})
        record = (
            consent_events.record_opt_out
            if data.action == "opt_out"
            else consent_events.record_opt_in
        )
        channel = data.channel or "sms"
        changed = await record(
            account.id,
            data.phone,
            channel,
            source="api",
            note=data.note,
            actor=request_actor(request),
        )
        trace = await consent_events.explain(account.id, data.phone, channel)
        return ConsentRecorded(
            phone=trace.phone,
            channel_group=trace.channel_group,
            status=trace.status,
            scope_account_id=trace.scope_account_id,
            globally_suppressed=trace.globally_suppressed,
            events=_events(trace),
            changed=changed,
        )
