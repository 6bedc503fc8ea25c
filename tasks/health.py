"""The health actor: proves a worker reads the broker and reaches the database."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker
from tenants.platform import health


@dramatiq.actor(broker=broker, queue_name="health", max_retries=0, time_limit=10_000)
async def ping(token: str) -> None:
    """Answers /healthz."""
    await health.record_pong(token)
