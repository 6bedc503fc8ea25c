"""Tying provider callbacks back to our messages, and only to the messages the calling
provider carried.

A message records the key of the provider it was submitted through (`simulator` or
`integration:<id>`, tenants.messaging.accept). A status report that a callback of one
integration names (by our id, by the provider's reference, or by the recipient among a
batch's ids) resolves a message only when that message went out through that same
integration; anything else is counted as unknown and changes nothing. So a correctly
signed callback of one integration can never move, fail or refund another tenant's
message, nor one sent through the simulator or another provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tenants.db import chunked, placeholders, run_sql
from tenants.messaging import status
from tenants.messaging.messages import IngestResult, StatusReport

CHUNK = 500


@dataclass(frozen=True)
class ProviderEvent:
    """A status a gateway read from a provider's callback, before it is tied to one of our
    messages: by our id when the provider echoes it, else by the provider's reference, else
    by the recipient among `candidates` (a batch's ids)."""

    status: str
    at: datetime
    message_id: int | None = None
    provider_ref: str | None = None
    candidates: tuple[int, ...] = ()
    recipient: str | None = None
    error_code: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class Resolved:
    """The reports for messages this provider carried, and how many events named none."""

    reports: list[StatusReport]
    unknown: int = 0


async def carried_by(provider: str, message_ids: Sequence[int]) -> set[int]:
    """Which of these outbox messages were submitted through `provider`."""
    found: set[int] = set()
    for part in chunked(sorted(set(message_ids)), CHUNK):
        rows = await run_sql(
            "SELECT id FROM message WHERE direction = 'out' AND provider = {} "  # noqa: S608
            f"AND id IN ({placeholders(len(part))})",
            provider,
            *part,
        )
        found.update(int(r["id"]) for r in rows)
    return found


async def _by_ref(provider: str, refs: Sequence[str]) -> dict[str, int]:
    by_ref: dict[str, int] = {}
    for part in chunked(sorted(set(refs)), CHUNK):
        rows = await run_sql(
            "SELECT id, provider_ref FROM message WHERE provider = {} AND direction = 'out' "  # noqa: S608
            f"AND provider_ref IN ({placeholders(len(part))})",
            provider,
            *part,
        )
        by_ref.update({r["provider_ref"]: int(r["id"]) for r in rows})
    return by_ref


async def _by_recipient(provider: str, event: ProviderEvent) -> int | None:
    ids = sorted(set(event.candidates))[:1000]
    if not ids or not event.recipient:
        return None
    rows = await run_sql(
        f"SELECT id FROM message WHERE id IN ({placeholders(len(ids))}) "  # noqa: S608
        "AND direction = 'out' AND to_number = {} AND provider = {} ORDER BY id LIMIT 1",
        *ids,
        event.recipient,
        provider,
    )
    return int(rows[0]["id"]) if rows else None


async def resolve_events(provider: str, events: Sequence[ProviderEvent]) -> Resolved:
    """StatusReports for the events that name a message `provider` carried: by our id when
    that message is the provider's, else by the provider's reference, else by recipient
    among the batch's ids. The other events are counted as unknown."""
    ours = await carried_by(provider, [e.message_id for e in events if e.message_id is not None])
    by_ref = await _by_ref(provider, [e.provider_ref for e in events if e.provider_ref])
    reports: list[StatusReport] = []
    unknown = 0
    for event in events:
        message_id = event.message_id if event.message_id in ours else None
        if message_id is None and event.provider_ref:
            message_id = by_ref.get(event.provider_ref)
        if message_id is None:
            message_id = await _by_recipient(provider, event)
        if message_id is None:
            unknown += 1
            continue
        reports.append(_report(message_id, event))
    return Resolved(reports, unknown)


def _report(message_id: int, event: ProviderEvent, carrier: str | None = None) -> StatusReport:
    return StatusReport(
        message_id=message_id,
        status=event.status,
        at=event.at,
        error_code=event.error_code,
        provider_ref=event.provider_ref,
        event_id=event.event_id,
        carrier=carrier,
    )


async def ingest_events(provider: str, events: Sequence[ProviderEvent]) -> IngestResult:
    """Tie these events to the messages `provider` carried (as `resolve_events`) and ingest
    them with concurrent callers' reports (tenants.messaging.status). The common callback,
    one event naming our id, costs no read of its own: the group's transaction checks the
    carrier; only when that message is not the provider's is it tied by reference or
    recipient instead, as `resolve_events` would have."""
    if len(events) == 1 and events[0].message_id is not None:
        (event,) = events
        result = await status.ingest_grouped([_report(event.message_id, event, provider)])
        if not result.unknown or not (event.provider_ref or event.candidates):
            return result
        events = [replace(event, message_id=None)]
    resolved = await resolve_events(provider, events)
    result = await status.ingest_grouped(resolved.reports)
    result.received += resolved.unknown
    result.unknown += resolved.unknown
    return result


async def ingest_reports(provider: str, reports: Sequence[StatusReport]) -> IngestResult:
    """Reports already tied to our ids (as the simulator's are), ingested with concurrent
    callers; those of messages `provider` did not carry count as unknown (checked inside
    the group's own read)."""
    return await status.ingest_grouped([replace(r, carrier=provider) for r in reports])
