"""Dramatiq actors: thin, idempotent, taking primitive ids and calling tenants services."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker  # noqa: F401  (the broker must be set before any actor)
from tenants.access import invitations
from tenants.platform import health


@dramatiq.actor(queue_name="health", max_retries=0, time_limit=10_000)
async def ping(token: str) -> None:
    """Answers /healthz: proves a worker reads the broker and reaches the database."""
    await health.record_pong(token)


# The sending actors live in their own module; importing it declares them for workers.
from tasks import sending  # noqa: E402, F401


@dramatiq.actor(queue_name="mail", max_retries=5, min_backoff=10_000, time_limit=60_000)
async def send_invitation_email(invitation_id: int, link: str) -> None:
    """Emails an invitation link when SMTP is configured (the link carries the token,
    which is stored only as a hash, so it travels in the message)."""
    await invitations.email_invitation(invitation_id, link)


# Customer webhook deliveries live in their own module; importing it declares them too.
from tasks import customer_webhooks  # noqa: E402, F401
