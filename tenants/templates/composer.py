"""What the message composer shows for a body as it is typed: length, encoding, segments
and cost, the characters that force UCS-2 (with their GSM-7 look-alikes), unknown merge
fields, an estimate for text with merge fields and the exact figure for sample values.

Pure functions over plain values, except `merge_field_names`, which reads the account's
contacts for their custom field names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from tenants.accounts.tables import Account
from tenants.contacts.tables import Contact
from tenants.credits import pricing
from tenants.db import is_sqlite
from tenants.links.links import counted_as_short_links, shape_of_short_link, url_spans
from tenants.templates.merge_fields import fields_in, render, unknown_fields
from tenants.templates.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM_LOOKALIKES,
    SegmentCount,
    count_segments,
    grapheme_clusters,
    replace_lookalikes,
    ucs2_characters,
)

# Every contact has these; custom contact fields add to them.
CONTACT_FIELDS = ("first_name", "last_name", "phone")
# Lengths assumed for the estimate shown while a template is written, before any
# recipient is known: a little above the median of real first/last names and an E.164
# mobile number. Other fields (custom ones, API variables) are assumed this long:
TYPICAL_LENGTHS = {"first_name": 8, "last_name": 10, "phone": 12}
TYPICAL_LENGTH = 10
# Pre-filled sample values, so the exact rendering shows as soon as a field is typed.
SAMPLE_VALUES = {"first_name": "Alex", "last_name": "Taylor", "phone": "+61412345678"}
STANDARD_RATE_LABEL = "credits at the standard SMS rate"
COMPOSER_CHANNEL = "sms"
REPLACE_ALL = "all"
_GSM7_ALPHABET = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True)
class Culprit:
    """A character (grapheme) that forces UCS-2, and its GSM-7 stand-in if one exists."""

    text: str
    name: str
    occurrences: int
    replacement: str | None


@dataclass(frozen=True)
class Piece:
    """A run of the text for highlighting: `forces_ucs2` runs are one culprit each."""

    text: str
    forces_ucs2: bool = False


@dataclass(frozen=True)
class Composition:
    text: str
    count: SegmentCount  # of the text; an estimate when it has merge fields
    estimated: bool
    fields: list[str]
    unknown_fields: list[str]
    known_fields: list[str]
    assumed_lengths: dict[str, int]
    culprits: list[Culprit]
    pieces: list[Piece]  # empty unless something forces UCS-2
    credits_per_segment: int
    cost: int
    cost_label: str
    sample_values: dict[str, str] = field(default_factory=dict)
    sample_text: str | None = None
    sample_count: SegmentCount | None = None
    sample_cost: int | None = None
    # With tracked links each URL is counted as its short link, this long.
    tracked_links: int = 0
    short_link_length: int = 0
    # WhatsApp and RCS count characters against the channel's limit, one message each
    # (tenants.rich.content.channel_composition); SMS and MMS count segments.
    channel: str = "sms"
    char_limit: int = 0

    @property
    def replaceable(self) -> bool:
        return any(c.replacement is not None for c in self.culprits)


def gsm_replacement(cluster: str) -> str | None:
    """The GSM-7 text that looks like this character, if any.

    Besides the look-alike table, an accent typed as a combining mark (e + U+0301) has a
    precomposed form (é) that GSM-7 may hold.
    """
    if cluster in GSM_LOOKALIKES:
        return GSM_LOOKALIKES[cluster]
    composed = unicodedata.normalize("NFC", cluster)
    if composed != cluster and count_segments(composed).encoding == GSM7:
        return composed
    return None


def _name(cluster: str) -> str:
    names = [unicodedata.name(ch, f"U+{ord(ch):04X}") for ch in cluster]
    return " + ".join(names)


def _pieces(clusters: list[str], culprits: set[str]) -> list[Piece]:
    pieces: list[Piece] = []
    run: list[str] = []
    for cluster in clusters:
        if cluster in culprits:
            if run:
                pieces.append(Piece("".join(run)))
                run = []
            pieces.append(Piece(cluster, forces_ucs2=True))
        else:
            run.append(cluster)
    if run:
        pieces.append(Piece("".join(run)))
    return pieces


def apply_replacement(text: str, which: str) -> str:
    """Replace one UCS-2 culprit by its GSM-7 look-alike, or every one with `"all"`.

    Only a culprit actually present with a known stand-in is replaced; anything else
    returns the text unchanged (the request names a character, it cannot inject text).
    """
    if which == REPLACE_ALL:
        text = replace_lookalikes(text)
        for cluster in ucs2_characters(text):
            stand_in = gsm_replacement(cluster)
            if stand_in is not None:
                text = text.replace(cluster, stand_in)
        return text
    if which and which in ucs2_characters(text):
        stand_in = gsm_replacement(which)
        if stand_in is not None:
            return text.replace(which, stand_in)
    return text


def compose(
    text: str,
    *,
    known_fields: Iterable[str] = CONTACT_FIELDS,
    samples: Mapping[str, str] | None = None,
    credits_per_segment: int = 1,
    cost_label: str = STANDARD_RATE_LABEL,
    link_base: str | None = None,
) -> Composition:
    """Everything the composer shows for `text`.

    Without merge fields the count is exact. With them, the count is an estimate with
    typical field lengths, and `samples` (field -> value; missing ones get a default
    sample) gives the exact rendering and count for those values. With `link_base` (the
    send tracks links) every URL counts as long as the short link that replaces it.
    """
    known = list(known_fields)
    names = fields_in(text)
    assumed = {name: TYPICAL_LENGTHS.get(name, TYPICAL_LENGTH) for name in names}
    counted = _estimated_count(text, assumed, link_base)
    ucs2 = _ucs2_in(text)
    result = Composition(
        text=text,
        count=counted,
        estimated=bool(names),
        fields=names,
        unknown_fields=unknown_fields(text, known),
        known_fields=known,
        assumed_lengths=assumed,
        culprits=ucs2.culprits,
        pieces=ucs2.pieces,
        credits_per_segment=credits_per_segment,
        cost=counted.segments * credits_per_segment,
        cost_label=cost_label,
        tracked_links=len(url_spans(text)) if link_base else 0,
        short_link_length=len(shape_of_short_link(link_base)) if link_base else 0,
    )
    if not names:
        return result
    return _with_sample(result, samples or {}, link_base)


def _as_sent(text: str, link_base: str | None) -> str:
    return counted_as_short_links(text, link_base) if link_base else text


def _estimated_count(
    text: str, assumed: Mapping[str, int], link_base: str | None = None
) -> SegmentCount:
    if not assumed:
        return count_segments(_as_sent(text, link_base))
    # Stand-in values of GSM-7 letters: an estimate cannot know the recipients'
    # alphabets; the sample shows what a real value does.
    rendered = render(text, {n: "x" * size for n, size in assumed.items()})
    return count_segments(_as_sent(rendered, link_base))


@dataclass(frozen=True)
class _Ucs2:
    """What forces the text into UCS-2: each culprit, and the text cut around them."""

    culprits: list[Culprit]
    pieces: list[Piece]


def _ucs2_in(text: str) -> _Ucs2:
    # One grapheme pass serves both the culprit list and the highlighting; this is what
    # ucs2_characters() does, without segmenting the text a second time.
    clusters = [] if set(text) <= _GSM7_ALPHABET else grapheme_clusters(text)
    found = list(dict.fromkeys(c for c in clusters if not set(c) <= _GSM7_ALPHABET))
    culprits = [
        Culprit(
            text=cluster,
            name=_name(cluster),
            occurrences=text.count(cluster),
            replacement=gsm_replacement(cluster),
        )
        for cluster in found
    ]
    return _Ucs2(culprits=culprits, pieces=_pieces(clusters, set(found)) if found else [])


def _with_sample(
    result: Composition, given: Mapping[str, str], link_base: str | None = None
) -> Composition:
    """The exact rendering and count for these field values (defaults for missing ones)."""
    values = {name: given.get(name, SAMPLE_VALUES.get(name, "")) for name in result.fields}
    sample_text = render(result.text, values)
    sample_count = count_segments(_as_sent(sample_text, link_base))
    return replace(
        result,
        sample_values=values,
        sample_text=sample_text,
        sample_count=sample_count,
        sample_cost=sample_count.segments * result.credits_per_segment,
    )


# Custom field names used by any of the account's contacts: one query, the keys of the
# JSON `fields` column gathered in the database rather than row by row in Python.
_CUSTOM_FIELDS_SQLITE = (
    "SELECT DISTINCT j.key AS name FROM contact, json_each(contact.fields) AS j "
    "WHERE contact.account_id = {}"
)
_CUSTOM_FIELDS_POSTGRES = (
    "SELECT DISTINCT jsonb_object_keys(fields::jsonb) AS name FROM contact WHERE account_id = {}"
)


async def merge_field_names(account_id: int) -> list[str]:
    """The merge fields a recipient of this account can fill: the standard contact fields,
    then the custom fields its contacts carry, sorted."""
    sql = _CUSTOM_FIELDS_SQLITE if is_sqlite() else _CUSTOM_FIELDS_POSTGRES
    rows = await Contact.raw(sql, account_id)
    custom = sorted({r["name"] for r in rows} - set(CONTACT_FIELDS))
    return [*CONTACT_FIELDS, *custom]


async def sms_rate(account_id: int) -> tuple[int, str]:
    """Credits per SMS segment to the account's home country, and the words for the cost.

    Before recipients are known the destination is a guess: the account's default region,
    the country its local numbers are read in. The send itself prices each recipient.
    """
    row = await Account.select(Account.default_region).where(Account.id == account_id).first()
    region = (row or {}).get("default_region") or ""
    prices = await pricing.prices_for(account_id, COMPOSER_CHANNEL)
    rate = prices.get(region, prices["*"])
    where = f" to {region}" if region else ""
    return rate, f"credits (SMS{where} at {rate} per segment)"
