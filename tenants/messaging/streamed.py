"""Campaigns to contact lists (or tags) of any size, streamed from the database.

The request answers at once: the campaign and its batch are written in state `accepting`
with the request to replay. A worker (tasks.list_campaigns) then takes the lists' contacts
a chunk at a time by keyset on contact id (LIST_CHUNK_SIZE) and, per chunk, in one
transaction: moves the batch's cursor from where it was to the chunk's last contact (a
conditional UPDATE, so two workers never write one chunk twice), filters consent, prices,
reserves the chunk's credits (one reservation per chunk, keyed by its cursor), writes the
outbox and the skipped recipients, and adds to the batch's counters. The messages of a
chunk go to the sending queue when it commits, so sending runs beside accepting.

A crash loses at most the chunk in flight (rolled back); the next run starts from the
committed cursor. When the credits run out, the chunk that cannot be paid and every later
contact are skipped as `insufficient_credits` and the campaign goes on with what was paid.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tenants.audit import record as audit
from tenants.clock import now
from tenants.contacts.tables import ContactList
from tenants.db import copy_rows, is_unique_violation, placeholders, run_sql, transaction
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.media import sending as mms
from tenants.messaging import accept
from tenants.messaging.accept import BatchRef, Content, SendRequest
from tenants.messaging.messages import csv_cell
from tenants.messaging.tables import Batch, BatchSkip, Campaign
from tenants.reports import rollups
from tenants.reports.rollups import add_batch_counts
from tenants.settings import get_settings

ACCEPTING = "accepting"
NO_CREDITS = "insufficient_credits"


def chunk_size() -> int:
    return get_settings().sending.list_chunk_size


def is_streamed(req: SendRequest) -> bool:
    """A named campaign to lists or tags only, sent now: accepted a chunk at a time in the
    background. Typed numbers, chosen contacts, scheduled sends, uploaded files and rich
    content keep the one-transaction accept (they are bounded by the request)."""
    return bool(
        req.campaign_name
        and (req.list_ids or req.tags)
        and not (req.numbers or req.contact_ids or req.new_media)
        and req.send_at is None
        and req.rich is None
    )


@dataclass(frozen=True)
class Started:
    """What the request answers: the campaign and batch, accepting in the background."""

    campaign_id: int
    batch_id: int
    state: str
    replayed: bool = False


# --- the request, kept on the batch -------------------------------------------------------

_KEPT = (
    "account_id", "list_ids", "tags", "body", "template_id", "variables", "sender",
    "channel", "campaign_name", "media_ids", "subject", "track_links",
)  # fmt: skip


def _request_json(req: SendRequest, actor: audit.Actor) -> str:
    kept: dict[str, Any] = {name: getattr(req, name) for name in _KEPT}
    kept.update(
        list_ids=list(req.list_ids),
        tags=list(req.tags),
        media_ids=list(req.media_ids),
        permissions=sorted(req.permissions),
        actor={"user_id": actor.user_id, "api_key_id": actor.api_key_id, "label": actor.label},
    )
    return json.dumps(kept, sort_keys=True)


def _request_of(text: str) -> tuple[SendRequest, audit.Actor]:
    kept = json.loads(text)
    actor = audit.Actor(**kept.pop("actor"))
    permissions = frozenset(kept.pop("permissions"))
    return SendRequest(**kept, permissions=permissions), actor


# --- starting -------------------------------------------------------------------------


# A preview lists this many of the skipped recipients (and names this many accepted ones
# for the WhatsApp window check); every one of them is counted.
PREVIEW_SHOWN = 200
# A preview plans at most this many contacts (a page answers in seconds, not minutes, for
# a list of millions) and then says the lists hold more.
PREVIEW_CONTACTS = 100_000


@dataclass
class Preview:
    """What a campaign to lists would send, counted a chunk at a time as the worker will
    accept it (consent, rendering, segments, prices), writing nothing and holding one chunk
    in memory at a time: the summary the send page shows for any other send, with a sample
    of who would be skipped instead of every one of them."""

    accepted_count: int = 0
    skipped_count: int = 0
    segments: int = 0
    total_cost: int = 0
    held: int = 0
    held_until: datetime | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # the first PREVIEW_SHOWN
    reasons: Counter[str] = field(default_factory=Counter)
    shown_accepted: list[str] = field(default_factory=list)
    dry_run: bool = True
    scheduled_for: datetime | None = None
    contacts_planned: int = 0
    more: bool = False  # the lists hold contacts past the PREVIEW_CONTACTS planned

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(self.reasons.items()))

    def accepted_phones(self, limit: int) -> list[str]:
        return self.shown_accepted[:limit]

    def add(self, plan: accept.Plan) -> None:
        self.accepted_count += len(plan.messages)
        self.skipped_count += len(plan.skipped)
        self.segments += plan.segments
        self.total_cost += plan.total_cost
        self.held += len(plan.held)
        latest = max(plan.held.values(), default=None)
        if latest is not None and (self.held_until is None or latest > self.held_until):
            self.held_until = latest
        self.reasons.update(reason for _, reason in plan.skipped)
        self.skipped += plan.skipped[: PREVIEW_SHOWN - len(self.skipped)]
        room = PREVIEW_SHOWN - len(self.shown_accepted)
        self.shown_accepted += [m.to for m in plan.messages[:room]]


async def preview(req: SendRequest) -> Preview:
    """The campaign's summary before it is sent: the request checked as start_list_campaign
    checks it, then each chunk planned as _accept_chunk plans it (nothing reserved), up to
    PREVIEW_CONTACTS contacts (`more` says the lists go on)."""
    req, content = await accept.prepare_send(req)
    await _check_lists(req)
    summary = Preview()
    cursor = 0
    while chosen := await next_contacts(req, cursor, chunk_size()):
        if summary.contacts_planned >= PREVIEW_CONTACTS:
            summary.more = True
            break
        summary.add(await accept.plan_contacts(req, content, chosen))
        summary.contacts_planned += len(chosen)
        cursor = chosen[-1][0]
    return summary


async def _check_lists(req: SendRequest) -> None:
    wanted = set(req.list_ids)
    if not wanted:
        return
    own = await ContactList.count().where(
        (ContactList.account_id == req.account_id) & ContactList.id.is_in(sorted(wanted))
    )
    if own != len(wanted):
        raise ValidationFailed({"list_ids": "No such contact list."})


async def _replay(scope: str, fingerprint: str) -> Started | None:
    row = (
        await Batch.select(Batch.id, Batch.campaign_id, Batch.state, Batch.request_hash)
        .where(Batch.idempotency_scope == scope)
        .first()
    )
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used for a different request.", code="idempotency_key_reused"
        )
    return Started(row["campaign_id"], row["id"], row["state"], replayed=True)


async def start_list_campaign(req: SendRequest, *, actor: audit.Actor) -> Started:
    """Check the request as a send would (422 / 403 now, not in the worker) and write the
    campaign and its batch `accepting`; the caller hands the batch id to the worker."""
    scope = f"{req.account_id}:{req.idempotency_key}" if req.idempotency_key else None
    if scope and (replayed := await _replay(scope, req.fingerprint())):
        return replayed
    req, content = await accept.prepare_send(req)
    await _check_lists(req)
    try:
        async with transaction():
            return await _write_start(req, content, scope, actor)
    except Exception as exc:
        if (
            scope
            and is_unique_violation(exc)
            and (replayed := await _replay(scope, req.fingerprint()))
        ):
            return replayed
        raise


async def _write_start(
    req: SendRequest, content: Content, scope: str | None, actor: audit.Actor
) -> Started:
    name = (req.campaign_name or "").strip()
    campaign_id = (
        await Campaign.insert(
            Campaign(account_id=req.account_id, name=name, created_by=actor.label)
        ).returning(Campaign.id)
    )[0]["id"]
    batch_id = (
        await Batch.insert(
            Batch(
                account_id=req.account_id,
                campaign_id=campaign_id,
                idempotency_scope=scope,
                request_hash=req.fingerprint(),
                channel=req.channel,
                sender=req.sender,
                body=content.text,
                template_id=content.template_id,
                state=ACCEPTING,
                created_by=actor.label,
                stream_request=_request_json(req, actor),
                stream_touched_at=now(),
            )
        ).returning(Batch.id)
    )[0]["id"]
    await Campaign.update({Campaign.batch_id: batch_id}).where(Campaign.id == campaign_id)
    if content.media is not None:
        await mms.attach(batch_id, req.account_id, content.media)
    await audit.record(
        actor,
        account_id=req.account_id,
        action="campaign.create",
        target_type="campaign",
        target_id=campaign_id,
        after={
            "batch_id": batch_id,
            "list_ids": sorted(set(req.list_ids)),
            "tags": list(req.tags),
            "channel": req.channel,
            "template_id": content.template_id,
            "streamed": True,
        },
    )
    return Started(campaign_id, batch_id, ACCEPTING)


# --- the chunks -----------------------------------------------------------------------


def _chosen_sql(req: SendRequest) -> tuple[str, list[Any]]:
    """The WHERE of the campaign's contacts (in a list of it or with a tag of it). Scalar
    sub-queries, not EXISTS: PostgreSQL cannot turn them into a semi join over the whole
    list, so a chunk walks the contacts' primary key from the cursor and probes the
    members' contact_id index per contact (about 0.1 s per 10,000 on a 1M list, where
    the semi join took 0.6 s to 14 s depending on the statistics)."""
    parts: list[str] = []
    args: list[Any] = [req.account_id]
    if req.list_ids:
        lists = sorted(set(req.list_ids))
        parts.append(
            "(SELECT 1 FROM contact_list_member m WHERE m.contact_id = c.id "  # noqa: S608 (only placeholders are formatted in)
            f"AND m.list_id IN ({placeholders(len(lists))}) LIMIT 1) IS NOT NULL"
        )
        args.extend(lists)
    if req.tags:
        tags = sorted({t.strip().lower() for t in req.tags})
        parts.append(
            "(SELECT 1 FROM contact_tag t WHERE t.contact_id = c.id AND t.account_id = {} "  # noqa: S608 (only placeholders are formatted in)
            f"AND t.tag IN ({placeholders(len(tags))}) LIMIT 1) IS NOT NULL"
        )
        args.extend([req.account_id, *tags])
    return f"c.account_id = {{}} AND ({' OR '.join(parts)})", args


async def next_contacts(req: SendRequest, after: int, limit: int) -> list[tuple[int, str]]:
    """(contact id, phone) of the next `limit` contacts of the campaign after `after`."""
    where, args = _chosen_sql(req)
    rows = await run_sql(
        f"SELECT c.id, c.phone FROM contact c WHERE {where} AND c.id > {{}} "  # noqa: S608 (only placeholders are formatted in)
        "ORDER BY c.id LIMIT {}",
        *args,
        after,
        limit,
    )
    return [(int(r["id"]), r["phone"] or "") for r in rows]


class _Lost(Exception):
    """Another run moved the cursor first (or the campaign left `accepting`)."""


@dataclass
class RunOutcome:
    chunks: int = 0
    accepted: int = 0
    skipped: int = 0
    finished: bool = False  # accepting is over (done, stopped or taken by another run)


async def _move_cursor(batch_id: int, old: int, new: int) -> None:
    rows = await run_sql(
        "UPDATE message_batch SET stream_cursor = {}, stream_touched_at = {} "
        "WHERE id = {} AND stream_cursor = {} AND state = {} RETURNING id",
        new,
        now(),
        batch_id,
        old,
        ACCEPTING,
    )
    if not rows:
        raise _Lost


async def _add_to_batch(
    batch_id: int, accepted: int, skipped: int, segments: int, cost: int
) -> None:
    await run_sql(
        "UPDATE message_batch SET accepted = accepted + {}, skipped = skipped + {}, "
        "segments = segments + {}, total_cost = total_cost + {} WHERE id = {}",
        accepted,
        skipped,
        segments,
        cost,
        batch_id,
    )


async def _record_skips(
    batch_id: int, skipped: Sequence[tuple[str, str]], contact_of: dict[str, int]
) -> None:
    if not skipped:
        return
    await copy_rows(
        "batch_skip",
        ("batch_id", "contact_id", "recipient", "reason"),
        [(batch_id, contact_of.get(to), to[:64], reason) for to, reason in skipped],
    )
    reasons = Counter(reason for _, reason in skipped)
    await add_batch_counts({(batch_id, f"skip:{r}"): (n, 0) for r, n in reasons.items()})


async def _accept_chunk(
    batch: dict[str, Any], req: SendRequest, content: Content, actor: audit.Actor, cursor: int
) -> tuple[int, int] | None:
    """One chunk after `cursor` in one transaction; (accepted, skipped), or None at the end."""
    chosen = await next_contacts(req, cursor, chunk_size())
    if not chosen:
        return None
    plan = await accept.plan_contacts(req, content, chosen)
    into = BatchRef(batch["id"], batch["campaign_id"], f"send:batch:{batch['id']}:after:{cursor}")
    async with transaction(), rollups.at_end():
        await _move_cursor(batch["id"], cursor, chosen[-1][0])
        await accept.write_chunk(req, plan, into, actor=actor)
        await _record_skips(batch["id"], plan.skipped, {p: c for c, p in chosen})
        await _add_to_batch(
            batch["id"], len(plan.messages), len(plan.skipped), plan.segments, plan.total_cost
        )
    return len(plan.messages), len(plan.skipped)


async def _stop(batch: dict[str, Any], req: SendRequest, cursor: int, reason: str) -> int:
    """End accepting early: every contact after the cursor is skipped with `reason` (one
    INSERT ... SELECT, nothing in memory); the campaign sends what was accepted."""
    async with transaction():
        await _finish(batch["id"], cursor, reason)
        where, args = _chosen_sql(req)
        await run_sql(
            "INSERT INTO batch_skip (batch_id, contact_id, recipient, reason) "  # noqa: S608 (only placeholders are formatted in)
            f"SELECT {{}}, c.id, c.phone, {{}} FROM contact c WHERE {where} AND c.id > {{}}",
            batch["id"],
            reason,
            *args,
            cursor,
        )
        # Counted by the database: the rest of a list may be a million rows.
        counted = await run_sql(
            "SELECT COUNT(*) AS n FROM batch_skip WHERE batch_id = {} AND reason = {}",
            batch["id"],
            reason,
        )
        skipped = int(counted[0]["n"]) - await _skipped_before(batch["id"], reason)
        if skipped:
            await add_batch_counts({(batch["id"], f"skip:{reason}"): (skipped, 0)})
            await _add_to_batch(batch["id"], 0, skipped, 0, 0)
        return skipped


async def _skipped_before(batch_id: int, reason: str) -> int:
    """What the counters already hold for this reason (chunks may have skipped some)."""
    rows = await run_sql("SELECT n FROM batch_tally WHERE key = {}", f"{batch_id}|skip:{reason}")
    return int(rows[0]["n"]) if rows else 0


async def _finish(batch_id: int, cursor: int, reason: str = "") -> None:
    rows = await run_sql(
        "UPDATE message_batch SET state = 'active', stop_reason = {}, stream_touched_at = {} "
        "WHERE id = {} AND stream_cursor = {} AND state = {} RETURNING id",
        reason,
        now(),
        batch_id,
        cursor,
        ACCEPTING,
    )
    if not rows:
        raise _Lost


async def _accepting(batch_id: int) -> dict[str, Any] | None:
    return (
        await Batch.select(
            Batch.id, Batch.campaign_id, Batch.state, Batch.stream_cursor, Batch.stream_request
        )
        .where((Batch.id == batch_id) & (Batch.state == ACCEPTING))
        .first()
    )


async def run(batch_id: int, *, budget_seconds: float = 60.0) -> RunOutcome:
    """Accept the campaign's chunks from its cursor on, for about `budget_seconds` (the
    caller runs it again while `finished` is false). Safe to run twice at once or again
    after a crash: each chunk is written once, by the run that moves the cursor."""
    outcome = RunOutcome()
    batch = await _accepting(batch_id)
    if batch is None or not batch["stream_request"]:
        outcome.finished = True
        return outcome
    req, actor = _request_of(batch["stream_request"])
    cursor = int(batch["stream_cursor"])
    try:
        req, content = await accept.prepare_send(req)
        await _chunks(batch, req, content, actor, cursor, budget_seconds, outcome)
    except _Lost:
        outcome.finished = True
    except (ValidationFailed, PermissionDenied, NotFound, Conflict) as exc:
        # The template was archived, a permission or the channel went, the credits ran
        # out (or a month's cap): what is left is skipped with the reason.
        reason = getattr(exc, "code", "") or "invalid_request"
        current = await _accepting(batch_id)
        if current is not None:
            cursor = int(current["stream_cursor"])
            with contextlib.suppress(_Lost):  # another run stopped it first
                outcome.skipped += await _stop(current, req, cursor, reason)
        outcome.finished = True
    return outcome


async def _chunks(
    batch: dict[str, Any],
    req: SendRequest,
    content: Content,
    actor: audit.Actor,
    cursor: int,
    budget_seconds: float,
    outcome: RunOutcome,
) -> None:
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        done = await _accept_chunk(batch, req, content, actor, cursor)
        if done is None:
            async with transaction():
                await _finish(batch["id"], cursor)
            outcome.finished = True
            return
        outcome.chunks += 1
        outcome.accepted += done[0]
        outcome.skipped += done[1]
        current = await _accepting(batch["id"])
        if current is None:  # cancelled meanwhile
            outcome.finished = True
            return
        cursor = int(current["stream_cursor"])


async def stalled(grace: timedelta, *, at: datetime | None = None) -> list[int]:
    """Campaigns still accepting whose worker has not moved them for `grace` (it was killed,
    or the broker lost its message): the sweep hands them to a worker again."""
    cutoff = (at or now()) - grace
    rows = await Batch.select(Batch.id).where(
        (Batch.state == ACCEPTING) & (Batch.stream_touched_at < cutoff)
    )
    return [r["id"] for r in rows]


async def touch(batch_ids: Sequence[int]) -> None:
    """Mark these campaigns as handed to a worker now (the sweep does not take them again
    before the grace is over)."""
    if batch_ids:
        await Batch.update({Batch.stream_touched_at: now()}).where(
            Batch.id.is_in(list(batch_ids)) & (Batch.state == ACCEPTING)
        )


SKIPPED_PAGE = 5_000


async def skipped_pages(batch_id: int) -> AsyncIterator[list[list[str]]]:
    """The skipped recipients of a list campaign, (recipient, reason), a page at a time."""
    last = 0
    while True:
        rows = (
            await BatchSkip.select(BatchSkip.id, BatchSkip.recipient, BatchSkip.reason)
            .where((BatchSkip.batch_id == batch_id) & (BatchSkip.id > last))
            .order_by(BatchSkip.id)
            .limit(SKIPPED_PAGE)
        )
        if not rows:
            return
        yield [[csv_cell(r["recipient"]), r["reason"]] for r in rows]
        last = rows[-1]["id"]
