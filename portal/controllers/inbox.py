"""/inbox: the working account's conversations by phone with unread counts, a thread per
conversation, and inline replies through the normal send pipeline."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, parse_id
from portal.pages import render
from tenants.contacts.contacts import merge_values_by_phone
from tenants.errors import Conflict, ValidationFailed
from tenants.media.views import media_of_messages
from tenants.messaging import inbound
from tenants.messaging.accept import send_permissions
from tenants.templates.merge_fields import fields_in
from tenants.templates.merge_fields import render as render_merge_fields
from tenants.templates.templates import usable_templates

TEMPLATE = "inbox.html.jinja"
REASONS = {
    "opted_out": "the recipient opted out, so nothing was sent",
    "globally_suppressed": "the number is on the platform's suppression list",
    "invalid_number": "the number is not valid",
    "no_price": "there is no price for this destination",
}


async def _conversations(account_id: int) -> list[inbound.ConversationView]:
    """The conversation list, an automatic reply's preview shown as its person got it:
    merge fields filled from the contact, or their defaults (what a person wrote in is
    shown exactly as written)."""
    found = await inbound.conversations(account_id)
    raw = [c for c in found if c.last_direction == "out" and fields_in(c.last_body)]
    if not raw:
        return found
    values = await merge_values_by_phone(account_id, [c.phone for c in raw])
    rendered = {
        c.id: render_merge_fields(c.last_body, {"phone": c.phone, **values.get(c.phone, {})})
        for c in raw
    }
    return [replace(c, last_body=rendered[c.id]) if c.id in rendered else c for c in found]


async def _thread_context(
    request: HTMXRequest, conversation_id: int, **extra: Any
) -> dict[str, Any]:
    grants = current_grants(request)
    account = grants.account
    conversation = await inbound.get_conversation(account.id, conversation_id)
    thread = await inbound.thread(account.id, conversation_id)
    # A template-only user (Support) answers with an approved template.
    template_only = (
        not grants.decide("messages.send").allowed
        and grants.decide("messages.send_template").allowed
    )
    return {
        "conversation": conversation,
        "messages": thread,
        "media": await media_of_messages(account.id, [m.id for m in thread]),
        "reply_errors": {},
        "reply_body": "",
        "reply_template_id": "",
        "template_only": template_only,
        "templates": await usable_templates(account.id) if template_only else [],
        **extra,
    }


def _template_id(raw: str) -> int | None:
    """The chosen template's id; ValidationFailed naming the field when it is not a number."""
    raw = raw.strip()
    if not raw:
        return None
    if parse_id(raw) is None:
        raise ValidationFailed({"template_id": "Choose a template from the list."})
    return int(raw)


class InboxController(Controller):
    path = "/inbox"

    @get("/", opt={"permission": "messages.view"}, name="inbox")
    async def index(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        return await render(
            request,
            TEMPLATE,
            {"conversations": await _conversations(account.id), "conversation": None},
            block="conversations",
        )

    @get("/{conversation_id:int}", opt={"permission": "messages.view"})
    async def open(self, request: HTMXRequest, conversation_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        await inbound.mark_read(account.id, conversation_id)
        ctx = await _thread_context(request, conversation_id)
        ctx["conversations"] = await _conversations(account.id)
        # Opening a conversation also refreshes the list (its unread badge is gone).
        return await render(
            request, TEMPLATE, ctx, block="thread", headers={"HX-Trigger": "inbox-read"}
        )

    @post("/{conversation_id:int}/reply", opt={"permission": "messages.send_template"})
    async def reply(
        self,
        request: HTMXRequest,
        conversation_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        """Free text (`body`, needs messages.send) or an approved template (`template_id`);
        the send pipeline decides the permission (a template-only user's text is a 403)."""
        grants = current_grants(request)
        body = (data.get("body") or "").strip()
        raw_template = (data.get("template_id") or "").strip()
        kept = {"reply_body": body, "reply_template_id": raw_template}
        status = 201
        extra: dict[str, Any] = {}
        try:
            template_id = _template_id(raw_template)
            result = await inbound.reply(
                actor=request_actor(request),
                account_id=grants.account.id,
                conversation_id=conversation_id,
                body=body if body or template_id is None else None,
                template_id=template_id,
                permissions=send_permissions(grants),
            )
        except ValidationFailed as exc:
            field = "template_id" if "template_id" in exc.errors else "body"
            message = exc.errors.get(field) or next(iter(exc.errors.values()))
            extra = {"reply_errors": {field: message}, **kept}
            status = 422
        except Conflict as exc:
            extra = {"reply_errors": {"body": exc.message}, **kept}
            status = 409
        else:
            if not result.accepted:
                reasons = ", ".join(REASONS.get(r, r) for _, r in result.skipped)
                extra = {"reply_errors": {"body": f"Not sent: {reasons}."}, **kept}
                status = 409
            else:
                extra = {"sent": result.accepted[0]}
        if not request.htmx and status == 201:
            return Redirect(path=f"/inbox/{conversation_id}", status_code=303)
        ctx = await _thread_context(request, conversation_id, **extra)
        ctx["conversations"] = await _conversations(grants.account.id)
        return await render(request, TEMPLATE, ctx, block="thread", status_code=status)
