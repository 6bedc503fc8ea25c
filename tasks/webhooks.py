"""Customer webhook deliveries: post each queued event, retried with backoff."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker  # noqa: F401  (the broker must be set before any actor)
from tenants import webhooks


@dramatiq.actor(
    queue_name="webhooks",
    max_retries=webhooks.MAX_ATTEMPTS,
    min_backoff=2_000,
    max_backoff=600_000,
    time_limit=60_000,
)
async def deliver_webhook(delivery_id: int) -> None:
    """Raises while the receiver refuses, so Dramatiq retries with exponential backoff."""
    await webhooks.deliver(delivery_id)
