"""Campaigns to lists, accepted in the background (tenants.messaging.streamed): one actor
accepts chunks for a while and sends itself again until the lists are done; the periodic
sweep hands over campaigns whose worker was killed or whose message was lost."""

from __future__ import annotations

from datetime import timedelta

import dramatiq

from tasks.broker import broker
from tenants.messaging import streamed
from tenants.settings import get_settings

# A run accepts chunks for this long, then hands the rest to a fresh message (no actor
# holds a worker thread for a million contacts; a restart loses at most one chunk).
RUN_SECONDS = 30.0


@dramatiq.actor(
    broker=broker, queue_name="campaigns", max_retries=6, min_backoff=1_000, time_limit=600_000
)
async def accept_list_campaign(batch_id: int) -> None:
    """Accept the next chunks of one list campaign (then again, until the lists end)."""
    outcome = await streamed.run(batch_id, budget_seconds=RUN_SECONDS)
    if not outcome.finished:
        accept_list_campaign.send(batch_id)


def start(batch_id: int) -> None:
    """Hand a campaign just written `accepting` to a worker."""
    accept_list_campaign.send(batch_id)


@dramatiq.actor(broker=broker, queue_name="periodic", max_retries=0, max_age=60_000)
async def resume_list_campaigns() -> None:
    """Campaigns still accepting that no worker moved within the sweep grace."""
    grace = timedelta(seconds=get_settings().sending.sweep_grace_seconds)
    stalled = await streamed.stalled(grace)
    await streamed.touch(stalled)
    for batch_id in stalled:
        accept_list_campaign.send(batch_id)
