"""The actor that copies an inbound MMS's media from the provider into the media store."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker
from tasks.media_fetch import keep_inbound_media


@dramatiq.actor(broker=broker, queue_name="media", max_retries=3, time_limit=120_000)
async def keep_inbound_message_media(message_id: int) -> None:
    """Fetch and keep the files an inbound message referenced (idempotent per file)."""
    await keep_inbound_media(message_id)
