"""Periodic actors, sent on an interval by the one scheduler of a deployment
(tasks.scheduler): releasing due scheduled sends and re-dispatching lost outbox work,
handing customer webhook deliveries (new, or whose queued retry was lost) to workers, and
releasing the due runs of recurring sends (quiet-hour holds are released by the sweep).

Each is idempotent: the tenants services take their rows with conditional UPDATEs, so
two schedulers started by mistake, or a message redelivered, never dispatch a message
or a delivery twice; a second run in the same instant simply finds nothing."""

from __future__ import annotations

from typing import Any

import dramatiq

from tasks.broker import broker
from tasks.customer_webhooks import dispatch_pending
from tasks.gateways import gateway_for
from tasks.list_campaigns import resume_list_campaigns
from tenants.messaging import outbox, recurring
from tenants.settings import get_settings


def sweep_interval() -> float:
    return get_settings().sending.sweep_interval_seconds


# No retries: the next tick is the retry. A tick older than a minute is dropped (workers
# that were down must not run a backlog of identical sweeps when they come back).
PERIODIC: dict[str, Any] = {"max_retries": 0, "max_age": 60_000, "time_limit": 120_000}


@dramatiq.actor(broker=broker, queue_name="periodic", **PERIODIC)
async def sweep_outbox() -> int:
    """Release due scheduled sends, re-dispatch lost work (each service hands its chunks
    over as it commits) and settle messages that never heard back; returns how many chunks."""
    chunks = await outbox.sweep()
    await outbox.resolve_stale_sent(gateway_for)
    return len(chunks)


@dramatiq.actor(broker=broker, queue_name="periodic", **PERIODIC)
async def hand_over_webhook_deliveries() -> int:
    """Customer webhook deliveries written by any path, and those whose work was lost."""
    return await dispatch_pending()


@dramatiq.actor(broker=broker, queue_name="periodic", **PERIODIC)
async def release_recurring_runs() -> int:
    """Recurring sends whose run is due: each run becomes its own batch, once."""
    outcome = await recurring.release_due_runs()
    return outcome.released + outcome.failed


# (actor, seconds between two sends) for the scheduler.
def schedule() -> list[tuple[dramatiq.Actor, float]]:  # type: ignore[type-arg]
    return [
        (sweep_outbox, sweep_interval()),
        (hand_over_webhook_deliveries, sweep_interval()),
        (release_recurring_runs, sweep_interval()),
        (resume_list_campaigns, sweep_interval()),
    ]
