"""Customer webhook deliveries: the actor that posts one (Dramatiq retries it with
exponential backoff while the receiver is down) and handing due deliveries to the broker."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker
from tasks.webhook_poster import WEBHOOK_POSTER
from tenants.settings import get_settings
from tenants.webhooks import deliveries as customer_webhooks


class ReceiverFailed(Exception):
    """The receiver did not answer 2xx; raised so Dramatiq retries with backoff."""


# The first backoff comes from the settings with each message (Dramatiq's Retries middleware
# prefers message options to actor options), so nothing is read at import. With retry_when
# set Dramatiq ignores max_retries: attempt_delivery stops asking for a retry at the last
# attempt (WEBHOOK_MAX_ATTEMPTS).
@dramatiq.actor(
    broker=broker,
    queue_name="webhooks",
    max_backoff=600_000,
    time_limit=60_000,
    retry_when=lambda retries, exc: isinstance(exc, ReceiverFailed),
)
async def deliver_webhook_event(delivery_id: int) -> None:
    """Post one customer webhook delivery (idempotent: a delivered one is not posted)."""
    outcome = await customer_webhooks.attempt_delivery(delivery_id, WEBHOOK_POSTER)
    if outcome.retry:
        raise ReceiverFailed(outcome.error)


def send_delivery(delivery_id: int) -> None:
    """Queue one delivery attempt, retried from WEBHOOK_MIN_BACKOFF_MS (doubling)."""
    deliver_webhook_event.send_with_options(
        args=(delivery_id,), min_backoff=get_settings().webhooks.min_backoff_ms
    )


async def dispatch_pending() -> int:
    """Hand deliveries written since the last call (and any whose work was lost) to the
    broker; called after the changes that queue them and by the periodic actor."""
    ids = await customer_webhooks.take_due()
    for delivery_id in ids:
        send_delivery(delivery_id)
    return len(ids)
