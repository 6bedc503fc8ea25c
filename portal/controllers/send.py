"""The send page: recipients, free text or an approved template, sender, channel, now or
later (account time zone); a summary before sending (dry run) and the send itself."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants, request_actor
from portal.controllers.composer import composition_for
from portal.forms import FORM
from portal.pages import render
from tenants.clock import now
from tenants.contacts import contacts
from tenants.errors import Conflict, ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging.accept import PAST_GRACE, SendRequest, send_permissions
from tenants.messaging.messages import CHANNELS
from tenants.numbers import numbers
from tenants.templates import templates

FIELDS = (
    "numbers",
    "tags",
    "mode",
    "body",
    "template_id",
    "variables",
    "sender",
    "channel",
    "when",
    "send_at",
    "campaign_name",
    "idempotency_key",
)
_SPLIT = re.compile(r"[\n,;]+")


def _variables(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name.strip()):
            raise ValidationFailed({"variables": f"Line {line_no}: write name=value."})
        values[name.strip()] = value.strip()
    return values


async def _options(request: Request[Any, Any, Any]) -> dict[str, Any]:
    account = current_grants(request).account
    lists = await contacts.contact_lists(account.id)
    tz = await sending.account_timezone(account.id)
    return {
        "templates": await templates.usable_templates(account.id, status="approved"),
        "lists": lists,
        "senders": await numbers.usable_senders(account.id),
        "default_sender": await numbers.default_sender(account.id),
        "channels": CHANNELS,
        "timezone": str(tz),
    }


async def _request_from_form(
    request: Request[Any, Any, Any], form: dict[str, str], list_ids: list[int]
) -> SendRequest:
    grants = current_grants(request)
    account = grants.account
    permissions = send_permissions(grants)
    errors: dict[str, str] = {}
    mode = form["mode"] or ("text" if "messages.send" in permissions else "template")
    body: str | None = None
    template_id: int | None = None
    if mode == "text":
        body = form["body"].replace("\r\n", "\n")
    else:
        try:
            template_id = int(form["template_id"])
        except ValueError:
            errors["template_id"] = "Choose an approved template."
    send_at = None
    if form["when"] == "later":
        try:
            local = datetime.fromisoformat(form["send_at"])
            send_at = local.replace(tzinfo=await sending.account_timezone(account.id))
        except ValueError:
            errors["send_at"] = "Choose the date and time to send."
        else:
            # A time already gone would send at once without a word; the person meant later.
            if send_at < now() - PAST_GRACE:
                errors["send_at"] = "That time has passed: choose a later one, or choose Now."
    try:
        variables = _variables(form["variables"])
    except ValidationFailed as exc:
        errors.update(exc.errors)
        variables = {}
    if errors:
        raise ValidationFailed(errors)
    return SendRequest(
        account_id=account.id,
        numbers=[n.strip() for n in _SPLIT.split(form["numbers"]) if n.strip()],
        list_ids=list_ids,
        tags=[t.strip() for t in form["tags"].split(",") if t.strip()],
        body=body,
        template_id=template_id,
        variables=variables,
        sender=form["sender"].strip(),
        channel=form["channel"] or "sms",
        send_at=send_at,
        campaign_name=form["campaign_name"].strip() or None,
        # The form carries a key made when it was shown: a double click sends once.
        idempotency_key=form["idempotency_key"][:64] or None,
        permissions=permissions,
    )


class SendController(Controller):
    path = "/send"

    @get("/", opt={"permission": "messages.send_template"}, name="send")
    async def page(self, request: HTMXRequest, to: FromQuery[str] = "") -> Any:
        """`?to=` fills the recipients (the "Send message" link on a contact's page)."""
        grants = current_grants(request)
        form = {k: "" for k in FIELDS}
        form.update(
            numbers=to.strip()[:40],
            channel="sms",
            when="now",
            mode="text" if grants.decide("messages.send") else "template",
            idempotency_key=uuid.uuid4().hex,
        )
        return await render(
            request,
            "send.html.jinja",
            {
                **(await _options(request)),
                "form": form,
                "list_ids": [],
                "errors": {},
                "c": await composition_for(request, ""),
            },
        )

    @post("/", opt={"permission": "messages.send_template"}, status_code=200)
    async def submit(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        raw = data or {}
        form = {
            k: str(raw.get(k) or "") if not isinstance(raw.get(k), list) else "" for k in FIELDS
        }
        list_values = raw.get("list_ids") or []
        if not isinstance(list_values, list):
            list_values = [list_values]
        list_ids = [int(v) for v in list_values if str(v).isdigit()]
        action = str(raw.get("action") or "preview")
        ctx: dict[str, Any] = {
            **(await _options(request)),
            "form": form,
            "list_ids": list_ids,
            "errors": {},
            "c": await composition_for(request, form["body"]),
        }
        status = 200
        try:
            req = await _request_from_form(request, form, list_ids)
            result = await sending.accept_send(
                req, actor=request_actor(request), dry_run=action != "send"
            )
            if not result.dry_run:
                status = 201
                form["idempotency_key"] = uuid.uuid4().hex
            ctx["result"] = result
        except ValidationFailed as exc:
            ctx["errors"] = exc.errors
            status = 422
        except Conflict as exc:
            ctx["errors"] = {"form": exc.message}
            status = 409
        return await render(request, "send.html.jinja", ctx, block="send_form", status_code=status)
