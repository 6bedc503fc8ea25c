"""/inbox: the working account's conversations by phone with unread counts, a thread per
conversation, and inline replies through the normal send pipeline."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import render
from tenants.errors import Conflict, ValidationFailed
from tenants.messaging import inbound
from tenants.messaging.accept import send_permissions

TEMPLATE = "inbox.html.jinja"
REASONS = {
    "opted_out": "the recipient opted out, so nothing was sent",
    "globally_suppressed": "the number is on the platform's suppression list",
    "invalid_number": "the number is not valid",
    "no_price": "there is no price for this destination",
}


async def _thread_context(
    request: HTMXRequest, conversation_id: int, **extra: Any
) -> dict[str, Any]:
    account = current_grants(request).account
    conversation = await inbound.get_conversation(account.id, conversation_id)
    return {
        "conversation": conversation,
        "messages": await inbound.thread(account.id, conversation_id),
        "reply_errors": {},
        "reply_body": "",
        **extra,
    }


class InboxController(Controller):
    path = "/inbox"

    @get("/", opt={"permission": "messages.view"}, name="inbox")
    async def index(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        return await render(
            request,
            TEMPLATE,
            {"conversations": await inbound.conversations(account.id), "conversation": None},
            block="conversations",
        )

    @get("/{conversation_id:int}", opt={"permission": "messages.view"})
    async def open(self, request: HTMXRequest, conversation_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        await inbound.mark_read(account.id, conversation_id)
        ctx = await _thread_context(request, conversation_id)
        ctx["conversations"] = await inbound.conversations(account.id)
        # Opening a conversation also refreshes the list (its unread badge is gone).
        return await render(
            request, TEMPLATE, ctx, block="thread", headers={"HX-Trigger": "inbox-read"}
        )

    @post("/{conversation_id:int}/reply", opt={"permission": "messages.send"})
    async def reply(
        self,
        request: HTMXRequest,
        conversation_id: FromPath[int],
        data: Annotated[dict[str, str], FORM],
    ) -> Any:
        grants = current_grants(request)
        body = (data.get("body") or "").strip()
        status = 201
        extra: dict[str, Any] = {}
        try:
            result = await inbound.reply(
                actor=request_actor(request),
                account_id=grants.account.id,
                conversation_id=conversation_id,
                body=body,
                permissions=send_permissions(grants),
            )
        except ValidationFailed as exc:
            message = exc.errors.get("body") or next(iter(exc.errors.values()))
            extra = {"reply_errors": {"body": message}, "reply_body": body}
            status = 422
        except Conflict as exc:
            extra = {"reply_errors": {"body": exc.message}, "reply_body": body}
            status = 409
        else:
            if not result.accepted:
                reasons = ", ".join(REASONS.get(r, r) for _, r in result.skipped)
                extra = {"reply_errors": {"body": f"Not sent: {reasons}."}, "reply_body": body}
                status = 409
            else:
                extra = {"sent": result.accepted[0]}
        if not request.htmx and status == 201:
            return Redirect(path=f"/inbox/{conversation_id}", status_code=303)
        ctx = await _thread_context(request, conversation_id, **extra)
        ctx["conversations"] = await inbound.conversations(grants.account.id)
        return await render(request, TEMPLATE, ctx, block="thread", status_code=status)
