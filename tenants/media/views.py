"""The media a message shows: an outbound MMS's files (its batch's, served by signed URLs)
and subject; an inbound message's media as the provider referenced it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenants.db import placeholders, run_sql
from tenants.media.store import MediaView, media_of_batches


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
    shown: dict[int, ShownMedia] = {}
    for r in rows:
        if r["direction"] == "out" and r["batch_id"] in batches:
            attached = batches[r["batch_id"]]
            shown[r["id"]] = ShownMedia(attached.subject, attached.media)
        elif r["direction"] == "in" and (urls := _urls(r["media_urls"])):
            shown[r["id"]] = ShownMedia(remote_urls=urls)
    return shown
