"""/api/v1/messages: send (202, Idempotency-Key), read one with its timeline, list."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post

from portal.auth import current_grants, request_actor
from tenants.errors import ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging import messages
from tenants.messaging.accept import SendRequest, SendResult, send_permissions
from tenants.messaging.messages import MessageFilter, MessageView


def message_json(m: MessageView, *, with_events: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": m.id,
        "to": m.to,
        "from": m.sender,
        "body": m.body,
        "status": m.status,
        "segments": m.segments,
        "encoding": m.encoding,
        "cost": m.cost,
        "channel": m.channel,
        "direction": m.direction,
        "batch_id": m.batch_id,
        "campaign_id": m.campaign_id,
        "error": m.error_code,
        "created_at": m.created_at.isoformat(),
    }
    if with_events:
        data["events"] = [
            {
                "status": e.status,
                "at": e.at.isoformat(),
                **({"error": e.error_code, "error_text": e.explanation} if e.error_code else {}),
                **({} if e.applied else {"applied": False}),
            }
            for e in m.events
        ]
    return data


def send_result_json(result: SendResult) -> dict[str, Any]:
    return {
        "batch_id": result.batch_id,
        "accepted": [
            {"to": a.to, "message_id": a.message_id, "segments": a.segments, "cost": a.cost}
            for a in result.accepted
        ],
        "skipped": [{"to": to, "reason": reason} for to, reason in result.skipped],
        "total_cost": result.total_cost,
        "scheduled_for": result.scheduled_for.isoformat() if result.scheduled_for else None,
        **({"campaign_id": result.campaign_id} if result.campaign_id else {}),
    }


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed({name: "Must be a list of strings."})
    return value


def _int_list(body: dict[str, Any], name: str) -> list[int]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ValidationFailed({name: "Must be a list of ids."})
    return value


def _opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed({name: "Must be a string."})
    return value


async def parse_send_at(value: str | None, account_id: int) -> datetime | None:
    """ISO 8601; a time without an offset is read in the account's time zone."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed({"send_at": "Must be an ISO 8601 date and time."}) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=await sending.account_timezone(account_id))
    return parsed


class MessagesApi(Controller):
    path = "/messages"

    @post("/", opt={"permission": "messages.send_template"}, status_code=202)
    async def send(self, request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationFailed({"body": "Send a JSON object."})
        grants = current_grants(request)
        account = grants.account
        template_id = data.get("template_id")
        if template_id is not None and (
            not isinstance(template_id, int) or isinstance(template_id, bool)
        ):
            raise ValidationFailed({"template_id": "Must be a template id."})
        variables = data.get("variables") or {}
        if not isinstance(variables, dict):
            raise ValidationFailed({"variables": "Must be an object of names to strings."})
        if data.get("body") is None and template_id is None:
            raise ValidationFailed({"body": "Give a body or a template_id."})
        campaign_name = _opt_str(data, "campaign_name")
        req = SendRequest(
            account_id=account.id,
            numbers=_str_list(data, "to"),
            contact_ids=_int_list(data, "contact_ids"),
            list_ids=_int_list(data, "list_ids"),
            tags=_str_list(data, "tags"),
            body=_opt_str(data, "body"),
            template_id=template_id,
            variables=variables,
            sender=(_opt_str(data, "sender") or "").strip(),
            channel=(_opt_str(data, "channel") or "sms").strip().lower(),
            send_at=await parse_send_at(_opt_str(data, "send_at"), account.id),
            campaign_name=campaign_name,
            idempotency_key=(request.headers.get("idempotency-key") or "").strip() or None,
            permissions=send_permissions(grants),
        )
        result = await sending.accept_send(req, actor=request_actor(request))
        return send_result_json(result)

    @get("/{message_id:int}", opt={"permission": "messages.view"})
    async def one(self, request: Request[Any, Any, Any], message_id: int) -> dict[str, Any]:
        account = current_grants(request).account
        return message_json(await messages.get_message(account.id, message_id), with_events=True)

    @get("/", opt={"permission": "messages.view"})
    async def list(
        self,
        request: Request[Any, Any, Any],
        batch_id: int | None = None,
        campaign_id: int | None = None,
        status: str | None = None,
        number: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> Response[list[dict[str, Any]]]:
        account = current_grants(request).account
        page = await messages.list_messages(
            account.id,
            MessageFilter(
                status=status or None, number=number, batch_id=batch_id, campaign_id=campaign_id
            ),
            before_id=before_id,
            limit=limit,
        )
        headers = {}
        if page.next_before_id is not None:
            params = dict(request.query_params)
            params["before_id"] = str(page.next_before_id)
            query = urlencode(params)
            headers["Link"] = f'</api/v1/messages?{query}>; rel="next"'
            headers["X-Next-Before-Id"] = str(page.next_before_id)
        return Response([message_json(m) for m in page.items], headers=headers)
