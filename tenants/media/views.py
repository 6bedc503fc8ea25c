"""The media a message shows: an outbound MMS's files (its batch's, served by signed URLs)
and subject; an inbound message's media as the provider referenced it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenants.db import placeholders, run_sql
from tenants.media.store import MediaView, media_by_ids, media_of_batches


@dataclass(frozen=True)
class ShownMedia:
    subject: str = ""
    files: list[MediaView] = field(default_factory=list)
    remote_urls: list[str] = field(default_factory=list)  # inbound: the provider's URLs

    def __bool__(self) -> bool:
        return bool(self.files or self.remote_urls or self.subject)


def _urls(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [u for u in value if isinstance(u, str)] if isinstance(value, list) else []


async def media_of_messages(account_id: int, message_ids: Sequence[int]) -> dict[int, ShownMedia]:
    """Per message of the account among `message_ids` that carries media, what it shows."""
    wanted = sorted(set(message_ids))
    if not wanted:
        return {}
    rows = await run_sql(
        "SELECT id, direction, batch_id, channel, media_urls FROM message "  # noqa: S608 (only placeholders are formatted in)
        f"WHERE account_id = {{}} AND id IN ({placeholders(len(wanted))})",
        account_id,
        *wanted,
    )
    batches = await media_of_batches(
        [r["batch_id"] for r in rows if r["direction"] == "out" and r["channel"] == "mms"]
    )
    copies = await _inbound_copies([r["id"] for r in rows if r["direction"] == "in"])
    shown: dict[int, ShownMedia] = {}
    for r in rows:
        if r["direction"] == "out" and r["batch_id"] in batches:
            attached = batches[r["batch_id"]]
            shown[r["id"]] = ShownMedia(attached.subject, attached.media)
        elif r["direction"] == "in" and (urls := _urls(r["media_urls"])):
            kept = copies.get(r["id"], {})
            shown[r["id"]] = ShownMedia(
                files=[kept[p] for p in sorted(kept)],
                remote_urls=[u for p, u in enumerate(urls) if p not in kept],
            )
    return shown


async def _inbound_copies(message_ids: Sequence[int]) -> dict[int, dict[int, MediaView]]:
    """Our copies of inbound media: message id -> position -> the stored file."""
    if not message_ids:
        return {}
    rows = await run_sql(
        "SELECT message_id, position, media_id FROM inbound_media "  # noqa: S608 (only placeholders are formatted in)
        f"WHERE media_id IS NOT NULL AND message_id IN ({placeholders(len(message_ids))})",
        *message_ids,
    )
    views = await media_by_ids([r["media_id"] for r in rows])
    copies: dict[int, dict[int, MediaView]] = {}
    for r in rows:
        if r["media_id"] in views:
            copies.setdefault(r["message_id"], {})[r["position"]] = views[r["media_id"]]
    return copies
