"""Accepting a send: resolve recipients, normalise and consent-filter them set-based, render
and count each message exactly, price it by destination country, reserve the whole cost
and write the outbox, all in one transaction. Work is handed to the broker by the caller
after commit (the sweeper covers a crash in between)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from tenants.accounts.tables import Account
from tenants.audit import record as audit
from tenants.clock import now
from tenants.consent import consent
from tenants.contacts import contacts
from tenants.credits import ledger as credits
from tenants.db import chunked, is_sqlite, placeholders, run_sql, transaction
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.messaging.messages import CHANNELS, CHUNK_SIZE
from tenants.messaging.tables import Batch, Campaign
from tenants.numbers.numbers import resolve_sender
from tenants.providers.integrations import provider_for
from tenants.templates import templates
from tenants.templates.merge_fields import fields_in, render
from tenants.templates.segments import count_segments

MAX_BODY = 1600  # ten concatenated GSM-7 segments and then some
MAX_RECIPIENTS = 200_000
MAX_SCHEDULE_AHEAD = timedelta(days=366)
ALNUM_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
NUMERIC_SENDER = re.compile(r"^\+?[0-9]{1,15}$")
INSERT_ROWS = 500


@dataclass(frozen=True)
class SendRequest:
    """What a person or key asked for; `allow_free_text` is their `messages.send` grant."""

    account_id: int
    numbers: Sequence[str] = ()
    contact_ids: Sequence[int] = ()
    list_ids: Sequence[int] = ()
    tags: Sequence[str] = ()
    body: str | None = None
    template_id: int | None = None
    variables: dict[str, str] = field(default_factory=dict)
    sender: str = ""
    channel: str = "sms"
    send_at: datetime | None = None
    campaign_name: str | None = None
    idempotency_key: str | None = None
    allow_free_text: bool = False
    # A STOP/START/HELP confirmation: sent even to the phone that just opted out.
    compliance_reply: bool = False

    def fingerprint(self) -> str:
        canonical = json.dumps(
            {
                "numbers": list(self.numbers),
                "contact_ids": list(self.contact_ids),
                "list_ids": list(self.list_ids),
                "tags": list(self.tags),
                "body": self.body,
                "template_id": self.template_id,
                "variables": self.variables,
                "sender": self.sender,
                "channel": self.channel,
                "send_at": self.send_at.isoformat() if self.send_at else None,
                "campaign_name": self.campaign_name,
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    to: str
    message_id: int | None
    segments: int
    cost: int
    encoding: str = "GSM-7"


@dataclass
class SendResult:
    batch_id: int | None
    accepted: list[Accepted]
    skipped: list[tuple[str, str]]
    total_cost: int
    segments: int
    dry_run: bool = False
    replayed: bool = False
    scheduled_for: datetime | None = None
    campaign_id: int | None = None
    chunks: list[list[int]] = field(default_factory=list)  # to hand to the broker now

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))


# --- validation ------------------------------------------------------------------------


def validate_sender(sender: str) -> str | None:
    """Alphanumeric sender IDs: at most 11 characters; numeric: at most 15 digits, +."""
    if not sender or ALNUM_SENDER.match(sender) or NUMERIC_SENDER.match(sender):
        return None
    return (
        "A sender is a number of at most 15 digits (optional +) or at most 11 letters and digits."
    )


def _validate(req: SendRequest) -> dict[str, str]:
    errors: dict[str, str] = {}
    if req.channel not in CHANNELS:
        errors["channel"] = f"Choose one of {', '.join(CHANNELS)}."
    if req.body is not None and req.template_id is not None:
        errors["body"] = "Send either a body or a template, not both."
    elif req.body is None and req.template_id is None:
        errors["body"] = "Write a message or choose a template."
    elif req.body is not None and not req.body.strip():
        errors["body"] = "The message is empty."
    elif req.body is not None and len(req.body) > MAX_BODY:
        errors["body"] = f"The message is longer than {MAX_BODY} characters."
    if sender_error := validate_sender(req.sender):
        errors["sender"] = sender_error
    if not (req.numbers or req.contact_ids or req.list_ids or req.tags):
        errors["to"] = "Add at least one recipient."
    if len(req.numbers) > MAX_RECIPIENTS:
        errors["to"] = f"At most {MAX_RECIPIENTS:,} recipients per send."
    if req.send_at is not None:
        if req.send_at.tzinfo is None:
            errors["send_at"] = "Give the time with its time zone."
        elif req.send_at > now() + MAX_SCHEDULE_AHEAD:
            errors["send_at"] = "Schedule at most a year ahead."
    if req.campaign_name is not None and not (0 < len(req.campaign_name.strip()) <= 120):
        errors["campaign_name"] = "A campaign name has 1 to 120 characters."
    for name, value in req.variables.items():
        if not isinstance(value, str):
            errors["variables"] = f"Variable {name!r} must be a string."
    return errors


async def account_timezone(account_id: int) -> ZoneInfo:
    row = await Account.select(Account.timezone).where(Account.id == account_id).first()
    try:
        return ZoneInfo((row or {}).get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# --- recipients ------------------------------------------------------------------------


@dataclass
class _Recipients:
    phones: list[str]  # raw strings in order (numbers typed, then contacts' phones)
    contact_for: dict[str, int]  # raw phone of a contact -> contact id
    no_phone: list[tuple[str, str]]


async def _resolve(req: SendRequest) -> _Recipients:
    """Numbers as typed plus the phones of the chosen contacts, lists and tags (set-based)."""
    phones = [n.strip() for n in req.numbers if isinstance(n, str) and n.strip()]
    contact_for: dict[str, int] = {}
    no_phone: list[tuple[str, str]] = []
    if req.contact_ids or req.list_ids or req.tags:
        try:
            chosen = await contacts.recipient_phones(
                req.account_id,
                contact_ids=req.contact_ids,
                list_ids=req.list_ids,
                tags=req.tags,
            )
        except NotFound:
            raise ValidationFailed({"list_ids": "No such contact list."}) from None
        missing = set(req.contact_ids) - {contact_id for contact_id, _ in chosen}
        if missing:
            raise ValidationFailed(
                {"contact_ids": f"No such contact: {', '.join(map(str, sorted(missing)))}."}
            )
        for contact_id, phone in chosen:
            if not (phone or "").strip():
                no_phone.append((f"contact {contact_id}", "no_phone"))
                continue
            phones.append(phone)
            contact_for.setdefault(phone, contact_id)
    return _Recipients(phones=phones, contact_for=contact_for, no_phone=no_phone)


async def _contact_values(account_id: int, phones: Sequence[str]) -> dict[str, dict[str, str]]:
    """Merge values (first_name, last_name, custom fields) of the contacts with these numbers."""
    values: dict[str, dict[str, str]] = {}
    for part in chunked(list(phones), 5000):
        rows = await run_sql(
            "SELECT id, phone, first_name, last_name, fields FROM contact WHERE account_id = {} "  # noqa: S608 (only placeholders are formatted in)
            f"AND phone IN ({placeholders(len(part))})",
            account_id,
            *part,
        )
        for row in rows:
            try:
                custom = json.loads(row["fields"] or "{}")
            except ValueError:
                custom = {}
            merged = {k: str(v) for k, v in custom.items() if v is not None}
            merged.update(first_name=row["first_name"] or "", last_name=row["last_name"] or "")
            merged["_contact_id"] = str(row["id"])
            values[row["phone"]] = merged
    return values


# --- pricing -------------------------------------------------------------------------------


# Countries sharing a calling code (+1, +7, +44, +61, +590...) are told apart by short
# number prefixes (area codes, CX/CC's 8 916x), so numbers that share their first seven
# national digits share a country: phonenumbers decides once per prefix, not per number.
_PREFIX_DIGITS = 7
_region_by_prefix: dict[str, str] = {}


def destination_country(e164: str) -> str:
    """ISO country of a valid E.164 number (phonenumbers' region), for pricing."""
    digits = e164[1:]
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if not regions:
            continue
        if len(regions) == 1 and regions[0] != "001":
            return regions[0]
        key = digits[: size + _PREFIX_DIGITS]
        region = _region_by_prefix.get(key)
        if region is None:
            try:
                region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""
            except phonenumbers.NumberParseException:
                region = ""
            if len(_region_by_prefix) < 200_000:
                _region_by_prefix[key] = region
        return region
    return ""


def price_of(prices: dict[str, int], country: str) -> int | None:
    if country in prices:
        return prices[country]
    return prices.get("*")


# --- accepting ---------------------------------------------------------------------------


async def _replay(account_id: int, scope: str, fingerprint: str) -> SendResult | None:
    row = await Batch.select().where(Batch.idempotency_scope == scope).first()
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used for a different request.", code="idempotency_key_reused"
        )
    rows = await run_sql(
        "SELECT id, to_number, segments, cost, encoding FROM message WHERE batch_id = {} ORDER BY id",
        row["id"],
    )
    accepted = [
        Accepted(r["to_number"], r["id"], r["segments"], r["cost"], r["encoding"]) for r in rows
    ]
    skipped = [(s["to"], s["reason"]) for s in json.loads(row["skipped_json"] or "[]")]
    return SendResult(
        batch_id=row["id"],
        accepted=accepted,
        skipped=skipped,
        total_cost=row["total_cost"],
        segments=row["segments"],
        replayed=True,
        scheduled_for=row["send_at"],
        campaign_id=row["campaign_id"],
    )


async def accept_send(req: SendRequest, *, actor: audit.Actor, dry_run: bool = False) -> SendResult:
    """Validate, resolve, filter, price and (unless dry_run) reserve and write the outbox."""
    errors = _validate(req)
    if errors:
        raise ValidationFailed(errors)
    if req.sender:
        # Only the numbers the account holds (or inherits) and its approved sender IDs.
        req = replace(req, sender=(await resolve_sender(req.account_id, req.sender)).value)
    if req.body is not None and not req.allow_free_text:
        raise PermissionDenied("sending free text needs messages.send; choose an approved template")
    scope = f"{req.account_id}:{req.idempotency_key}" if req.idempotency_key else None
    fingerprint = req.fingerprint()
    if scope and not dry_run and (replayed := await _replay(req.account_id, scope, fingerprint)):
        return replayed

    template_id = None
    if req.template_id is not None:
        try:
            template = await templates.get_usable_template(req.account_id, req.template_id)
        except NotFound:
            raise ValidationFailed({"template_id": "No such template."}) from None
        if template.status != "approved":
            raise ValidationFailed({"template_id": "Only approved templates can be sent."})
        text, template_id = template.body, template.id
    else:
        text = req.body or ""

    recipients = await _resolve(req)
    skipped_raw: list[tuple[str, str]] = []
    if req.compliance_reply:
        allowed = list(dict.fromkeys(recipients.phones))
    else:
        allowed, skipped_raw = await consent.filter_recipients(
            req.account_id, recipients.phones, req.channel
        )
    skipped = recipients.no_phone + [(raw, reason) for raw, reason in skipped_raw]
    used_fields = fields_in(text)
    contact_values = await _contact_values(req.account_id, allowed)
    prices = await credits.prices_for(req.account_id, req.channel)

    counts: dict[str, Any] = {}
    planned: list[tuple[str, str, int, str, int, str, int | None]] = []
    unpriced: list[str] = []
    for e164 in allowed:
        contact = contact_values.get(e164, {})
        if used_fields:
            body = render(text, {**contact, **req.variables})
        else:
            body = text
        count = counts.get(body)
        if count is None:
            count = counts[body] = count_segments(body)
        country = destination_country(e164)
        price = price_of(prices, country)
        if price is None:
            unpriced.append(e164)
            continue
        units = count.segments if req.channel == "sms" else 1
        contact_id = contact.get("_contact_id")
        planned.append(
            (
                e164,
                body,
                units,
                count.encoding,
                units * price,
                country,
                int(contact_id) if contact_id else None,
            )
        )
    skipped.extend((number, "no_price") for number in unpriced)
    total_cost = sum(p[4] for p in planned)
    total_segments = sum(p[2] for p in planned)
    stamp = now()
    scheduled = req.send_at is not None and req.send_at > stamp
    if dry_run:
        return SendResult(
            batch_id=None,
            accepted=[Accepted(p[0], None, p[2], p[4], p[3]) for p in planned],
            skipped=skipped,
            total_cost=total_cost,
            segments=total_segments,
            dry_run=True,
            scheduled_for=req.send_at if scheduled else None,
        )

    release = req.send_at if scheduled and req.send_at else stamp
    # The provider is fixed at acceptance, so retries and callbacks stay with the one
    # that has the message even if the account's choice changes meanwhile.
    provider = await provider_for(req.account_id, req.channel)
    try:
        async with transaction():
            campaign_id = None
            if req.campaign_name:
                rows = await Campaign.insert(
                    Campaign(
                        account_id=req.account_id,
                        name=req.campaign_name.strip(),
                        created_by=actor.label,
                    )
                ).returning(Campaign.id)
                campaign_id = rows[0]["id"]
            rows = await Batch.insert(
                Batch(
                    account_id=req.account_id,
                    campaign_id=campaign_id,
                    idempotency_scope=scope,
                    request_hash=fingerprint,
                    channel=req.channel,
                    sender=req.sender,
                    body=text,
                    template_id=template_id,
                    state="scheduled" if scheduled else "active",
                    send_at=req.send_at if scheduled else None,
                    accepted=len(planned),
                    skipped=len(skipped),
                    segments=total_segments,
                    total_cost=total_cost,
                    skipped_json=json.dumps([{"to": t, "reason": r} for t, r in skipped]),
                    created_by=actor.label,
                )
            ).returning(Batch.id)
            batch_id = rows[0]["id"]
            if campaign_id is not None:
                await Campaign.update({Campaign.batch_id: batch_id}).where(
                    Campaign.id == campaign_id
                )
            if total_cost > 0:
                await credits.reserve(
                    req.account_id,
                    total_cost,
                    reference=f"batch:{batch_id}",
                    idempotency_key=f"send:batch:{batch_id}",
                    actor=actor,
                )
            ids = await _insert_messages(
                req, batch_id, campaign_id, planned, release=release, stamp=stamp, provider=provider
            )
            await audit.record(
                actor,
                account_id=req.account_id,
                action="messages.send" if campaign_id is None else "campaign.create",
                target_type="campaign" if campaign_id else "batch",
                target_id=campaign_id or batch_id,
                after={
                    "batch_id": batch_id,
                    "accepted": len(planned),
                    "skipped": len(skipped),
                    "total_cost": total_cost,
                    "channel": req.channel,
                    "template_id": template_id,
                    "send_at": req.send_at.isoformat() if scheduled and req.send_at else None,
                },
            )
    except Exception as exc:
        # Two requests with one Idempotency-Key raced: the loser answers with the winner's batch.
        if scope and _is_unique_violation(exc):
            replayed = await _replay(req.account_id, scope, fingerprint)
            if replayed:
                return replayed
        raise
    accepted = [Accepted(p[0], ids[p[0]], p[2], p[4], p[3]) for p in planned]
    return SendResult(
        batch_id=batch_id,
        accepted=accepted,
        skipped=skipped,
        total_cost=total_cost,
        segments=total_segments,
        scheduled_for=req.send_at if scheduled else None,
        campaign_id=campaign_id,
        chunks=[]
        if scheduled
        else chunked([a.message_id for a in accepted if a.message_id], CHUNK_SIZE),
    )


def _is_unique_violation(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "unique" in text or "duplicate key" in text


MESSAGE_INSERT_COLUMNS = (
    "account_id, batch_id, campaign_id, direction, to_number, from_number, body, channel, "
    "status, segments, encoding, cost, country, contact_id, provider, refunded, release_at, "
    "dispatched_at, submit_attempts, created_at, updated_at"
)


async def _insert_messages(
    req: SendRequest,
    batch_id: int,
    campaign_id: int | None,
    planned: Sequence[tuple[str, str, int, str, int, str, int | None]],
    *,
    release: datetime,
    stamp: datetime,
    provider: str = "simulator",
) -> dict[str, int]:
    """The outbox rows in bulk; returns the id of each number."""
    if not is_sqlite():
        return await _insert_messages_unnest(
            req, batch_id, campaign_id, planned, release=release, stamp=stamp, provider=provider
        )
    ids: dict[str, int] = {}
    width = 21
    refunded: Any = 0 if is_sqlite() else False
    for start in range(0, len(planned), INSERT_ROWS):
        part = planned[start : start + INSERT_ROWS]
        args: list[Any] = []
        for to, body, units, encoding, cost, country, contact_id in part:
            args.extend(
                (
                    req.account_id,
                    batch_id,
                    campaign_id,
                    "out",
                    to,
                    req.sender,
                    body,
                    req.channel,
                    "enqueued",
                    units,
                    encoding,
                    cost,
                    country,
                    contact_id,
                    provider,
                    refunded,
                    release,
                    release,
                    0,
                    stamp,
                    stamp,
                )
            )
        values = ", ".join(f"({placeholders(width)})" for _ in part)
        rows = await run_sql(
            f"INSERT INTO message ({MESSAGE_INSERT_COLUMNS}) VALUES {values} RETURNING id, to_number",  # noqa: S608 (only placeholders are formatted in)
            *args,
        )
        ids.update({r["to_number"]: r["id"] for r in rows})
    return ids


# PostgreSQL takes each column as one array: one statement and one round trip for
# thousands of rows, with ids returned in the same go.
_UNNEST_TYPES = (
    "int[]", "int[]", "int[]", "text[]", "text[]", "text[]", "text[]", "text[]", "text[]",
    "int[]", "text[]", "int[]", "text[]", "int[]", "text[]", "bool[]", "timestamptz[]",
    "timestamptz[]", "int[]", "timestamptz[]", "timestamptz[]",
)  # fmt: skip
UNNEST_ROWS = 20_000


async def _insert_messages_unnest(
    req: SendRequest,
    batch_id: int,
    campaign_id: int | None,
    planned: Sequence[tuple[str, str, int, str, int, str, int | None]],
    *,
    release: datetime,
    stamp: datetime,
    provider: str = "simulator",
) -> dict[str, int]:
    ids: dict[str, int] = {}
    arrays = ", ".join(f"{{}}::{t}" for t in _UNNEST_TYPES)
    sql = (
        f"INSERT INTO message ({MESSAGE_INSERT_COLUMNS}) SELECT * FROM unnest({arrays}) "  # noqa: S608 (only placeholders are formatted in)
        "RETURNING id, to_number"
    )
    for start in range(0, len(planned), UNNEST_ROWS):
        part = planned[start : start + UNNEST_ROWS]
        n = len(part)
        columns: list[list[Any]] = [
            [req.account_id] * n,
            [batch_id] * n,
            [campaign_id] * n,
            ["out"] * n,
            [p[0] for p in part],
            [req.sender] * n,
            [p[1] for p in part],
            [req.channel] * n,
            ["enqueued"] * n,
            [p[2] for p in part],
            [p[3] for p in part],
            [p[4] for p in part],
            [p[5] for p in part],
            [p[6] for p in part],
            [provider] * n,
            [False] * n,
            [release] * n,
            [release] * n,
            [0] * n,
            [stamp] * n,
            [stamp] * n,
        ]
        rows = await run_sql(sql, *columns)
        ids.update({r["to_number"]: r["id"] for r in rows})
    return ids
