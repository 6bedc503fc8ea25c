"""SMS segment counting: GSM-7 vs UCS-2 encoding, septet/UTF-16 units and billed segments.

This module owns the billing rules for message length. They are exact:

* GSM-7 (3GPP TS 23.038 default alphabet): a basic-set character is 1 septet, an
  extension-set character is 2 septets (ESC + char). 160 septets fit one segment;
  a concatenated message carries 153 septets per segment (the rest is the UDH).
  An escape pair is never split: if it does not fit the room left in a segment it
  moves to the next one and leaves a septet unused.
* UCS-2: used as soon as any character is outside GSM basic + extension. Length is
  counted in UTF-16 code units: 70 in one segment, 67 per concatenated segment. A
  character outside the BMP (surrogate pair, 2 units) is never split, and neither is
  a grapheme cluster (ZWJ emoji, flags, skin tones, keycaps, combining marks): the
  whole cluster moves to the next segment. Only a cluster longer than a whole
  segment is split, and then only between code points: it fills the room left in the
  current segment first, since moving it would not save a segment.

Grapheme clusters are approximated in-house (no dependency) from UAX #29: CRLF,
controls, Extend/SpacingMark (combining marks, variation selectors, emoji modifiers,
tags, ZWJ/ZWNJ), ZWJ joining the next code point, regional-indicator pairs and Hangul
syllable sequences. Prepend characters and Indic conjunct rules are not modelled.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67

# 3GPP TS 23.038 default alphabet minus 0x1B: that position is the escape to the
# extension table, so a literal ESC in the text cannot be sent as itself.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[]~|€")
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # user-perceived characters = grapheme clusters
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    remaining: int  # units left in the current (last) segment
    per_segment: int  # capacity used (160/153 or 70/67)


# Punctuation and spacing that editors and phones insert "helpfully"; each one alone
# would switch the whole message to UCS-2 and more than double its price.
GSM_LOOKALIKES: dict[str, str] = {
    # quotes and primes
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark / typographic apostrophe
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent used as an apostrophe
    "`": "'",  # grave accent used as an apostrophe
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
    "\u2039": "'",  # single left-pointing angle quotation mark
    "\u203a": "'",  # single right-pointing angle quotation mark
    # dashes and hyphens
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    # spaces (the GSM alphabet has exactly one)
    "\t": " ",
    "\u00a0": " ",  # no-break space
    "\u2000": " ",
    "\u2001": " ",
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",  # figure space
    "\u2008": " ",
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    # invisible characters: nothing to show, so nothing to pay for
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte-order mark / zero-width no-break space
    # ellipsis, bullets and other punctuation
    "\u2026": "...",  # horizontal ellipsis
    "\u2022": "-",  # bullet
    "\u2023": "-",  # triangular bullet
    "\u2043": "-",  # hyphen bullet
    "\u25e6": "-",  # white bullet
    "\u2219": "-",  # bullet operator
    "\u2044": "/",  # fraction slash
    "\u2215": "/",  # division slash
    "\u02c6": "^",  # modifier letter circumflex
    "\u02dc": "~",  # small tilde
    "\u2122": "TM",  # trade mark sign
    "\u00a9": "(C)",  # copyright sign
    "\u00ae": "(R)",  # registered sign
}


def replace_lookalikes(text: str) -> str:
    """Replace the characters in GSM_LOOKALIKES with their GSM-7 equivalents."""
    # Built per call so that a caller extending GSM_LOOKALIKES is honoured.
    table: dict[str, str | int | None] = dict(GSM_LOOKALIKES)
    return text.translate(str.maketrans(table))


def _is_gsm7(text: str) -> bool:
    return set(text) <= _GSM7_ALL


def _septets(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


# --- grapheme clusters -----------------------------------------------------------

# Grapheme-break property of a code point, reduced to what the rules below need.
_OTHER, _CR, _LF, _CONTROL, _EXTEND, _ZWJ, _RI = "O", "CR", "LF", "Control", "Extend", "ZWJ", "RI"
_PICT = "ExtPict"  # emoji-like symbols: a ZWJ joins two of them (UAX #29 GB11)
# An approximation of Extended_Pictographic: the emoji and symbol blocks.
_PICT_RANGES = (
    (0x1F000, 0x1FAFF),
    (0x2600, 0x27BF),
    (0x2300, 0x23FF),
    (0x2B00, 0x2BFF),
    (0x2190, 0x21FF),
)
_PICT_SINGLES = frozenset(
    {0xA9, 0xAE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D, 0x3297, 0x3299}
)
_HIGH, _LOW = "HighSurrogate", "LowSurrogate"
_L, _V, _T, _LV, _LVT = "L", "V", "T", "LV", "LVT"

_JOINS = {
    (_CR, _LF),
    # A str holding a surrogate pair as two code points is still one character on air.
    (_HIGH, _LOW),
    # Hangul syllable sequences (UAX #29 GB6-GB8).
    (_L, _L),
    (_L, _V),
    (_L, _LV),
    (_L, _LVT),
    (_LV, _V),
    (_LV, _T),
    (_V, _V),
    (_V, _T),
    (_LVT, _T),
    (_T, _T),
}


@lru_cache(maxsize=4096)
def _break_property(char: str) -> str:
    cp = ord(char)
    if cp == 0x0D:
        return _CR
    if cp == 0x0A:
        return _LF
    if cp == 0x200D:
        return _ZWJ
    category = unicodedata.category(char)
    if (
        category in ("Mn", "Me", "Mc")  # combining marks, keycap U+20E3, spacing marks
        or unicodedata.combining(char)
        or cp == 0x200C  # ZWNJ
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors (text/emoji presentation)
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
    ):
        return _EXTEND
    if category in ("Cc", "Zl", "Zp", "Cf"):
        return _CONTROL
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if cp in _PICT_SINGLES or any(low <= cp <= high for low, high in _PICT_RANGES):
        return _PICT
    if 0xD800 <= cp <= 0xDBFF:
        return _HIGH
    if 0xDC00 <= cp <= 0xDFFF:
        return _LOW
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    return _OTHER


def grapheme_clusters(text: str) -> list[str]:
    """Split text into user-perceived characters (an approximation of UAX #29)."""
    clusters: list[str] = []
    start = 0
    prev = ""
    ri_run = 0  # regional indicators in a row ending at prev; pairs make one flag
    emoji_base = False  # the current cluster is an emoji sequence (GB11 may continue it)
    for index, char in enumerate(text):
        prop = _break_property(char)
        # Two ordinary code points always break: skip the rule table for most text.
        if index and ((prop == prev == _OTHER) or not _joins(prev, prop, ri_run, emoji_base)):
            clusters.append(text[start:index])
            start = index
            emoji_base = prop == _PICT
        elif not index:
            emoji_base = prop == _PICT
        ri_run = ri_run + 1 if prop == _RI else 0
        prev = prop
    if text:
        clusters.append(text[start:])
    return clusters


def _joins(prev: str, prop: str, ri_run: int, emoji_base: bool = False) -> bool:
    """True when there is no grapheme boundary between two code points."""
    if (prev, prop) in _JOINS:
        return True
    if prev in (_CR, _LF, _CONTROL) or prop in (_CR, _LF, _CONTROL):
        return False
    if prop in (_EXTEND, _ZWJ):
        return True
    if prev == _ZWJ:
        # GB11: a ZWJ joins an emoji sequence to the next emoji; between letters (Arabic,
        # Indic scripts use it for shaping) it is no boundary-breaker of its own.
        return emoji_base and prop == _PICT
    return prev == _RI and prop == _RI and ri_run % 2 == 1


# --- counting -----------------------------------------------------------------------


def _utf16_pieces(cluster: str) -> list[int]:
    """UTF-16 sizes of the smallest pieces a cluster may be cut into (code points)."""
    if len(cluster) == 1:
        return [2 if ord(cluster) > 0xFFFF else 1]
    pieces: list[int] = []
    previous_high = False
    for char in cluster:
        cp = ord(char)
        if previous_high and 0xDC00 <= cp <= 0xDFFF:
            pieces[-1] = 2  # lone surrogates forming a pair: never cut between them
            previous_high = False
            continue
        pieces.append(2 if cp > 0xFFFF else 1)
        previous_high = 0xD800 <= cp <= 0xDBFF
    return pieces


def _fill(sizes: Iterable[int], multi: int, segments: int, used: int) -> tuple[int, int]:
    """Greedy fill: whatever does not fit the room left opens the next segment."""
    for size in sizes:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments, used


def count_segments(text: str) -> SegmentCount:
    """Count encoding, characters, units and billed segments of an SMS body."""
    if _is_gsm7(text):
        # No GSM-7 character extends another, so CRLF is the only two-code-point
        # character; and the network splits septets, not clusters, so the only
        # indivisible unit is the escape pair.
        characters = len(text) - text.count("\r\n")
        units = len(text) + sum(text.count(char) for char in GSM7_EXTENSION)
        if units <= GSM7_SINGLE:
            return _single(GSM7, characters, units, GSM7_SINGLE)
        segments, used = _fill(map(_septets, text), GSM7_MULTI, 1, 0)
        return SegmentCount(GSM7, characters, units, segments, GSM7_MULTI - used, GSM7_MULTI)

    clusters = grapheme_clusters(text)
    atoms = [_utf16_pieces(cluster) for cluster in clusters]
    units = sum(sum(pieces) for pieces in atoms)
    if units <= UCS2_SINGLE:
        return _single(UCS2, len(clusters), units, UCS2_SINGLE)
    segments, used = 1, 0
    for pieces in atoms:
        size = sum(pieces)
        # A cluster moves whole, unless it is larger than a segment: then moving it
        # would not help and it is cut between code points (never inside a pair).
        segments, used = _fill(pieces if size > UCS2_MULTI else (size,), UCS2_MULTI, segments, used)
    return SegmentCount(UCS2, len(clusters), units, segments, UCS2_MULTI - used, UCS2_MULTI)


def _single(encoding: str, characters: int, units: int, capacity: int) -> SegmentCount:
    segments = 1 if units else 0
    return SegmentCount(encoding, characters, units, segments, capacity - units, capacity)


def ucs2_characters(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in first-seen order.

    A character here is a grapheme cluster, so a family emoji or an accent written as
    a combining mark is reported whole, the way the sender sees it.
    """
    seen: dict[str, None] = {}
    for cluster in grapheme_clusters(text):
        if not _is_gsm7(cluster):
            seen.setdefault(cluster, None)
    return list(seen)
