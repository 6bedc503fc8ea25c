"""Sending actors (thin: ids in, one tenants call) and the broker side of
tenants.handoff: outbox chunks and customer webhook deliveries go to their queues once the
transaction that wrote them commits."""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq

from tasks.broker import broker
from tasks.customer_webhooks import dispatch_pending
from tasks.gateways import gateway_for
from tenants import handoff
from tenants.messaging import outbox as dispatch


class ProviderUnavailable(Exception):
    """Raised so Dramatiq retries the chunk with backoff; the claims were released."""


# Any failure is retried with backoff (a provider or database hiccup); the chunk's claims
# were released, and messages that may have reached the provider are looked up first.
@dramatiq.actor(
    broker=broker,
    queue_name="sending",
    max_retries=6,
    min_backoff=1_000,
    max_backoff=30_000,
    time_limit=300_000,
)
async def submit_messages(message_ids: list[int]) -> None:
    """Submit one chunk of the outbox through the account's provider gateway."""
    outcome = await dispatch.submit_chunk(message_ids, gateway_for)
    if outcome.retry_in is not None and outcome.remaining:
        # Over the rate limit: hand the rest back instead of holding a worker.
        submit_messages.send_with_options(
            args=(outcome.remaining,), delay=int(outcome.retry_in * 1000)
        )
    if outcome.transient:
        raise ProviderUnavailable(f"{len(outcome.remaining)} messages will be retried")


def dispatch_chunks(chunks: Sequence[Sequence[int]]) -> int:
    """Hand chunks of message ids to the broker now (scripts and tests; the services hand
    over their own work through tenants.handoff)."""
    for chunk in chunks:
        submit_messages.send(list(chunk))
    return len(chunks)


class BrokerHandoff:
    """tenants.handoff's port: chunks to the sending queue, due deliveries to workers."""

    def submit(self, message_ids: Sequence[int]) -> None:
        submit_messages.send(list(message_ids))

    async def deliver_webhooks(self) -> None:
        await dispatch_pending()


def install_handoff() -> None:
    """Every process that writes outbox work or webhook deliveries hands it to this broker."""
    handoff.install(BrokerHandoff())
