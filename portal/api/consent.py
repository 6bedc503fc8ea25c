"""/api/v1/consent: a number's consent trace, and recording an opt-out or opt-in."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from portal.api.accounts import _body, _opt_str
from portal.auth import current_grants, request_actor
from tenants.consent import events as consent_events
from tenants.errors import ValidationFailed


def trace_json(trace: consent_events.ConsentExplanation) -> dict[str, Any]:
    return {
        "phone": trace.phone,
        "channel_group": trace.channel_group,
        "status": trace.status,
        "scope_account_id": trace.scope_account_id,
        "globally_suppressed": trace.globally_suppressed,
        # Oldest first, like a message's events.
        "events": [
            {
                "action": e.action,
                "source": e.source,
                "account_id": e.account_id,
                "at": e.at.isoformat(),
            }
            for e in reversed(trace.history)
        ],
    }


class ConsentApi(Controller):
    @get("/consent/{phone:str}", opt={"permission": "contacts.view"})
    async def show(self, request: Request[Any, Any, Any], phone: str, channel: str = "sms") -> Any:
        account = current_grants(request).account
        return trace_json(await consent_events.explain(account.id, phone, channel))

    @post("/consent", opt={"permission": "consent.manage"}, status_code=201)
    async def record(self, request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
        body = _body(data)
        account = current_grants(request).account
        phone = _opt_str(body, "phone") or ""
        action = _opt_str(body, "action")
        channel = _opt_str(body, "channel") or "sms"
        note = _opt_str(body, "note") or ""
        if not phone:
            raise ValidationFailed({"phone": "A phone number is required."})
        if action not in consent_events.ACTIONS:
            raise ValidationFailed({"action": "Action must be 'opt_out' or 'opt_in'."})
        record = (
            consent_events.record_opt_out if action == "opt_out" else consent_events.record_opt_in
        )
        changed = await record(
            account.id,
            phone,
            channel,
            source="api",
            note=note,
            actor=request_actor(request),
        )
        trace = await consent_events.explain(account.id, phone, channel)
        return trace_json(trace) | {"changed": changed}
