"""What a rich send carries and the rules it must meet before anything is charged: a
WhatsApp template (approved, registered on the integration that carries the send) or an
RCS card; the provider able to carry the channel; the customer service window (free
WhatsApp text only within 24 hours of the person's last message to that sender). Also
the per-message rows the outbox hands to gateways and what callbacks report back."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tenants.accounts.tree import default_region
from tenants.clock import now
from tenants.credits import pricing
from tenants.db import as_datetime, chunked, placeholders, run_sql
from tenants.errors import FieldErrors, PermissionDenied, ValidationFailed
from tenants.providers.integrations import carrier_for, integration_id_of, provider_for
from tenants.rich import templates as wa_templates
from tenants.rich.tables import RichContent
from tenants.rich.templates import TemplateView
from tenants.templates.composer import Composition

WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW = "outside_service_window"
# Longest text per channel: SMS and MMS as before, WhatsApp's 4,096, RCS's 3,072 (a text
# message on Google's RCS Business Messaging); a card's own limits are below.
MAX_TEXT = {"sms": 1600, "mms": 1600, "whatsapp": 4096, "rcs": 3072}
CARD_TITLE_MAX = 200
CARD_DESCRIPTION_MAX = 2000
SUGGESTION_TEXT_MAX = 25
MAX_SUGGESTIONS = 4
SUGGESTION_KINDS = ("reply", "url", "dial")
FALLBACK_MAX = 1600
E164 = re.compile(r"\+[1-9]\d{1,14}")


@dataclass(frozen=True)
class TemplateChoice:
    name: str
    language: str
    parameters: Mapping[str, str] = field(default_factory=dict)  # "1" -> text


@dataclass(frozen=True)
class Suggestion:
    kind: str  # reply | url | dial
    text: str
    value: str = ""  # the URL, the phone number, or a reply's postback data


@dataclass(frozen=True)
class Card:
    title: str
    description: str = ""
    media_url: str = ""
    suggestions: tuple[Suggestion, ...] = ()
    fallback_text: str = ""  # the SMS a handset without RCS gets

    def fallback(self) -> str:
        if self.fallback_text:
            return self.fallback_text
        parts = [self.title, self.description, self.media_url]
        parts += [f"{s.text}: {s.value}" for s in self.suggestions if s.kind != "reply"]
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class RichRequest:
    template: TemplateChoice | None = None
    card: Card | None = None

    def fingerprint(self) -> dict[str, Any]:
        return asdict(self)


def max_text(channel: str) -> int:
    return MAX_TEXT.get(channel, MAX_TEXT["sms"])


async def channel_composition(account_id: int, c: Composition, channel: str) -> Composition:
    """The composer's figures on a channel that counts characters, not segments: WhatsApp
    and RCS send one message of up to their limit, priced per message."""
    if channel not in ("whatsapp", "rcs"):
        return c
    region = await default_region(account_id)
    prices = await pricing.prices_for(account_id, channel)
    rate = prices.get(region, prices["*"])
    label = f"credits ({channel_label(channel)} to {region} at {rate} per message)"
    return replace(c, channel=channel, char_limit=max_text(channel), cost=rate, cost_label=label)


def channel_label(channel: str) -> str:
    return {"whatsapp": "WhatsApp", "rcs": "RCS"}.get(channel, channel.upper())


def _check_card(card: Card, errors: FieldErrors) -> None:
    if not card.title.strip() or len(card.title) > CARD_TITLE_MAX:
        errors.add("card.title", f"A card title has 1 to {CARD_TITLE_MAX} characters.")
    if len(card.description) > CARD_DESCRIPTION_MAX:
        errors.add("card.description", f"At most {CARD_DESCRIPTION_MAX} characters.")
    if card.media_url and not card.media_url.startswith("https://"):
        errors.add("card.media_url", "A public https:// URL.")
    if len(card.suggestions) > MAX_SUGGESTIONS:
        errors.add("card.suggestions", f"At most {MAX_SUGGESTIONS} suggestions.")
    for index, s in enumerate(card.suggestions):
        name = f"card.suggestions[{index}]"
        if s.kind not in SUGGESTION_KINDS:
            errors.add(name, f"A suggestion is one of {', '.join(SUGGESTION_KINDS)}.")
        elif not s.text.strip() or len(s.text) > SUGGESTION_TEXT_MAX:
            errors.add(name, f"A suggestion's text has 1 to {SUGGESTION_TEXT_MAX} characters.")
        elif s.kind == "url" and not re.fullmatch(r"https?://\S+", s.value):
            errors.add(name, "An open-URL action needs an http(s) URL.")
        elif s.kind == "dial" and not E164.fullmatch(s.value):
            errors.add(name, "A dial action needs a number in +E.164 form.")
    if len(card.fallback()) > FALLBACK_MAX:
        errors.add("card.fallback_text", f"The SMS fallback has at most {FALLBACK_MAX} characters.")


def check_rich(
    channel: str, rich: RichRequest | None, body: str | None, permissions: frozenset[str]
) -> None:
    """Field checks of a send's rich content (no database)."""
    if rich is None or (rich.template is None and rich.card is None):
        return
    errors = FieldErrors()
    if rich.template is not None and rich.card is not None:
        errors.add("template", "Send either a template or a card.")
    if body is not None:
        errors.add("body", "A template or a card carries its own text: leave the body out.")
    if rich.template is not None and channel != "whatsapp":
        errors.add(
            "template", "Templates of this kind are WhatsApp templates: use channel whatsapp."
        )
    if rich.card is not None:
        if channel != "rcs":
            errors.add("card", "Cards are RCS: use channel rcs.")
        _check_card(rich.card, errors)
    errors.raise_if_any()
    if rich.card is not None and "messages.send" not in permissions:
        raise PermissionDenied("an RCS card is free text: it needs messages.send")


async def check_channel(account_id: int, channel: str) -> str:
    """The provider key that will carry this channel for the account; a 422 naming
    `channel` when the account's real providers cannot carry it (before anything is
    charged): see `carrier_for`."""
    return await carrier_for(account_id, channel)


async def template_for_send(account_id: int, choice: TemplateChoice) -> TemplateView:
    """The approved template a WhatsApp send names, on the integration that carries it."""
    provider = await provider_for(account_id, "whatsapp")
    integration_id = integration_id_of(provider)
    found = (
        await wa_templates.find_template(integration_id, choice.name, choice.language)
        if integration_id
        else None
    )
    if found is None:
        raise ValidationFailed(
            {
                "template": f"No WhatsApp template {choice.name!r} ({choice.language}) is registered on this account's WhatsApp provider."
            }
        )
    if found.status != "approved":
        raise ValidationFailed({"template": f"The template is {found.status}, not approved."})
    unknown = [
        k for k in choice.parameters if not (k.isdigit() and 1 <= int(k) <= found.parameter_count)
    ]
    if unknown:
        raise ValidationFailed(
            {"template.parameters": f"The template has no parameter {unknown[0]}."}
        )
    return found


def template_source(template: TemplateView, choice: TemplateChoice) -> str:
    """The template's body with each parameter as the send gave it or as its merge field:
    rendered per recipient like any body, it is the text the recipient reads."""
    values = [
        choice.parameters.get(str(n), "{{" + name + "}}")
        for n, name in enumerate(template.parameter_fields, start=1)
    ]
    return wa_templates.template_text(template, values)


def card_source(card: Card) -> str:
    return "\n".join(p for p in (card.title, card.description) if p)


# --- the customer service window --------------------------------------------------------


async def window_closes(sender: str, phones: Sequence[str]) -> dict[str, datetime]:
    """phone -> when its WhatsApp customer service window with this sender closes, for the
    phones that wrote to it on WhatsApp within the last 24 hours."""
    closes: dict[str, datetime] = {}
    since = now() - WINDOW
    for part in chunked(list(dict.fromkeys(phones)), 500):
        rows = await run_sql(
            "SELECT from_number, MAX(created_at) AS last_in FROM message "  # noqa: S608 (only placeholders are formatted in)
            "WHERE direction = 'in' AND channel = 'whatsapp' AND to_number = {} "
            f"AND created_at >= {{}} AND from_number IN ({placeholders(len(part))}) "
            "GROUP BY from_number",
            sender,
            since,
            *part,
        )
        for row in rows:
            last = as_datetime(row["last_in"])
            if last is not None:
                closes[row["from_number"]] = last + WINDOW
    return closes


async def closed_windows(messages: Sequence[tuple[int, str, str]]) -> set[int]:
    """Of (message id, sender, phone) of free WhatsApp text, the messages whose customer
    service window has closed by now (checked again when a message is due, not only when
    it was accepted: a schedule, quiet hours or a retry may bring it after 24 hours)."""
    by_sender: dict[str, list[tuple[int, str]]] = {}
    for message_id, sender, phone in messages:
        by_sender.setdefault(sender, []).append((message_id, phone))
    closed: set[int] = set()
    for sender, group in by_sender.items():
        open_phones = await window_closes(sender, [phone for _, phone in group])
        closed.update(message_id for message_id, phone in group if phone not in open_phones)
    return closed


async def apply_window(
    sender: str, allowed: Sequence[str], skipped: list[tuple[str, str]], *, single: bool
) -> list[str]:
    """Free WhatsApp text: the recipients inside the window; the others join `skipped` as
    `outside_service_window`. A send to one person outside it is refused outright (422)."""
    closes = await window_closes(sender, allowed)
    outside = [p for p in allowed if p not in closes]
    if outside and single:
        raise ValidationFailed(
            {
                "template": "This person has not written to this sender in the last 24 hours: WhatsApp allows only an approved template outside the customer service window."
            }
        )
    skipped.extend((p, OUTSIDE_WINDOW) for p in outside)
    return [p for p in allowed if p in closes]


# --- per-message content for the gateways, and what comes back ---------------------------


def _payload_for(
    rich: RichRequest, template: TemplateView | None, merge: Mapping[str, str]
) -> tuple[str, dict[str, Any]] | None:
    if template is not None and rich.template is not None:
        parameters = wa_templates.template_values(template, rich.template.parameters, merge)
        return "template", {
            "name": template.name,
            "language": template.language,
            "provider_ref": template.provider_ref,
            "parameters": parameters,
        }
    if rich.card is not None:
        return "card", {**asdict(rich.card), "fallback_text": rich.card.fallback()}
    return None


async def store_rich(
    account_id: int,
    rich: RichRequest,
    template: TemplateView | None,
    ids: Mapping[str, int],
    values: Mapping[str, Mapping[str, str]],
    variables: Mapping[str, str],
) -> None:
    """One row per written message, inside the send's transaction: the template with this
    recipient's parameters, or the card (the same for everyone, encoded once). Multi-row
    INSERTs: a campaign writes thousands."""
    shared = _payload_for(rich, None, {}) if rich.card is not None else None
    shared_text = json.dumps(shared[1]) if shared else ""
    rows: list[tuple[int, int, str, str]] = []
    for phone, message_id in ids.items():
        if shared:
            rows.append((message_id, account_id, shared[0], shared_text))
            continue
        own = _payload_for(rich, template, {**values.get(phone, {}), **variables})
        if own is None:
            return
        rows.append((message_id, account_id, own[0], json.dumps(own[1])))
    for part in chunked(rows, 500):
        values_sql = ", ".join("({}, {}, {}, {})" for _ in part)
        await run_sql(
            f"INSERT INTO message_rich (message_id, account_id, kind, payload) VALUES {values_sql}",  # noqa: S608 (only placeholders are formatted in)
            *(value for row in part for value in row),
        )


async def payloads(message_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """message id -> {"kind", ...payload} for the messages that carry rich content."""
    found: dict[int, dict[str, Any]] = {}
    for part in chunked(list(message_ids), 500):
        rows = await RichContent.select(
            RichContent.message_id, RichContent.kind, RichContent.payload
        ).where(RichContent.message_id.is_in(part))
        for row in rows:
            found[row["message_id"]] = {"kind": row["kind"], **json.loads(row["payload"])}
    return found


async def record_delivered_channels(provider: str, reports: Sequence[tuple[str, str]]) -> None:
    """(provider ref, channel) pairs a provider reported: which channel carried each
    message (an RCS card that fell back to SMS says SMS)."""
    for ref, channel in reports:
        rows = await run_sql(
            "SELECT id, account_id FROM message WHERE provider = {} AND provider_ref = {}",
            provider,
            ref,
        )
        for row in rows:
            await run_sql(
                "INSERT INTO message_rich (message_id, account_id, kind, payload, delivered_channel) "
                "VALUES ({}, {}, 'text', {}, {}) ON CONFLICT (message_id) "
                "DO UPDATE SET delivered_channel = excluded.delivered_channel",
                row["id"],
                row["account_id"],
                "{}",
                channel,
            )


async def record_tap(message_id: int, account_id: int, tapped: Mapping[str, str]) -> None:
    """An inbound message that is a tap on a suggestion or button: what was tapped."""
    await run_sql(
        "INSERT INTO message_rich (message_id, account_id, kind, payload, delivered_channel) "
        "VALUES ({}, {}, 'tap', {}, '') ON CONFLICT (message_id) DO NOTHING",
        message_id,
        account_id,
        json.dumps(dict(tapped)),
    )


@dataclass(frozen=True)
class RichView:
    kind: str
    payload: dict[str, Any]
    delivered_channel: str


async def rich_of(message_id: int) -> RichView | None:
    row = await RichContent.select().where(RichContent.message_id == message_id).first()
    if row is None:
        return None
    return RichView(row["kind"], json.loads(row["payload"] or "{}"), row["delivered_channel"])


async def whatsapp_sender_window(
    sender: str, phones: Sequence[str]
) -> list[tuple[str, datetime | None]]:
    """For the send page and the API: each phone and when its window closes (None: closed,
    a template is required)."""
    closes = await window_closes(sender, phones)
    return [(p, closes.get(p)) for p in phones]
