"""Mail actors: invitation emails, sent by a worker when SMTP is configured."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker
from tenants.access import invitations


@dramatiq.actor(
    broker=broker, queue_name="mail", max_retries=5, min_backoff=10_000, time_limit=60_000
)
async def send_invitation_email(invitation_id: int, link: str) -> None:
    """Emails an invitation link (the link carries the token, which is stored only as a
    hash, so it travels in the message)."""
    await invitations.email_invitation(invitation_id, link)
