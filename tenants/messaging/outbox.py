"""Handing the outbox to providers: claiming chunks, the shared rate limiter, submission
through a provider gateway, recording `sent` / `rejected` / `enqueued_failed`, and the
sweeper that releases scheduled sends and re-dispatches work that was lost.

Exactly-once towards the provider: a chunk is claimed (committed) before the provider
call, and each message counts its submission attempts. A message whose earlier attempt
may have reached the provider (a killed worker, a timeout) is looked up by its reference
(the message id) before it is submitted again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from tenants import handoff
from tenants.clock import now
from tenants.consent.filter import filter_recipients
from tenants.db import chunked, filter_only, placeholders, run_sql, transaction
from tenants.media import sending as mms_media
from tenants.messaging.messages import (
    StatusReport,
    apply_statuses,
    chunk_size,
    confirmation_ids,
    ingest_status_reports,
    insert_events,
)
from tenants.reports import rollups
from tenants.rich.content import OUTSIDE_WINDOW, closed_windows
from tenants.rich.content import payloads as rich_payloads
from tenants.settings import get_settings
from tenants.webhooks.deliveries import queue_status_events

T = TypeVar("T")
# Waiting longer than this for the rate limiter hands the chunk back to the broker.
MAX_RATE_WAIT_SECONDS = 2.0
SWEEP_LIMIT = 20_000
# How long a message may stay `sent` with no report before its provider is asked (and,
# when the provider cannot say, it ends `failed` with NO_DELIVERY_REPORT) is a setting per
# provider kind: delivery reports normally come within minutes, but a phone that is off
# is retried by the network for hours.
NO_REPORT_KINDS = ("simulator", "twilio", "messagemedia", "sinch_sms", "sinch_conversation")
STALE_LIMIT = 5_000
# A claim finds its messages by id; their status is only checked (tenants.db.filter_only).
STILL_ENQUEUED = filter_only("status = 'enqueued'")
RICH_CHANNELS = frozenset({"rcs", "whatsapp"})


def provider_rate() -> float:
    """Segments per second per provider integration."""
    return get_settings().sending.provider_rate


def sender_rate() -> float:
    """Segments per second per sender (number or sender ID)."""
    return get_settings().sending.sender_rate


# --- the provider port (implemented in tasks/gateways) ---------------------------------


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int  # the idempotency reference the provider keys on
    to: str
    sender: str
    body: str
    channel: str
    segments: int
    # MMS: the signed URLs of the batch's media, and its subject.
    media_urls: tuple[str, ...] = ()
    subject: str = ""
    # The provider's id for the message, when an answer or a callback naming the message by
    # its own reference told us: a retry's lookup asks the provider about this one only.
    provider_ref: str | None = None
    # A WhatsApp template or an RCS card (tenants.rich.content.payloads): {"kind", ...}.
    rich: dict[str, Any] | None = None


@dataclass(frozen=True)
class SubmitResult:
    """The provider's answer for one message. `accepted` -> `sent`; refused -> `rejected`
    with the provider's code; `not_submitted` (the platform could not hand it over, e.g. the
    integration's credentials were refused) -> `enqueued_failed`; `retry` -> a transient
    failure: the message goes back to the broker and is looked up before it is resent."""

    message_id: int
    accepted: bool
    provider_ref: str | None = None
    error_code: str | None = None
    not_submitted: bool = False
    retry: bool = False


class TransientProviderError(Exception):
    """The provider could not be reached or asked us to slow down: try again later."""


class Gateway(Protocol):
    name: str
    channels: frozenset[str]

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]: ...

    async def lookup(self, batch: Sequence[OutboundMessage]) -> dict[int, str]:
        """Which of these messages the provider already accepted (id -> provider ref), found
        by each message's own reference (our id, or its provider ref), never by its text."""
        ...

    # Optional: `async def delivery_reports(batch) -> list[StatusReport]`, the statuses the
    # provider can tell when asked (used for messages that never heard back).


class ProviderGone(LookupError):
    """The message's provider integration was disabled or removed while it waited."""


# Turns a message's `provider` key into its gateway (loads the integration's settings).
GatewayFor = Callable[[str], Awaitable[Gateway]]


# --- the shared rate limiter -------------------------------------------------------------


async def take_tokens(key: str, amount: float, rate: float, *, max_wait: float) -> float | None:
    """Take `amount` from the bucket `key` (rate per second) if the wait stays under
    `max_wait`; returns the seconds to wait before going on, or None (not taken, the
    bucket is too far behind). One conditional UPDATE, so processes share it safely."""
    if rate <= 0:
        return 0.0
    moment = time.time()
    cost = amount / rate
    rows = await run_sql(
        "UPDATE rate_bucket SET tat = (CASE WHEN tat > {} THEN tat ELSE {} END) + {} "
        "WHERE key = {} AND (CASE WHEN tat > {} THEN tat ELSE {} END) - {} <= {} RETURNING tat",
        moment,
        moment,
        cost,
        key,
        moment,
        moment,
        moment,
        max_wait,
    )
    if rows:
        return max(0.0, float(rows[0]["tat"]) - cost - moment)
    exists = await run_sql("SELECT tat FROM rate_bucket WHERE key = {}", key)
    if not exists:
        await run_sql(
            "INSERT INTO rate_bucket (key, tat) VALUES ({}, {}) ON CONFLICT (key) DO NOTHING",
            key,
            0.0,
        )
        return await take_tokens(key, amount, rate, max_wait=max_wait)
    return None


async def rate_wait(
    provider: str, sender: str, segments: int, provider_limit: float = 0
) -> float | None:
    """Seconds to wait for both the provider's and the sender's bucket, or None.
    `provider_limit` is the integration's own rate (0: the platform default)."""
    waits = []
    rates = (
        (f"provider:{provider}", provider_limit or provider_rate()),
        (f"sender:{sender}", sender_rate()),
    )
    for key, rate in rates:
        wait = await take_tokens(key, segments, rate, max_wait=MAX_RATE_WAIT_SECONDS)
        if wait is None:
            return None
        waits.append(wait)
    return max(waits)


async def seconds_until_tokens(provider: str, sender: str) -> float:
    rows = await run_sql(
        "SELECT tat FROM rate_bucket WHERE key IN ({}, {})",
        f"provider:{provider}",
        f"sender:{sender}",
    )
    latest = max((float(r["tat"]) for r in rows), default=0.0)
    return max(0.1, latest - time.time() - MAX_RATE_WAIT_SECONDS)


# --- submission ----------------------------------------------------------------------------


@dataclass
class ChunkOutcome:
    claimed: int = 0
    sent: int = 0
    rejected: int = 0
    failed: int = 0
    reconciled: int = 0
    skipped_consent: int = 0
    retry_in: float | None = None  # rate limited: hand the chunk back after this delay
    transient: bool = False  # the provider failed: retry with backoff
    remaining: list[int] = field(default_factory=list)


async def _claim(message_ids: Sequence[int], token: str) -> list[dict[str, Any]]:
    """Take the messages no one holds (or whose holder died) and that may go now.

    Only messages of active batches (or list campaigns still accepting) are taken, except those an earlier attempt may
    already have handed to the provider: they must be reconciled whatever the state.
    """
    stamp = now()
    lease_cutoff = stamp - timedelta(seconds=get_settings().sending.claim_lease_seconds)
    async with transaction():
        return await run_sql(
            "UPDATE message SET claimed_at = {}, claim_token = {} "  # noqa: S608 (only placeholders are formatted in)
            f"WHERE id IN ({placeholders(len(message_ids))}) "
            f"AND {STILL_ENQUEUED} "
            "AND (claimed_at IS NULL OR claimed_at < {}) AND release_at <= {} "
            "AND (submit_attempts > 0 OR batch_id IN "
            "(SELECT id FROM message_batch WHERE state IN ('active', 'accepting', 'cancelled'))) "
            "RETURNING id, account_id, batch_id, to_number, from_number, body, channel, "
            "segments, cost, provider, submit_attempts, provider_ref",
            stamp,
            token,
            *message_ids,
            lease_cutoff,
            stamp,
        )


async def _release(token: str, ids: Sequence[int]) -> None:
    if ids:
        await run_sql(
            "UPDATE message SET claimed_at = NULL, claim_token = NULL "  # noqa: S608 (only placeholders are formatted in)
            f"WHERE claim_token = {{}} AND id IN ({placeholders(len(ids))})",
            token,
            *ids,
        )


async def _fail(rows: Sequence[dict[str, Any]], code: str) -> int:
    """enqueued -> enqueued_failed with a reason; apply_statuses refunds them."""
    if not rows:
        return 0
    async with transaction():
        applied = await apply_statuses([(r["id"], "enqueued_failed", code) for r in rows])
        stamp = now()
        await insert_events(
            [
                (r["id"], r["account_id"], "enqueued_failed", code, True, "platform", None, stamp)
                for r in rows
                if (r["id"], "enqueued_failed") in applied
            ]
        )
    return len(applied)


async def _record_results(
    rows_by_id: dict[int, dict[str, Any]], results: Sequence[SubmitResult], source: str
) -> tuple[int, int]:
    """One transaction: accepted -> sent (with the provider ref), refused -> rejected."""
    moves: list[tuple[int, str, str | None]] = []
    refs: dict[int, str] = {}
    for result in results:
        if result.message_id not in rows_by_id:
            continue
        if result.accepted:
            moves.append((result.message_id, "sent", None))
            if result.provider_ref:
                refs[result.message_id] = result.provider_ref
        else:
            moves.append((result.message_id, "rejected", result.error_code or "CONTENT_REJECTED"))
    async with transaction(), rollups.at_end():
        applied = await apply_statuses(moves, provider_ref=refs)
        stamp = now()
        await insert_events(
            [
                (
                    message_id,
                    rows_by_id[message_id]["account_id"],
                    status,
                    code,
                    (message_id, status) in applied,
                    source,
                    None,
                    stamp,
                )
                for message_id, status, code in moves
            ]
        )
    sent = sum(1 for _, s, _ in moves if s == "sent")
    return sent, len(moves) - sent


async def _opted_out_since_accept(rows: Sequence[dict[str, Any]]) -> set[int]:
    """Messages whose recipient opted out after the send was accepted (schedules, retries,
    long campaigns): consent is checked again, set-based, right before submission."""
    by_account: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_account[(row["account_id"], row["channel"])].append(row)
    blocked: set[int] = set()
    for (account_id, channel), group in by_account.items():
        allowed, _skipped = await filter_recipients(
            account_id, [r["to_number"] for r in group], channel
        )
        allowed_set = set(allowed)
        blocked.update(r["id"] for r in group if r["to_number"] not in allowed_set)
    # A compliance confirmation (the reply to STOP) is sent despite the opt-out it confirms;
    # only the blocked can be one that matters (none, nearly always: no query).
    return blocked - await confirmation_ids(sorted(blocked)) if blocked else blocked


async def submit_chunk(message_ids: Sequence[int], gateway_for: GatewayFor) -> ChunkOutcome:
    """Submit one chunk of the outbox (idempotent: messages already taken or final are
    skipped). Called by the `submit_messages` actor with the ids it was given."""
    outcome = ChunkOutcome()
    if not message_ids:
        return outcome
    token = secrets.token_hex(8)
    rows = await _claim(list(message_ids), token)
    outcome.claimed = len(rows)
    if not rows:
        return outcome
    try:
        return await _submit_claimed(rows, token, gateway_for, outcome)
    except BaseException:
        # Let go at once, so the retry need not wait out the lease; a message that may
        # have reached the provider counts an attempt and is looked up before resending.
        await _release(token, [r["id"] for r in rows])
        raise


@dataclass
class Submission:
    """What flows between the steps of submitting one claimed chunk: the claim, the
    messages still to settle (by id) and the outcome so far."""

    token: str
    gateway_for: GatewayFor
    outcome: ChunkOutcome
    rows: dict[int, dict[str, Any]]

    def drop(self, ids: Iterable[int]) -> None:
        for message_id in ids:
            self.rows.pop(message_id, None)

    async def hand_back(self, ids: Sequence[int], *, transient: bool) -> None:
        """Let these go for the broker to bring back (rate limited or provider trouble)."""
        await _release(self.token, ids)
        self.outcome.remaining.extend(ids)
        self.outcome.transient = self.outcome.transient or transient


async def _submit_claimed(
    rows: list[dict[str, Any]], token: str, gateway_for: GatewayFor, outcome: ChunkOutcome
) -> ChunkOutcome:
    work = Submission(token, gateway_for, outcome, {r["id"]: r for r in rows})
    if not await _reconcile_earlier_attempts(work):
        return work.outcome
    await _settle_held_batches(work)
    await _skip_opted_out(work)
    await _skip_outside_service_window(work)
    # One provider call per (provider, sender): each pays into its own rate buckets.
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in work.rows.values():
        groups[(row["provider"], row["from_number"])].append(row)
    for (provider, sender), group in groups.items():
        await _submit_group(work, provider, sender, group)
    return work.outcome


async def _reconcile_earlier_attempts(work: Submission) -> bool:
    """Messages an earlier attempt may have handed over are looked up by their own
    reference first; False when the provider could not be asked (all handed back)."""
    maybe_sent = [r for r in work.rows.values() if r["submit_attempts"] > 0]
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in maybe_sent:
        by_provider[row["provider"]].append(row)
    for provider, group in by_provider.items():
        try:
            gateway = await work.gateway_for(provider)
            known = await gateway.lookup([_outbound(r) for r in group])
        except ProviderGone:
            continue  # failed below with the rest of its messages
        except TransientProviderError:
            work.outcome.remaining = []
            await work.hand_back(list(work.rows), transient=True)
            return False
        found = {mid: work.rows[mid] for mid in known if mid in work.rows}
        if found:
            await _record_results(
                found, [SubmitResult(mid, True, known[mid]) for mid in found], "platform"
            )
            work.outcome.reconciled += len(found)
            work.drop(found)
    exhausted = [
        r
        for r in maybe_sent
        if r["id"] in work.rows
        and r["submit_attempts"] >= get_settings().sending.max_submit_attempts
    ]
    work.outcome.failed += await _fail(exhausted, "PROVIDER_UNAVAILABLE")
    work.drop(r["id"] for r in exhausted)
    return True


async def _settle_held_batches(work: Submission) -> None:
    """A batch paused or cancelled while these waited: let go, or cancel and refund."""
    states = await _batch_states({r["batch_id"] for r in work.rows.values()})
    cancelled = [r for r in work.rows.values() if states.get(r["batch_id"]) == "cancelled"]
    work.outcome.failed += await _fail(cancelled, "CANCELLED")
    held = [
        r["id"]
        for r in work.rows.values()
        if states.get(r["batch_id"]) not in ("active", "accepting", "cancelled")
    ]
    await _release(work.token, held)
    work.drop([r["id"] for r in cancelled] + held)


async def _skip_opted_out(work: Submission) -> None:
    blocked = await _opted_out_since_accept(list(work.rows.values())) if work.rows else set()
    if blocked:
        work.outcome.skipped_consent = await _fail([work.rows[m] for m in blocked], "OPTED_OUT")
        work.drop(blocked)


async def _skip_outside_service_window(work: Submission) -> None:
    """Free WhatsApp text (not a template, not a compliance confirmation) whose customer
    service window closed while it waited is not sent: enqueued_failed with
    OUTSIDE_SERVICE_WINDOW (refunded), as the send itself would have skipped it now."""
    whatsapp = [r for r in work.rows.values() if r["channel"] == "whatsapp"]
    if not whatsapp:
        return
    ids = [r["id"] for r in whatsapp]
    riches = await rich_payloads(ids)
    exempt = await confirmation_ids(ids)
    free = [
        r
        for r in whatsapp
        if riches.get(r["id"], {}).get("kind") != "template" and r["id"] not in exempt
    ]
    closed = await closed_windows([(r["id"], r["from_number"], r["to_number"]) for r in free])
    if closed:
        work.outcome.failed += await _fail([work.rows[m] for m in closed], OUTSIDE_WINDOW.upper())
        work.drop(closed)


async def _submit_group(
    work: Submission, provider: str, sender: str, group: list[dict[str, Any]]
) -> None:
    """Submit one (provider, sender) group once its rate buckets allow, and record what
    the provider answered."""
    try:
        gateway = await work.gateway_for(provider)
    except ProviderGone:
        work.outcome.failed += await _fail(group, "PROVIDER_DISABLED")
        return
    unsupported = [r for r in group if r["channel"] not in gateway.channels]
    work.outcome.rejected += await _fail(unsupported, "CHANNEL_UNSUPPORTED")
    group = [r for r in group if r["channel"] in gateway.channels]
    if not group or not await _wait_for_tokens(work, gateway, provider, sender, group):
        return
    ids = [r["id"] for r in group]
    await run_sql(
        "UPDATE message SET submit_attempts = submit_attempts + 1 "  # noqa: S608 (only placeholders are formatted in)
        f"WHERE claim_token = {{}} AND id IN ({placeholders(len(ids))})",
        work.token,
        *ids,
    )
    # Templates are WhatsApp's and cards RCS's (rich.content.check_rich): an SMS or MMS
    # group carries none, so it does not look.
    rich = [r["id"] for r in group if r["channel"] in RICH_CHANNELS]
    riches = await rich_payloads(rich) if rich else {}
    try:
        results = await gateway.submit(await _with_media(group, riches))
    except TransientProviderError:
        await work.hand_back(ids, transient=True)
        return
    await _settle_answers(work, {r["id"]: r for r in group}, results)


async def _wait_for_tokens(
    work: Submission, gateway: Gateway, provider: str, sender: str, group: list[dict[str, Any]]
) -> bool:
    """Pay the group's segments into the provider's and the sender's buckets (waiting a
    little if needed); False when the buckets are too far behind (handed back)."""
    wait = await rate_wait(
        provider,
        sender or "-",
        sum(r["segments"] for r in group),
        float(getattr(gateway, "rate_limit", 0) or 0),
    )
    if wait is None:
        await work.hand_back([r["id"] for r in group], transient=False)
        work.outcome.retry_in = await seconds_until_tokens(provider, sender or "-")
        return False
    if wait > 0:
        await asyncio.sleep(wait)
    return True


async def _settle_answers(
    work: Submission, by_id: dict[int, dict[str, Any]], results: Sequence[SubmitResult]
) -> None:
    """accepted -> sent, refused -> rejected, not handed over -> enqueued_failed; what the
    gateway could not settle (or left out) goes back to the broker."""
    answered = {res.message_id for res in results}
    again = [mid for mid in by_id if mid not in answered] + [
        res.message_id for res in results if res.retry and res.message_id in by_id
    ]
    if again:
        await work.hand_back(again, transient=True)
    not_submitted: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for res in results:
        if res.not_submitted and not res.retry and res.message_id in by_id:
            not_submitted[res.error_code or "PROVIDER_UNAVAILABLE"].append(by_id[res.message_id])
    for code, failed_rows in not_submitted.items():
        work.outcome.failed += await _fail(failed_rows, code)
    settled = [r for r in results if not r.retry and not r.not_submitted]
    sent, rejected = await _record_results(by_id, settled, "provider")
    work.outcome.sent += sent
    work.outcome.rejected += rejected


def _outbound(row: dict[str, Any], rich: dict[str, Any] | None = None) -> OutboundMessage:
    return OutboundMessage(
        message_id=row["id"],
        to=row["to_number"],
        sender=row["from_number"],
        body=row["body"],
        channel=row["channel"],
        segments=row["segments"],
        provider_ref=row.get("provider_ref"),
        rich=rich,
    )


async def _with_media(
    rows: list[dict[str, Any]], riches: dict[int, dict[str, Any]] | None = None
) -> list[OutboundMessage]:
    """The rows as messages, MMS ones with their batch's signed media URLs and subject,
    WhatsApp templates and RCS cards with their rich content."""
    messages = [_outbound(r, (riches or {}).get(r["id"])) for r in rows]
    mms = [r["batch_id"] for r in rows if r["channel"] == "mms" and r["batch_id"]]
    if not mms:
        return messages
    media = await mms_media.signed_media_of(mms)
    return [
        replace(m, media_urls=media[r["batch_id"]][0], subject=media[r["batch_id"]][1])
        if r["batch_id"] in media and r["channel"] == "mms"
        else m
        for r, m in zip(rows, messages, strict=True)
    ]


async def _batch_states(batch_ids: set[int]) -> dict[int, str]:
    ids = sorted(b for b in batch_ids if b is not None)
    if not ids:
        return {}
    rows = await run_sql(
        f"SELECT id, state FROM message_batch WHERE id IN ({placeholders(len(ids))})",  # noqa: S608 (only placeholders are formatted in)
        *ids,
    )
    return {r["id"]: r["state"] for r in rows}


# --- the sweeper and the scheduler ---------------------------------------------------------


async def release_due_batches() -> list[list[int]]:
    """Scheduled sends whose time has come: flip them active (one conditional UPDATE, so
    one process wins); their messages go to the broker in chunks after commit."""
    stamp = now()
    async with transaction():
        released = await run_sql(
            "UPDATE message_batch SET state = 'active' WHERE state = 'scheduled' "
            "AND send_at <= {} RETURNING id",
            stamp,
        )
        chunks: list[list[int]] = []
        for row in released:
            rows = await run_sql(
                "UPDATE message SET dispatched_at = {} WHERE batch_id = {} "
                "AND status = 'enqueued' RETURNING id",
                stamp,
                row["id"],
            )
            chunks.extend(chunked(sorted(r["id"] for r in rows), chunk_size()))
        await handoff.outbox_written(chunks)
    return chunks


async def lost_work(limit: int = SWEEP_LIMIT) -> list[list[int]]:
    """`enqueued` messages of active batches handed to the broker long ago and held by no
    live worker: their work was lost (crash, broker restart). Marked re-dispatched in one
    conditional UPDATE, so two sweepers never both take the same message."""
    stamp = now()
    grace_cutoff = stamp - timedelta(seconds=get_settings().sending.sweep_grace_seconds)
    lease_cutoff = stamp - timedelta(seconds=get_settings().sending.claim_lease_seconds)
    async with transaction():
        candidates = await run_sql(
            "SELECT m.id FROM message m JOIN message_batch b ON b.id = m.batch_id "
            "WHERE m.status = 'enqueued' AND m.dispatched_at < {} AND m.release_at <= {} "
            "AND (m.claimed_at IS NULL OR m.claimed_at < {}) "
            "AND (b.state IN ('active', 'accepting', 'cancelled') OR m.submit_attempts > 0) "
            "ORDER BY m.id LIMIT {}",
            grace_cutoff,
            stamp,
            lease_cutoff,
            limit,
        )
        ids = [r["id"] for r in candidates]
        taken: list[int] = []
        for part in chunked(ids, 500):
            rows = await run_sql(
                "UPDATE message SET dispatched_at = {} "  # noqa: S608 (only placeholders are formatted in)
                f"WHERE id IN ({placeholders(len(part))}) AND dispatched_at < {{}} "
                "AND status = 'enqueued' RETURNING id",
                stamp,
                *part,
                grace_cutoff,
            )
            taken.extend(r["id"] for r in rows)
        chunks = chunked(sorted(taken), chunk_size())
        await handoff.outbox_written(chunks)
    return chunks


async def release_held_messages(limit: int = SWEEP_LIMIT) -> list[list[int]]:
    """Messages held for quiet hours whose release time has come, handed to the broker once
    (the conditional UPDATE moves `dispatched_at` past `held_until`: one process wins)."""
    stamp = now()
    async with transaction():
        rows = await run_sql(
            "UPDATE message SET dispatched_at = {} WHERE id IN (SELECT m.id FROM message m "
            "JOIN message_batch b ON b.id = m.batch_id WHERE m.held_until IS NOT NULL "
            "AND m.held_until <= {} AND m.dispatched_at < m.held_until "
            "AND m.status = 'enqueued' AND b.state IN ('active', 'accepting') "
            "ORDER BY m.id LIMIT {}) "
            "AND dispatched_at < held_until RETURNING id",
            stamp,
            stamp,
            limit,
        )
        chunks = chunked(sorted(r["id"] for r in rows), chunk_size())
        await handoff.outbox_written(chunks)
    return chunks


async def sweep() -> list[list[int]]:
    """Everything the periodic job must hand to the broker now: due schedules, quiet-hour
    holds whose time has come, lost work."""
    return [
        *(await release_due_batches()),
        *(await release_held_messages()),
        *(await lost_work()),
    ]


async def mark_dispatched(message_ids: Sequence[int]) -> None:
    for part in chunked(list(message_ids), 500):
        await run_sql(
            f"UPDATE message SET dispatched_at = {{}} WHERE id IN ({placeholders(len(part))})",  # noqa: S608 (only placeholders are formatted in)
            now(),
            *part,
        )


async def redispatch_batch(batch_id: int) -> list[list[int]]:
    """A resumed send: its waiting messages go to the broker again after commit (their
    earlier work found the batch paused and let go)."""
    rows = await run_sql(
        "UPDATE message SET dispatched_at = {} WHERE batch_id = {} AND status = 'enqueued' "
        "AND claimed_at IS NULL AND release_at <= {} RETURNING id",
        now(),
        batch_id,
        now(),
    )
    chunks = chunked(sorted(r["id"] for r in rows), chunk_size())
    await handoff.outbox_written(chunks)
    return chunks


# --- messages that never heard back ---------------------------------------------------------


def no_report_window(kind: str) -> float:
    """Seconds a message of this provider kind may stay `sent` without a report."""
    return get_settings().providers.no_report_window(kind)


@dataclass
class StaleOutcome:
    looked_up: int = 0
    reported: int = 0  # the provider told us where they are
    failed: int = 0  # the provider could not say: failed with NO_DELIVERY_REPORT


async def resolve_stale_sent(gateway_for: GatewayFor, limit: int = STALE_LIMIT) -> StaleOutcome:
    """Never stuck: messages `sent` longer than their provider's window with no report are
    asked about through the gateway; what the provider cannot settle ends `failed`
    (NO_DELIVERY_REPORT, no refund: the provider took it). Idempotent, any process."""
    outcome = StaleOutcome()
    shortest = min(no_report_window(kind) for kind in [*NO_REPORT_KINDS, ""])
    providers = await run_sql(
        "SELECT DISTINCT provider FROM message WHERE status = 'sent' AND updated_at < {}",
        now() - timedelta(seconds=shortest),
    )
    for row in providers:
        try:
            gateway: Gateway | None = await gateway_for(row["provider"])
        except ProviderGone:
            gateway = None
        kind = str(getattr(gateway, "kind", "") or row["provider"])
        cutoff = now() - timedelta(seconds=no_report_window(kind))
        stale = await run_sql(
            "SELECT id, account_id, to_number, from_number, body, channel, segments, "
            "provider_ref FROM message WHERE status = 'sent' AND provider = {} "
            "AND updated_at < {} ORDER BY id LIMIT {}",
            row["provider"],
            cutoff,
            limit,
        )
        for part in chunked(stale, 500):
            await _settle_stale(gateway, part, outcome)
    return outcome


async def _settle_stale(
    gateway: Gateway | None, rows: list[dict[str, Any]], outcome: StaleOutcome
) -> None:
    """Ask the provider (when its gateway can read statuses back), ingest what it says,
    and fail what is still `sent` afterwards."""
    outcome.looked_up += len(rows)
    reader = getattr(gateway, "delivery_reports", None)
    if reader is not None:
        try:
            reports: list[StatusReport] = await reader([_outbound(r) for r in rows])
        except TransientProviderError:
            return  # the provider cannot be asked now: the next pass asks again
        result = await ingest_status_reports(reports)
        outcome.reported += result.applied
    ids = [r["id"] for r in rows]
    async with transaction():
        moved = await run_sql(
            "UPDATE message SET status = 'failed', error_code = 'NO_DELIVERY_REPORT', "  # noqa: S608 (only placeholders are formatted in)
            f"updated_at = {{}} WHERE id IN ({placeholders(len(ids))}) AND status = 'sent' "
            f"RETURNING id, {rollups.RETURNING}",
            now(),
            *ids,
        )
        await rollups.record(rollups.moves_from_rows(moved, "sent", "failed"))
        stamp = now()
        # Platform events: any provider report that comes later still wins (messages.py).
        await insert_events(
            [
                (
                    r["id"],
                    r["account_id"],
                    "failed",
                    "NO_DELIVERY_REPORT",
                    True,
                    "platform",
                    None,
                    stamp,
                )
                for r in moved
            ]
        )
        if moved:
            await queue_status_events([(r["id"], "failed", "NO_DELIVERY_REPORT") for r in moved])
    outcome.failed += len(moved)
