"""Inbound MMS media kept: each file a provider referenced is copied into the media store
(once per message and position), so the inbox and the message page show our copy even after
the provider's URL expires; a file that could not be fetched keeps its reason."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tenants.db import run_sql, transaction
from tenants.media import store
from tenants.media.store import NewMedia
from tenants.media.tables import InboundMedia


@dataclass(frozen=True)
class PendingFile:
    message_id: int
    account_id: int
    position: int
    url: str


async def pending_files(message_id: int) -> list[PendingFile]:
    """The files of an inbound message not kept (or refused) yet."""
    rows = await run_sql(
        "SELECT id, account_id, media_urls FROM message WHERE id = {} AND direction = 'in'",
        message_id,
    )
    if not rows:
        return []
    try:
        urls = json.loads(rows[0]["media_urls"] or "[]")
    except ValueError:
        return []
    done = {
        r["position"]
        for r in await InboundMedia.select(InboundMedia.position).where(
            InboundMedia.message_id == message_id
        )
    }
    return [
        PendingFile(message_id, rows[0]["account_id"], position, str(url))
        for position, url in enumerate(urls if isinstance(urls, list) else [])
        if position not in done and isinstance(url, str)
    ]


async def record_file(file: PendingFile, media: NewMedia | None, error: str = "") -> None:
    """Keep one fetched file in the message's account (or the reason it was not)."""
    async with transaction():
        media_id = (await store.store_media(file.account_id, media)).id if media else None
        await run_sql(
            "INSERT INTO inbound_media (key, message_id, account_id, position, source_url, "
            "media_id, error, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, CURRENT_TIMESTAMP) "
            "ON CONFLICT (key) DO NOTHING",
            f"{file.message_id}:{file.position}",
            file.message_id,
            file.account_id,
            file.position,
            file.url,
            media_id,
            error[:200],
        )
