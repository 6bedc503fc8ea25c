"""Work handed to the background when a transaction commits: outbox chunks to submit and
customer webhook deliveries to post. The domain says what and when; tasks/ installs the
broker that does it, so no caller hands work over by hand and none is forgotten (the
sweeper still covers a crash between the commit and the hand-over)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Sequence
from typing import Protocol

from tenants.db import after_commit


class Handoff(Protocol):
    """The port tasks/ implements with the broker."""

    def submit(self, message_ids: Sequence[int]) -> None: ...

    def deliver_webhooks(self) -> Awaitable[object]: ...


_installed: list[Handoff] = []
_calls = itertools.count()


def install(handoff: Handoff | None) -> None:
    """Set (or, with None, remove) the process's hand-over; the last one installed wins."""
    _installed.clear()
    if handoff is not None:
        _installed.append(handoff)


async def outbox_written(chunks: Sequence[Sequence[int]]) -> None:
    """Submit these chunks of message ids once the open transaction commits."""
    if not _installed or not chunks:
        return
    handoff = _installed[0]
    frozen = [list(chunk) for chunk in chunks]

    def submit() -> None:
        for chunk in frozen:
            handoff.submit(chunk)

    await after_commit(f"outbox:{next(_calls)}", submit)


async def webhooks_queued() -> None:
    """Post the customer webhook deliveries just queued once the transaction commits."""
    if _installed:
        await after_commit("webhooks", _installed[0].deliver_webhooks)
