"""Accepting a send: resolve recipients, normalise and consent-filter them set-based, render
and count each message exactly, price it by destination country, reserve the whole cost
and write the outbox, all in one transaction. Work is handed to the broker by the caller
after commit (the sweeper covers a crash in between)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import phonenumbers

from tenants import handoff
from tenants.access.decide import Grants
from tenants.accounts import tree as accounts_tree
from tenants.audit import record as audit
from tenants.clock import now
from tenants.consent.filter import filter_recipients
from tenants.contacts import contacts
from tenants.credits import pricing, spending
from tenants.db import (
    array_argument,
    bulk_value,
    chunked,
    copy_rows,
    is_sqlite,
    is_unique_violation,
    join_array,
    next_ids,
    run_sql,
    transaction,
)
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.links import links
from tenants.media import sending as mms
from tenants.media.store import NewMedia
from tenants.messaging import quiet_hours
from tenants.messaging.messages import CHANNELS, chunk_size
from tenants.messaging.tables import Batch, Campaign
from tenants.numbers.numbers import default_sender, resolve_sender
from tenants.phones import e164_region, sender_problem
from tenants.providers.integrations import provider_for
from tenants.reports import rollups
from tenants.rich import content as rich_content
from tenants.rich.content import RichRequest
from tenants.rich.templates import TemplateView
from tenants.templates import templates
from tenants.templates.merge_fields import fields_in, render
from tenants.templates.segments import count_segments

# Free text needs messages.send (templates need only messages.send_template, which the
# route checks); naming a campaign needs campaigns.manage.
SEND_PERMISSIONS = ("messages.send", "campaigns.manage")
# The platform's own sends (auto-replies, compliance confirmations) are free text.
PLATFORM_SEND = frozenset(SEND_PERMISSIONS)
MAX_BODY = 1600  # ten concatenated GSM-7 segments and then some
MAX_RECIPIENTS = 200_000
MAX_SCHEDULE_AHEAD = timedelta(days=366)
CONTACT_LOOKUP_ROWS = 50_000
# How far in the past a send_at may be (the minute being typed, clocks a little apart) before
# it is refused: a time already gone would otherwise send at once without a word.
PAST_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class SendRequest:
    """What a person or key asked for; `permissions` are those of SEND_PERMISSIONS the
    caller holds (`send_permissions(grants)`), and the send decides with them."""

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
    permissions: frozenset[str] = frozenset()
    # A STOP/START/HELP confirmation: sent even to the phone that just opted out.
    compliance_reply: bool = False
    # MMS: media items the account holds, files read from an upload or a URL (stored with
    # the send), and a subject.
    media_ids: Sequence[int] = ()
    new_media: Sequence[NewMedia] = ()
    subject: str = ""

    # A WhatsApp template or an RCS card (tenants.rich.content) instead of a body.
    rich: RichRequest | None = None

    # Replace the URLs in the body by short links, one per recipient, and count clicks.
    track_links: bool = False

    def _optional_parts(self) -> dict[str, object]:
        """What optional features add to the idempotency fingerprint, only when used (so
        the fingerprint of a plain send stays what it was)."""
        parts: dict[str, object] = {}
        if self.media_ids or self.new_media or self.subject:
            parts["media"] = [*self.media_ids, *(m.sha256 for m in self.new_media)]
            parts["subject"] = self.subject
        if self.track_links:
            parts["track_links"] = True
        if self.rich is not None:
            parts["rich"] = self.rich.fingerprint()
        return parts

    # Replies to a person who just wrote go at once, whatever the quiet hours.
    quiet_exempt: bool = False

    def fingerprint(self) -> str:
        canonical = json.dumps(
            {
                **self._optional_parts(),
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


class Accepted(NamedTuple):
    """One accepted recipient (a tuple: a send makes one for each of 100k recipients)."""

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
    # Quiet hours: how many messages wait, and until when (the last release).
    held: int = 0
    held_until: datetime | None = None

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def accepted_count(self) -> int:
        return len(self.accepted)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def accepted_phones(self, limit: int) -> list[str]:
        return [a.to for a in self.accepted[:limit]]

    @property
    def more(self) -> bool:
        """Recipients left out of the summary: never here (streamed.Preview may have some)."""
        return False


# --- validation ------------------------------------------------------------------------


def validate_sender(sender: str) -> str | None:
    """No sender (the default one is used) or one that follows the sender rule."""
    return sender_problem(sender) if sender else None


def _validate(req: SendRequest) -> dict[str, str]:
    errors: dict[str, str] = {}
    if req.channel not in CHANNELS:
        errors["channel"] = f"Choose one of {', '.join(CHANNELS)}."
    if req.body is not None and req.template_id is not None:
        errors["body"] = "Send either a body or a template, not both."
    elif req.body is None and req.template_id is None and req.rich is None:
        errors["body"] = "Write a message or choose a template."
    elif req.body is not None and not req.body.strip():
        errors["body"] = "The message is empty."
    elif req.body is not None and len(req.body) > rich_content.max_text(req.channel):
        errors["body"] = (
            f"The message is longer than {rich_content.max_text(req.channel):,} characters."
        )
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
        elif req.send_at < now() - PAST_GRACE:
            errors["send_at"] = (
                "That time has passed: give a later one, or leave it out to send now."
            )
    if req.campaign_name is not None and not (0 < len(req.campaign_name.strip()) <= 120):
        errors["campaign_name"] = "A campaign name has 1 to 120 characters."
    for name, value in req.variables.items():
        if not isinstance(value, str):
            errors["variables"] = f"Variable {name!r} must be a string."
    errors.update(mms.request_errors(req.channel, req.media_ids, req.new_media, req.subject))
    return errors


def send_permissions(grants: Grants) -> frozenset[str]:
    """Which of the permissions a send may need the caller holds, decided once."""
    return frozenset(p for p in SEND_PERMISSIONS if grants.decide(p).allowed)


async def account_timezone(account_id: int) -> ZoneInfo:
    return (await accounts_tree.timezones([account_id])).get(account_id, ZoneInfo("UTC"))


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
        _add_contacts(chosen, phones, contact_for, no_phone)
    return _Recipients(phones=phones, contact_for=contact_for, no_phone=no_phone)


def _add_contacts(
    chosen: Sequence[tuple[int, str]],
    phones: list[str],
    contact_for: dict[str, int],
    no_phone: list[tuple[str, str]],
) -> None:
    """The chosen contacts' phones as recipients; a contact without one is skipped."""
    for contact_id, phone in chosen:
        if not (phone or "").strip():
            no_phone.append((f"contact {contact_id}", "no_phone"))
            continue
        phones.append(phone)
        contact_for.setdefault(phone, contact_id)


async def _contact_values(account_id: int, phones: Sequence[str]) -> dict[str, dict[str, str]]:
    """Merge values (first_name, last_name, custom fields) of the contacts with these numbers.
    Found by the unique "account|phone" key (Contact.account_phone), so SQLite looks each
    number up in that index whatever else it knows: by phone and account_id it would take
    the account_id index, scanning the whole array for each of the account's contacts."""
    values: dict[str, dict[str, str]] = {}
    prefix = f"{account_id}|"
    for part in chunked(list(phones), CONTACT_LOOKUP_ROWS):
        rows = await run_sql(
            "SELECT contact.id, contact.phone, contact.first_name, contact.last_name, "  # noqa: S608 (no input is formatted in)
            f"contact.fields FROM contact {join_array('contact.account_phone')}",
            array_argument([prefix + phone for phone in part]),
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
    known = e164_region(e164)  # decided when the number was validated
    if known:
        return known
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


class PlannedMessage(NamedTuple):
    """One message of a send, rendered, counted and priced, before it is written (a tuple,
    not a dataclass: one is made per recipient)."""

    to: str
    body: str
    segments: int
    encoding: str
    cost: int
    country: str
    contact_id: int | None
    links: tuple[tuple[str, str], ...] = ()  # (code, original URL) of its tracked links


@dataclass
class Plan:
    """What a send will do: the messages it writes and the recipients it skips."""

    text: str
    template_id: int | None
    messages: list[PlannedMessage]
    skipped: list[tuple[str, str]]
    scheduled_for: datetime | None
    media: mms.MmsContent | None = None
    wa_template: TemplateView | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # merge values per phone
    held: dict[str, datetime] = field(default_factory=dict)  # number -> release time

    # Summed once: a send reads them several times and a plan is not changed once made.
    @cached_property
    def total_cost(self) -> int:
        return sum(m.cost for m in self.messages)

    @cached_property
    def segments(self) -> int:
        return sum(m.segments for m in self.messages)

    def result(self, batch_id: int | None, ids: dict[str, int] | None = None) -> SendResult:
        id_of = ids or {}
        accepted = [
            Accepted(m.to, id_of.get(m.to), m.segments, m.cost, m.encoding) for m in self.messages
        ]
        return SendResult(
            batch_id=batch_id,
            accepted=accepted,
            skipped=self.skipped,
            total_cost=self.total_cost,
            segments=self.segments,
            dry_run=batch_id is None,
            scheduled_for=self.scheduled_for,
            held=len(self.held),
            held_until=max(self.held.values(), default=None),
        )


@dataclass(frozen=True)
class _Idempotency:
    scope: str
    fingerprint: str


async def accept_send(req: SendRequest, *, actor: audit.Actor, dry_run: bool = False) -> SendResult:
    """Validate, resolve recipients, filter consent, price, reserve and write the outbox
    (unless dry_run); the outbox is handed to the broker when the transaction commits."""
    req = await _validated(req)
    key = _Idempotency(f"{req.account_id}:{req.idempotency_key}", req.fingerprint())
    if req.idempotency_key and not dry_run and (replayed := await _replay(key)):
        return replayed
    text, template_id = await _content(req)
    media = await _mms_content(req)
    text, wa_template = await _rich_text(req, text)
    recipients = await _resolve(req)
    allowed, skipped = await _filter_consent(req, recipients)
    allowed = await _service_window(req, wa_template, recipients, allowed, skipped)
    plan = await _plan(req, text, template_id, allowed, skipped)
    plan.media = media
    plan.wa_template = wa_template
    if dry_run:
        return plan.result(None)
    return await _write_outbox(req, plan, key if req.idempotency_key else None, actor)


async def _validated(req: SendRequest) -> SendRequest:
    """The request checked field by field and against the caller's permissions, with its
    sender resolved to one the account holds or inherits."""
    errors = _validate(req)
    if errors:
        raise ValidationFailed(errors)
    rich_content.check_rich(req.channel, req.rich, req.body, req.permissions)
    if not req.compliance_reply:
        await rich_content.check_channel(req.account_id, req.channel)
    if req.body is not None and "messages.send" not in req.permissions:
        raise PermissionDenied("sending free text needs messages.send; choose an approved template")
    if req.campaign_name is not None and "campaigns.manage" not in req.permissions:
        raise PermissionDenied("naming a campaign needs campaigns.manage")
    if req.sender:
        return replace(req, sender=(await resolve_sender(req.account_id, req.sender)).value)
    # Never a blank From: a reply must find the account that wrote.
    return replace(req, sender=await default_sender(req.account_id))


async def _mms_content(req: SendRequest) -> mms.MmsContent | None:
    """An MMS's media, owned and within its provider's limits (checked before any reserve)."""
    if req.channel != "mms":
        return None
    return await mms.check_mms(req.account_id, req.media_ids, req.new_media, req.subject)


async def _content(req: SendRequest) -> tuple[str, int | None]:
    """The text to send (typed, or an approved template's body) and the template's id."""
    if req.template_id is None:
        return req.body or "", None
    try:
        template = await templates.get_usable_template(req.account_id, req.template_id)
    except NotFound:
        raise ValidationFailed({"template_id": "No such template."}) from None
    if template.status != "approved":
        raise ValidationFailed({"template_id": "Only approved templates can be sent."})
    return template.body, template.id


async def _rich_text(req: SendRequest, text: str) -> tuple[str, TemplateView | None]:
    """A WhatsApp template's body (parameters as given or as their merge fields) or an RCS
    card's title and description: the text rendered per recipient and shown in the log."""
    if req.rich is None:
        return text, None
    if req.rich.template is not None:
        template = await rich_content.template_for_send(req.account_id, req.rich.template)
        return rich_content.template_source(template, req.rich.template), template
    if req.rich.card is not None:
        return rich_content.card_source(req.rich.card), None
    return text, None


async def _service_window(
    req: SendRequest,
    wa_template: TemplateView | None,
    recipients: _Recipients,
    allowed: list[str],
    skipped: list[tuple[str, str]],
) -> list[str]:
    """Free WhatsApp text goes only to people inside the customer service window."""
    if req.channel != "whatsapp" or wa_template is not None or req.compliance_reply:
        return allowed
    single = len(recipients.phones) + len(recipients.no_phone) == 1
    return await rich_content.apply_window(req.sender, allowed, skipped, single=single)


async def _filter_consent(
    req: SendRequest, recipients: _Recipients
) -> tuple[list[str], list[tuple[str, str]]]:
    """Recipients who may receive this send (E.164, once each), and the skipped ones with
    their reasons. A compliance confirmation goes even to the phone that just opted out."""
    if req.compliance_reply:
        return list(dict.fromkeys(recipients.phones)), list(recipients.no_phone)
    allowed, skipped = await filter_recipients(req.account_id, recipients.phones, req.channel)
    return allowed, recipients.no_phone + list(skipped)


async def _plan(
    req: SendRequest,
    text: str,
    template_id: int | None,
    allowed: Sequence[str],
    skipped: list[tuple[str, str]],
) -> Plan:
    """Render, count and price each message; a destination without a price is skipped."""
    used_fields = fields_in(text)
    contact_values = await _contact_values(req.account_id, allowed)
    prices = await pricing.prices_for(req.account_id, req.channel)
    counts: dict[str, Any] = {}
    messages: list[PlannedMessage] = []
    link_base = await links.short_link_base(req.account_id) if req.track_links else None
    for e164 in allowed:
        contact = contact_values.get(e164, {})
        rendered = render(text, {**contact, **req.variables}) if used_fields else text
        tracked = links.track_urls(rendered, link_base) if link_base else None
        body = tracked.body if tracked else rendered
        # Every code has the same length and alphabet: one count serves each rendering.
        count = counts.get(rendered) or counts.setdefault(rendered, count_segments(body))
        country = destination_country(e164)
        price = price_of(prices, country)
        if price is None:
            skipped.append((e164, "no_price"))
            continue
        units = count.segments if req.channel == "sms" else 1
        contact_id = contact.get("_contact_id")
        messages.append(
            PlannedMessage(
                e164, body, units, count.encoding, units * price, country,
                int(contact_id) if contact_id else None, tracked.links if tracked else (),
            )
        )  # fmt: skip
    scheduled = req.send_at if req.send_at is not None and req.send_at > now() else None
    held = await _quiet_hours_holds(req, template_id, scheduled or now(), messages)
    return Plan(text, template_id, messages, skipped, scheduled, values=contact_values, held=held)


async def _quiet_hours_holds(
    req: SendRequest, template_id: int | None, at: datetime, messages: Sequence[PlannedMessage]
) -> dict[str, datetime]:
    """Messages that would reach their recipient in quiet hours, with their release time
    (compliance replies, conversation replies and exempt templates are never held)."""
    if req.compliance_reply or req.quiet_exempt or not messages:
        return {}
    if template_id is not None and await templates.is_quiet_exempt(template_id):
        return {}
    window = await quiet_hours.effective_quiet_hours(req.account_id)
    zone = await account_timezone(req.account_id)
    return quiet_hours.hold_until(window, at, [m.to for m in messages], zone)


async def _replay(key: _Idempotency) -> SendResult | None:
    """The batch an earlier request with this Idempotency-Key wrote, answered again."""
    row = await Batch.select().where(Batch.idempotency_scope == key.scope).first()
    if row is None:
        return None
    if row["request_hash"] != key.fingerprint:
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


async def _write_outbox(
    req: SendRequest, plan: Plan, key: _Idempotency | None, actor: audit.Actor
) -> SendResult:
    """One transaction: campaign, batch, the credit reservation, the messages, the audit
    row. Two requests racing with one Idempotency-Key: the loser answers the winner's."""
    # The provider is fixed at acceptance, so retries and callbacks stay with the one
    # that has the message even if the account's choice changes meanwhile.
    provider = await provider_for(req.account_id, req.channel)
    stamp = now()
    try:
        async with transaction():
            campaign_id = await _insert_campaign(req, actor)
            batch_id = await _insert_batch(req, plan, key, campaign_id, actor)
            if plan.media is not None:
                await mms.attach(batch_id, req.account_id, plan.media)
            ids = await _reserve_and_insert(
                req,
                plan,
                BatchRef(batch_id, campaign_id, f"send:batch:{batch_id}"),
                provider=provider,
                stamp=stamp,
                actor=actor,
            )
            await _audit_send(req, plan, batch_id, campaign_id, actor)
            result = plan.result(batch_id, ids)
            result.campaign_id = campaign_id
            if plan.scheduled_for is None:
                going = sorted(i for to, i in ids.items() if to not in plan.held)
                result.chunks = chunked(going, chunk_size())
                await handoff.outbox_written(result.chunks)
    except Exception as exc:
        if key and is_unique_violation(exc) and (replayed := await _replay(key)):
            return replayed
        raise
    return result


@dataclass(frozen=True)
class BatchRef:
    """The batch (and campaign) messages are written into, and the idempotency key of
    their credit reservation (one per send, or one per chunk of a streamed campaign)."""

    batch_id: int
    campaign_id: int | None
    reserve_key: str


async def _reserve_and_insert(
    req: SendRequest,
    plan: Plan,
    into: BatchRef,
    *,
    provider: str,
    stamp: datetime,
    actor: audit.Actor,
) -> dict[str, int]:
    """In the caller's transaction: reserve the plan's cost under the batch's reference,
    write its messages and what they carry beside; returns the id of each number."""
    if plan.total_cost > 0:
        await spending.reserve(
            req.account_id,
            plan.total_cost,
            reference=f"batch:{into.batch_id}",
            idempotency_key=into.reserve_key,
            actor=actor,
        )
    ids = await _insert_messages(
        req,
        into.batch_id,
        into.campaign_id,
        plan.messages,
        release=plan.scheduled_for or stamp,
        stamp=stamp,
        provider=provider,
        held=plan.held,
    )
    await _write_beside_messages(req, plan, into.batch_id, into.campaign_id, ids, stamp)
    return ids


async def _write_beside_messages(
    req: SendRequest,
    plan: Plan,
    batch_id: int,
    campaign_id: int | None,
    ids: dict[str, int],
    stamp: datetime,
) -> None:
    """What the messages carry in other tables: tracked links, the WhatsApp template or RCS
    card, and the usage roll-up (one move per destination country: a send's messages share
    account, time, channel and sender)."""
    await _write_links(req, plan, batch_id, campaign_id, ids, stamp)
    if req.rich is not None:
        await rich_content.store_rich(
            req.account_id, req.rich, plan.wa_template, ids, plan.values, req.variables
        )
    await rollups.record(_accept_moves(req, plan, stamp))


def _accept_moves(req: SendRequest, plan: Plan, stamp: datetime) -> list[rollups.StatusMove]:
    """The roll-up moves of a send: its messages entering `enqueued`, per country."""
    by_country: dict[str, list[int]] = {}
    for m in plan.messages:
        total = by_country.setdefault(m.country, [0, 0, 0])
        total[0] += 1
        total[1] += m.segments
        total[2] += m.cost
    return [
        rollups.StatusMove(
            req.account_id, stamp, req.channel, segments, cost, None, "enqueued",
            messages=count, country=country, sender=req.sender,
        )
        for country, (count, segments, cost) in sorted(by_country.items())
    ]  # fmt: skip


async def _write_links(
    req: SendRequest,
    plan: Plan,
    batch_id: int,
    campaign_id: int | None,
    ids: dict[str, int],
    stamp: datetime,
) -> None:
    """The short links of the messages just written, with their original URLs."""
    new = [links.NewLink(ids[m.to], code, url) for m in plan.messages for code, url in m.links]
    if new:
        await links.write_links(
            req.account_id,
            batch_id,
            campaign_id,
            new,
            expires_at=links.expiry_from(plan.scheduled_for or stamp),
        )


async def _insert_campaign(req: SendRequest, actor: audit.Actor) -> int | None:
    if not req.campaign_name:
        return None
    rows = await Campaign.insert(
        Campaign(account_id=req.account_id, name=req.campaign_name.strip(), created_by=actor.label)
    ).returning(Campaign.id)
    return int(rows[0]["id"])


async def _insert_batch(
    req: SendRequest,
    plan: Plan,
    key: _Idempotency | None,
    campaign_id: int | None,
    actor: audit.Actor,
) -> int:
    rows = await Batch.insert(
        Batch(
            account_id=req.account_id,
            campaign_id=campaign_id,
            idempotency_scope=key.scope if key else None,
            request_hash=req.fingerprint(),
            channel=req.channel,
            sender=req.sender,
            body=plan.text,
            template_id=plan.template_id,
            state="scheduled" if plan.scheduled_for else "active",
            send_at=plan.scheduled_for,
            accepted=len(plan.messages),
            skipped=len(plan.skipped),
            segments=plan.segments,
            total_cost=plan.total_cost,
            skipped_json=json.dumps([{"to": t, "reason": r} for t, r in plan.skipped]),
            created_by=actor.label,
        )
    ).returning(Batch.id)
    batch_id = int(rows[0]["id"])
    if campaign_id is not None:
        await Campaign.update({Campaign.batch_id: batch_id}).where(Campaign.id == campaign_id)
    return batch_id


async def _audit_send(
    req: SendRequest, plan: Plan, batch_id: int, campaign_id: int | None, actor: audit.Actor
) -> None:
    await audit.record(
        actor,
        account_id=req.account_id,
        action="messages.send" if campaign_id is None else "campaign.create",
        target_type="campaign" if campaign_id else "batch",
        target_id=campaign_id or batch_id,
        after={
            "batch_id": batch_id,
            "accepted": len(plan.messages),
            "skipped": len(plan.skipped),
            "total_cost": plan.total_cost,
            "channel": req.channel,
            "template_id": plan.template_id,
            "send_at": plan.scheduled_for.isoformat() if plan.scheduled_for else None,
        },
    )


MESSAGE_INSERT_COLUMNS = (
    "account_id, batch_id, campaign_id, direction, to_number, from_number, body, channel, "
    "status, segments, encoding, cost, country, contact_id, provider, refunded, release_at, "
    "dispatched_at, submit_attempts, held_until, created_at, updated_at"
)
MESSAGE_COLUMNS = tuple(c.strip() for c in MESSAGE_INSERT_COLUMNS.split(","))


async def _insert_messages(
    req: SendRequest,
    batch_id: int,
    campaign_id: int | None,
    planned: Sequence[PlannedMessage],
    *,
    release: datetime,
    stamp: datetime,
    provider: str,
    held: dict[str, datetime],
) -> dict[str, int]:
    """The outbox rows in bulk (tenants.db.copy_rows); returns the id of each number."""
    refunded: Any = 0 if is_sqlite() else False
    release_value, stamp_value = bulk_value(release), bulk_value(stamp)
    held_values = {to: bulk_value(until) for to, until in held.items()}  # converted once
    account_id, sender, channel = req.account_id, req.sender, req.channel
    # Ids drawn first, then the rows with their ids at the driver's bulk speed (COPY on
    # PostgreSQL, executemany on SQLite): no per-row SQL text or parameter lists to build,
    # and each row is one tuple made in one pass.
    ids_drawn = await next_ids("message", len(planned))
    rows = [
        (
            i, account_id, batch_id, campaign_id, "out", m.to, sender, m.body, channel,
            "enqueued", m.segments, m.encoding, m.cost, m.country, m.contact_id, provider,
            refunded, held_values.get(m.to, release_value), release_value, 0,
            held_values.get(m.to), stamp_value, stamp_value,
        )
        for i, m in zip(ids_drawn, planned, strict=True)
    ]  # fmt: skip
    await copy_rows("message", ("id", *MESSAGE_COLUMNS), rows)
    return {m.to: i for i, m in zip(ids_drawn, planned, strict=True)}


# --- chunks of a streamed campaign (tenants.messaging.streamed drives them) ------------


@dataclass(frozen=True)
class Content:
    """What every chunk of a send carries, decided once: the text, the template, the media
    and the WhatsApp template."""

    text: str
    template_id: int | None
    media: mms.MmsContent | None
    wa_template: TemplateView | None


async def prepare_send(req: SendRequest) -> tuple[SendRequest, Content]:
    """The request validated (permissions, sender resolved) and its content, as accept_send
    checks them before it resolves any recipient."""
    req = await _validated(req)
    text, template_id = await _content(req)
    media = await _mms_content(req)
    text, wa_template = await _rich_text(req, text)
    return req, Content(text, template_id, media, wa_template)


async def plan_contacts(
    req: SendRequest, content: Content, chosen: Sequence[tuple[int, str]]
) -> Plan:
    """One chunk of contacts (contact id, phone) filtered for consent, rendered, counted and
    priced exactly as accept_send does for a whole send."""
    recipients = _Recipients(phones=[], contact_for={}, no_phone=[])
    _add_contacts(chosen, recipients.phones, recipients.contact_for, recipients.no_phone)
    allowed, skipped = await _filter_consent(req, recipients)
    allowed = await _service_window(req, content.wa_template, recipients, allowed, skipped)
    plan = await _plan(req, content.text, content.template_id, allowed, skipped)
    plan.media = content.media
    plan.wa_template = content.wa_template
    return plan


async def write_chunk(
    req: SendRequest, plan: Plan, into: BatchRef, *, actor: audit.Actor
) -> dict[str, int]:
    """In the caller's transaction: reserve the chunk's cost (InsufficientCredits writes
    nothing), write its messages and hand them to the broker once it commits."""
    provider = await provider_for(req.account_id, req.channel)
    ids = await _reserve_and_insert(req, plan, into, provider=provider, stamp=now(), actor=actor)
    going = sorted(i for to, i in ids.items() if to not in plan.held)
    await handoff.outbox_written(chunked(going, chunk_size()))
    return ids
