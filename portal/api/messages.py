"""/api/v1/messages: send (202, Idempotency-Key), read one with its timeline, list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import JSONBody
from litestar.response import Stream
from msgspec import UNSET, Meta, Struct, UnsetType

from portal.api.rich import CardIn, TemplateIn, rich_request
from portal.api.schemas import (
    Id,
    IdempotencyKey,
    Limit,
    Line,
    PathId,
    QueryId,
    QueryLine,
    Text,
    documented,
)
from portal.auth import current_grants, request_actor
from portal.controllers.campaigns import campaign_results, start_list_campaign
from portal.pages import csv_stream
from tasks.media_fetch import fetch_media
from tenants.errors import ValidationFailed
from tenants.links import links
from tenants.media.store import NewMedia
from tenants.media.views import ShownMedia, media_of_messages
from tenants.messaging import accept as sending
from tenants.messaging import messages, streamed
from tenants.messaging.accept import SendRequest, SendResult, send_permissions
from tenants.messaging.messages import MessageFilter, MessageView
from tenants.messaging.unreachable import refuse_unreachable
from tenants.rich import content as rich_content


class MessageEventOut(Struct, omit_defaults=True):
    status: str
    at: str
    error: str | UnsetType = UNSET
    error_text: str | UnsetType = UNSET
    applied: bool | UnsetType = UNSET  # present (false) only for an event kept, not applied


class MessageOut(Struct):
    id: int
    to: str
    sender: str = msgspec.field(name="from")
    body: str
    status: str
    segments: int
    encoding: str
    cost: int
    channel: str
    direction: str
    batch_id: int | None
    campaign_id: int | None
    error: str | None
    created_at: str


class MediaOut(Struct):
    id: int
    content_type: str
    size: int
    sha256: str
    url: str


class LinkOut(Struct):
    """A tracked link of the message: the original URL and how often it was followed."""

    code: str
    url: str
    clicks: int
    bot_clicks: int
    last_click_at: str | None


class MessageDetail(MessageOut):
    events: list[MessageEventOut]
    links: list[LinkOut] = []
    subject: str | UnsetType = UNSET
    media: list[MediaOut] | UnsetType = UNSET
    media_urls: list[str] | UnsetType = UNSET  # inbound: the provider's URLs
    # A WhatsApp template, an RCS card or a tap (inbound): its content; the channel the
    # provider reported delivering on (SMS for an RCS card that fell back).
    rich: dict[str, Any] | UnsetType = UNSET
    delivered_channel: str | UnsetType = UNSET


class AcceptedOut(Struct):
    to: str
    message_id: int | None
    segments: int
    cost: int


class SkippedOut(Struct):
    to: str
    reason: str


class SendResultOut(Struct, omit_defaults=True):
    batch_id: int | None
    accepted: list[AcceptedOut]
    skipped: list[SkippedOut]
    total_cost: int
    scheduled_for: str | None
    campaign_id: int | UnsetType = UNSET
    # Quiet hours: how many messages wait and until when (omitted when none does).
    held: int | UnsetType = UNSET
    held_until: str | UnsetType = UNSET
    # A campaign to lists: accepted in the background; poll GET /campaigns/{campaign_id}.
    state: str | UnsetType = UNSET


Recipients = Annotated[list[Line], Meta(max_length=sending.MAX_RECIPIENTS)]
Ids = Annotated[list[Id], Meta(max_length=10_000)]


class SendCreate(Struct):
    to: Line | Recipients = []
    contact_ids: Ids = []
    list_ids: Ids = []
    tags: Annotated[list[Line], Meta(max_length=100)] = []
    body: Text | None = None
    template_id: Id | None = None
    variables: Annotated[dict[Line, Text], Meta(max_length=100)] = {}
    sender: Line = ""
    channel: Line = "sms"
    send_at: Line | None = None
    campaign_name: Line | None = None
    # MMS: public https URLs of the files (fetched and stored by the portal) and a subject.
    media: Annotated[list[Annotated[str, Meta(max_length=2000)]], Meta(max_length=10)] = []
    subject: Annotated[str, Meta(max_length=200)] = ""
    # Replace each URL in the body by a short link of its own per recipient; clicks counted.
    track_links: bool = False
    template: TemplateIn | None = None  # a WhatsApp template (channel whatsapp)
    card: CardIn | None = None  # an RCS rich card (channel rcs)


def _fields(m: MessageView) -> dict[str, Any]:
    return {
        "id": m.id,
        "to": m.to,
        "sender": m.sender,
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


def message_json(m: MessageView) -> MessageOut:
    return MessageOut(**_fields(m))


async def _fetched_media(data: SendCreate) -> list[NewMedia]:
    """The files at the request's media URLs (only for MMS: other channels are refused
    with `media` by the send itself, without fetching anything)."""
    if (data.channel or "sms").strip().lower() != "mms":
        if data.media:
            raise ValidationFailed({"media": "Only MMS carries media; choose the MMS channel."})
        return []
    return [await fetch_media(url, field="media") for url in data.media]


def message_detail(
    m: MessageView,
    shown: ShownMedia | None = None,
    tracked: list[links.MessageLink] | None = None,
) -> MessageDetail:
    events = [
        MessageEventOut(
            status=e.status,
            at=e.at.isoformat(),
            error=e.error_code if e.error_code else UNSET,
            error_text=e.explanation if e.error_code else UNSET,
            applied=UNSET if e.applied else False,
        )
        for e in m.events
    ]
    link_rows = [
        LinkOut(
            code=link.code,
            url=link.url,
            clicks=link.clicks,
            bot_clicks=link.bot_clicks,
            last_click_at=link.last_click_at.isoformat() if link.last_click_at else None,
        )
        for link in tracked or []
    ]
    detail = MessageDetail(**_fields(m), events=events, links=link_rows)
    if shown:
        detail.subject = shown.subject or UNSET
        detail.media = [MediaOut(**f.as_json()) for f in shown.files] or UNSET
        detail.media_urls = shown.remote_urls or UNSET
    return detail


def send_result_json(result: SendResult) -> SendResultOut:
    return SendResultOut(
        batch_id=result.batch_id,
        accepted=[
            AcceptedOut(to=a.to, message_id=a.message_id, segments=a.segments, cost=a.cost)
            for a in result.accepted
        ],
        skipped=[SkippedOut(to=to, reason=reason) for to, reason in result.skipped],
        total_cost=result.total_cost,
        scheduled_for=result.scheduled_for.isoformat() if result.scheduled_for else None,
        campaign_id=result.campaign_id or UNSET,
        held=result.held or UNSET,
        held_until=result.held_until.isoformat() if result.held_until else UNSET,
    )


def started_json(started: streamed.Started) -> SendResultOut:
    """A campaign to lists answers at once: nothing accepted yet, its state `accepting`."""
    return SendResultOut(
        batch_id=started.batch_id,
        accepted=[],
        skipped=[],
        total_cost=0,
        scheduled_for=None,
        campaign_id=started.campaign_id,
        state=started.state,
    )


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

    @post(
        "/",
        opt={"permission": "messages.send_template"},
        status_code=202,
        **documented(404, 409),
    )
    async def send(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SendCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> SendResultOut:
        grants = current_grants(request)
        account = grants.account
        rich = rich_request(data.template, data.card)
        missing: dict[str, str] = {}
        if data.body is None and data.template_id is None and rich is None:
            missing["body"] = "Give a body, a template_id, a template or a card."
        new_media = [] if missing else await _fetched_media(data)
        req = SendRequest(
            account_id=account.id,
            numbers=[data.to] if isinstance(data.to, str) else list(data.to),
            contact_ids=list(data.contact_ids),
            list_ids=list(data.list_ids),
            tags=list(data.tags),
            body=data.body,
            template_id=data.template_id,
            variables=dict(data.variables),
            sender=data.sender.strip(),
            channel=(data.channel or "sms").strip().lower(),
            send_at=await parse_send_at(data.send_at, account.id),
            campaign_name=data.campaign_name,
            idempotency_key=(idempotency_key or "").strip() or None,
            permissions=send_permissions(grants),
            new_media=new_media,
            subject=data.subject.strip(),
            track_links=data.track_links,
            rich=rich,
        )
        await refuse_unreachable(req, actor=request_actor(request), known=missing)
        if missing:
            raise ValidationFailed(missing)
        if streamed.is_streamed(req):
            return started_json(await start_list_campaign(req, request_actor(request)))
        result = await sending.accept_send(req, actor=request_actor(request))
        return send_result_json(result)

    @get("/{message_id:int}", opt={"permission": "messages.view"}, **documented(404))
    async def one(self, request: Request[Any, Any, Any], message_id: PathId) -> MessageDetail:
        account = current_grants(request).account
        message = await messages.get_message(account.id, message_id)
        shown = (await media_of_messages(account.id, [message_id])).get(message_id)
        tracked = await links.message_links(account.id, message.id)
        detail = message_detail(message, shown, tracked)
        extra = await rich_content.rich_of(message_id)
        if extra is not None:
            if extra.kind != "text":
                detail.rich = {"kind": extra.kind, **extra.payload}
            if extra.delivered_channel:
                detail.delivered_channel = extra.delivered_channel
        return detail

    @get(
        "/",
        opt={"permission": "messages.view"},
        response_headers=[
            ResponseHeader(name="Link", documentation_only=True, description='rel="next" page'),
            ResponseHeader(
                name="X-Total-Count",
                documentation_only=True,
                description="messages matching the filter, over every page",
            ),
            ResponseHeader(
                name="X-Next-Before-Id",
                documentation_only=True,
                description="`before_id` of the next page",
            ),
        ],
        **documented(),
    )
    async def list_messages(
        self,
        request: Request[Any, Any, Any],
        batch_id: QueryId = None,
        campaign_id: QueryId = None,
        status: QueryLine = None,
        number: QueryLine = None,
        q: QueryLine = None,
        before_id: QueryId = None,
        limit: Limit = 50,
    ) -> Response[list[MessageOut]]:
        account = current_grants(request).account
        page = await messages.list_messages(
            account.id,
            MessageFilter(
                status=status or None,
                number=number,
                text=q,
                batch_id=batch_id,
                campaign_id=campaign_id,
            ),
            before_id=before_id,
            limit=limit,
        )
        headers = {"X-Total-Count": str(page.total)}
        if page.next_before_id is not None:
            params = dict(request.query_params)
            params["before_id"] = str(page.next_before_id)
            query = urlencode(params)
            headers["Link"] = f'</api/v1/messages?{query}>; rel="next"'
            headers["X-Next-Before-Id"] = str(page.next_before_id)
        return Response([message_json(m) for m in page.items], headers=headers)

    @get(
        "/export.csv",
        opt={"permission": "messages.export"},
        media_type="text/csv",
        response_description=(
            "The key's account's messages matching the filters, newest first, as CSV (UTF-8): "
            + ", ".join(messages.EXPORT_COLUMNS)
        ),
        **documented(),
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        batch_id: QueryId = None,
        campaign_id: QueryId = None,
        status: QueryLine = None,
        number: QueryLine = None,
        q: QueryLine = None,
    ) -> Stream:
        account = current_grants(request).account
        flt = MessageFilter(
            status=status or None,
            number=number,
            text=q,
            batch_id=batch_id,
            campaign_id=campaign_id,
        )
        return csv_stream(
            f"messages-{account.slug}.csv",
            messages.EXPORT_COLUMNS,
            await messages.export_rows(account.id, flt),
        )


class CampaignProgressOut(Struct):
    """A campaign's progress, from the counters its batch keeps (a few rows per poll)."""

    id: int
    name: str
    batch_id: int | None
    state: str
    accepted: int
    skipped: int
    skipped_by_reason: dict[str, int]
    statuses: dict[str, int]
    total_cost: int
    spent: int
    refunded: int
    stop_reason: str | None


class CampaignResultsApi(Controller):
    path = "/campaigns"

    @get("/{campaign_id:int}", opt={"permission": "campaigns.manage"}, **documented(404))
    async def progress(
        self, request: Request[Any, Any, Any], campaign_id: PathId
    ) -> CampaignProgressOut:
        account = current_grants(request).account
        campaign = await messages.get_campaign(account.id, campaign_id)
        p = await messages.batch_progress(account.id, campaign.batch_id or 0)
        return CampaignProgressOut(
            id=campaign.id,
            name=campaign.name,
            batch_id=campaign.batch_id,
            state=p.state,
            accepted=p.accepted,
            skipped=p.batch.skipped,
            skipped_by_reason=p.skipped_by_reason(),
            statuses=dict(sorted(p.by_status.items())),
            total_cost=p.batch.total_cost,
            spent=p.spent,
            refunded=p.refunded,
            stop_reason=p.batch.stop_reason or None,
        )

    @get(
        "/{campaign_id:int}/results.csv",
        opt={"permission": "messages.export"},
        media_type="text/csv",
        response_description=(
            "The campaign's messages (one per recipient), newest first, as the messages "
            "export writes them: " + ", ".join(messages.EXPORT_COLUMNS)
        ),
        **documented(404),
    )
    async def results(self, request: Request[Any, Any, Any], campaign_id: PathId) -> Stream:
        return await campaign_results(current_grants(request).account, campaign_id)
