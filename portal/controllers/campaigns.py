"""Campaigns: the list, one campaign's live progress (htmx polling) and pause / resume /
cancel; scheduled sends can be cancelled from the list; results and clicks as CSV."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Stream

from portal.auth import current_grants, request_actor
from portal.pages import csv_stream, render
from tasks import list_campaigns
from tenants.accounts.tree import AccountView
from tenants.audit.record import Actor
from tenants.links import links
from tenants.messaging import messages, streamed
from tenants.messaging import outbox as dispatch
from tenants.messaging.accept import SendRequest
from tenants.messaging.messages import MessageFilter
from tenants.messaging.tables import Batch

ACTIONS = ("pause", "resume", "cancel")


async def _scheduled_ids(account_id: int) -> list[int]:
    rows = (
        await Batch.select(Batch.id)
        .where((Batch.account_id == account_id) & (Batch.state == "scheduled"))
        .order_by(Batch.send_at, Batch.id)
    )
    return [r["id"] for r in rows]


class CampaignsController(Controller):
    path = "/campaigns"

    @get("/", opt={"permission": "campaigns.manage"}, name="campaigns")
    async def index(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        campaigns = await messages.list_campaigns(account.id)
        scheduled = await _scheduled_ids(account.id)
        # Every campaign's batch and the scheduled ones: two queries however many.
        by_batch = await messages.batches_progress(
            account.id, [*(c.batch_id for c in campaigns if c.batch_id is not None), *scheduled]
        )
        progress = {
            c.id: by_batch[c.batch_id]
            for c in campaigns
            if c.batch_id is not None and c.batch_id in by_batch
        }
        return await render(
            request,
            "campaigns.html.jinja",
            {
                "campaigns": campaigns,
                "progress": progress,
                "scheduled": [by_batch[i].batch for i in scheduled if i in by_batch],
            },
        )

    @get("/{campaign_id:int}", opt={"permission": "campaigns.manage"})
    async def detail(self, request: HTMXRequest, campaign_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        campaign = await messages.get_campaign(account.id, campaign_id)
        progress = await messages.batch_progress(account.id, campaign.batch_id or 0)
        clicks = await links.batch_figures(account.id, campaign.batch_id or 0)
        return await render(
            request,
            "campaign.html.jinja",
            {"campaign": campaign, "p": progress, "clicks": clicks},
            block="progress",
        )

    @get("/{campaign_id:int}/results.csv", opt={"permission": "messages.export"})
    async def results_csv(self, request: HTMXRequest, campaign_id: FromPath[int]) -> Stream:
        account = current_grants(request).account
        return await campaign_results(account, campaign_id)

    @get("/{campaign_id:int}/clicks.csv", opt={"permission": "messages.export"})
    async def clicks_csv(self, request: HTMXRequest, campaign_id: FromPath[int]) -> Stream:
        account = current_grants(request).account
        campaign = await messages.get_campaign(account.id, campaign_id)
        return csv_stream(
            f"clicks-campaign-{campaign.id}.csv",
            links.CLICKS_CSV_HEADER,
            links.batch_clicks_pages(account.id, campaign.batch_id or 0),
        )

    @post(
        "/{campaign_id:int}/{action:str}", opt={"permission": "campaigns.manage"}, status_code=200
    )
    async def act(
        self, request: HTMXRequest, campaign_id: FromPath[int], action: FromPath[str]
    ) -> Any:
        account = current_grants(request).account
        campaign = await messages.get_campaign(account.id, campaign_id)
        batch = await messages.set_batch_state(
            request_actor(request),
            account_id=account.id,
            batch_id=campaign.batch_id or 0,
            action=action,
        )
        if action == "resume" and batch.state == "active":
            await dispatch.redispatch_batch(batch.id)
        if not request.htmx:
            return Redirect(path=f"/campaigns/{campaign_id}", status_code=303)
        progress = await messages.batch_progress(account.id, campaign.batch_id or 0)
        return await render(
            request, "campaign.html.jinja", {"campaign": campaign, "p": progress}, block="progress"
        )

    @post("/batches/{batch_id:int}/cancel", opt={"permission": "campaigns.manage"}, status_code=200)
    async def cancel_batch(self, request: HTMXRequest, batch_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        await messages.set_batch_state(
            request_actor(request), account_id=account.id, batch_id=batch_id, action="cancel"
        )
        return Redirect(path="/campaigns", status_code=303)


async def campaign_results(account: AccountView, campaign_id: int) -> Stream:
    """The campaign's messages (one per recipient, its final status, cost and text) streamed
    as the messages export writes them; 404 when the campaign is not the account's."""
    campaign = await messages.get_campaign(account.id, campaign_id)
    return csv_stream(
        f"campaign-{campaign.id}-results.csv",
        messages.EXPORT_COLUMNS,
        await messages.export_rows(account.id, MessageFilter(campaign_id=campaign.id)),
    )


async def start_list_campaign(req: SendRequest, actor: Actor) -> streamed.Started:
    """Write a campaign to lists `accepting` and hand it to a worker (a replay was handed
    over by the first request; the sweep covers a hand-over lost in a crash)."""
    started = await streamed.start_list_campaign(req, actor=actor)
    if not started.replayed:
        list_campaigns.start(started.batch_id)
    return started
