"""The messages log (filters, newest first, more on demand) and one message's timeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Stream

from portal.auth import current_grants
from portal.pages import csv_download, csv_stream, render
from tenants.errors import ValidationFailed
from tenants.links import links
from tenants.media.views import media_of_messages
from tenants.messaging import accept as sending
from tenants.messaging import messages, streamed
from tenants.messaging.messages import STATUSES, MessageFilter
from tenants.rich import content as rich_content


async def _day(value: str | None, account_id: int, field: str) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed({field: "Choose a date."}) from None
    return day.replace(tzinfo=await sending.account_timezone(account_id))


@dataclass(frozen=True)
class MessageQuery:
    """The filters of the messages log as given in the query string (list and export)."""

    status: str = ""
    number: str = ""
    q: str = ""
    campaign_id: int | None = None
    batch_id: int | None = None
    date_from: str = ""
    date_to: str = ""

    def as_form(self) -> dict[str, Any]:
        return asdict(self)

    def as_query(self) -> dict[str, Any]:
        """What a link to more rows, or to the export, must carry along."""
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    async def to_filter(self, account_id: int) -> MessageFilter:
        start = await _day(self.date_from, account_id, "date_from")
        end = await _day(self.date_to, account_id, "date_to")
        return MessageFilter(
            status=self.status or None,
            number=self.number or None,
            text=self.q or None,
            campaign_id=self.campaign_id,
            batch_id=self.batch_id,
            date_from=start,
            date_to=end + timedelta(days=1) if end else None,
            count_up_to=messages.PAGE_COUNT_CAP,
        )


async def message_query(
    status: FromQuery[str | None] = None,
    number: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    campaign_id: FromQuery[int | None] = None,
    batch_id: FromQuery[int | None] = None,
    date_from: FromQuery[str | None] = None,
    date_to: FromQuery[str | None] = None,
) -> MessageQuery:
    return MessageQuery(
        status=status or "",
        number=(number or "").strip(),
        q=(q or "").strip(),
        campaign_id=campaign_id,
        batch_id=batch_id,
        date_from=date_from or "",
        date_to=date_to or "",
    )


class MessagesController(Controller):
    path = "/messages"
    dependencies = {"filters": Provide(message_query)}

    @get("/", opt={"permission": "messages.view"}, name="messages")
    async def log(
        self,
        request: HTMXRequest,
        filters: NamedDependency[MessageQuery],
        before_id: FromQuery[int | None] = None,
    ) -> Any:
        account = current_grants(request).account
        errors: dict[str, str] = {}
        page = None
        try:
            flt = await filters.to_filter(account.id)
            page = await messages.list_messages(account.id, flt, before_id=before_id)
        except ValidationFailed as exc:
            errors = exc.errors
        ctx = {
            "filters": filters.as_form(),
            "statuses": STATUSES,
            "page": page,
            "errors": errors,
            "more_query": filters.as_query(),
            # Only the filter form names the campaigns: not read for htmx's blocks (the
            # polling table, "more" rows).
            "campaigns": [] if request.htmx else await messages.list_campaigns(account.id),
        }
        # "More" asks for the next rows only; a filter change re-renders the table.
        block = "rows" if before_id is not None else "results"
        return await render(
            request, "messages.html.jinja", ctx, block=block, status_code=422 if errors else 200
        )

    @get("/export.csv", opt={"permission": "messages.export"})
    async def export(self, request: HTMXRequest, filters: NamedDependency[MessageQuery]) -> Stream:
        account = current_grants(request).account
        flt = await filters.to_filter(account.id)
        return csv_stream(
            f"messages-{account.slug}.csv",
            messages.EXPORT_COLUMNS,
            await messages.export_rows(account.id, flt),
        )

    @get("/{message_id:int}", opt={"permission": "messages.view"})
    async def one(self, request: HTMXRequest, message_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        message = await messages.get_message(account.id, message_id)
        shown = (await media_of_messages(account.id, [message_id])).get(message_id)
        # Its own poll asks for the message block only (see message.html.jinja).
        tracked = await links.message_links(account.id, message.id)
        rich = await rich_content.rich_of(message_id)
        return await render(
            request,
            "message.html.jinja",
            {"m": message, "media": shown, "links": tracked, "rich": rich},
            block="message",
        )

    @get("/batches/{batch_id:int}/skipped.csv", opt={"permission": "messages.view"})
    async def skipped_csv(
        self, request: HTMXRequest, batch_id: FromPath[int]
    ) -> Response[str] | Stream:
        account = current_grants(request).account
        batch = await messages.get_batch(account.id, batch_id)
        if batch.streamed:
            return csv_stream(
                f"skipped-{batch_id}.csv", ["number", "reason"], streamed.skipped_pages(batch_id)
            )
        return csv_download(
            f"skipped-{batch_id}.csv", ["number", "reason"], messages.skipped_rows(batch)
        )
