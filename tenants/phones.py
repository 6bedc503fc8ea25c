"""Phone numbers: parsing a person's input into E.164 with the `phonenumbers` package."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonemetadata import PhoneNumberDesc

# Numbers people type carry spaces, dots, dashes and brackets; anything else (letters,
# vanity numbers) is refused rather than guessed.
_ALLOWED = re.compile(r"^[+0-9()\-.\s/]+$")
_MAX_INPUT = 40
_E164 = re.compile(r"^\+([1-9][0-9]{6,14})$")
# The number types phonenumbers tells apart after the general pattern; a number is valid
# when its type is known, i.e. when it matches the general pattern and one of these.
_TYPED = (
    "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
    "pager", "uan", "voicemail",
)  # fmt: skip


def normalize_phone(raw: str, region: str) -> str | None:
    """The E.164 form of `raw` (national numbers read in `region`), or None if invalid.

    A number is accepted only when the numbering plan says it is a valid number, not
    merely one of plausible length, so a typo is reported instead of messaged.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_INPUT or not _ALLOWED.match(text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    if _E164.match(text):
        fast = _check_e164(text)
        if fast is not _UNDECIDED:
            return fast
    return _parse(text, (region or "").upper())


_UNDECIDED = ""


@lru_cache(maxsize=65536)
def _check_e164(text: str) -> str | None:
    """Validate text already in E.164 without the general parser: stored contacts and API
    callers mostly send E.164. Returns _UNDECIDED for the cases the parser treats
    specially (a national number starting with 0, or not valid as is)."""
    digits = text[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
        if regions:
            national = digits[size:]
            if not national or national[0] == "0":
                return _UNDECIDED
            # An invalid-looking number may still be one the parser repairs (a trunk
            # prefix after the country code): let it decide.
            return text if _valid_national(code, regions, national) else _UNDECIDED
    return None


def _valid_national(code: int, regions: tuple[str, ...], national: str) -> bool:
    """phonenumbers.is_valid_number for +<code><national>, deciding the number's region and
    validity in one pass. is_valid_number finds the region (classifying the number against
    each candidate region's patterns), then classifies it again against the region found,
    and a classification tries up to ten types in turn; validity only needs to know that
    one type matches, so mobile (most recipients) is tried first and the rest only if not."""
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
        return metadata is not None and _has_type(national, metadata)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return _has_type(national, metadata)
        elif _has_type(national, metadata):
            return True
    return False


# phonenumbers' own test of a number against one pattern of a region (its possible lengths,
# then its pattern in full), with the pattern compiled once per description instead of
# looked up through three calls per test; tests/unit/test_phones.py pins the fast path to
# is_valid_number itself. Keyed by id(): metadata objects live as long as the process and
# each entry keeps its description alive, so an id is never reused.
_compiled: dict[int, tuple[PhoneNumberDesc, frozenset[int], re.Pattern[str] | None]] = {}


def _matches(national: str, desc: PhoneNumberDesc | None) -> bool:
    if desc is None:
        return False
    entry = _compiled.get(id(desc))
    if entry is None:
        pattern = desc.national_number_pattern
        entry = (desc, frozenset(desc.possible_length), re.compile(pattern) if pattern else None)
        _compiled[id(desc)] = entry
    _, lengths, compiled = entry
    if lengths and len(national) not in lengths:
        return False
    return compiled is not None and compiled.fullmatch(national) is not None


def _has_type(national: str, metadata: PhoneMetadata) -> bool:
    """Whether phonenumbers' type of the number in this region is not UNKNOWN."""
    if not _matches(national, metadata.general_desc):
        return False
    # phonenumbers looks at the mobile pattern only when it differs from the fixed-line one.
    if not metadata.same_mobile_and_fixed_line_pattern and _matches(national, metadata.mobile):
        return True
    return any(_matches(national, getattr(metadata, kind)) for kind in _TYPED)


# Campaigns send to the same contacts again and again; parsing is ~60 µs a number.
@lru_cache(maxsize=65536)
def _parse(text: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    """Whether `value` already is a valid number written in E.164."""
    return value.startswith("+") and normalize_phone(value, "ZZ") == value


# --- sender IDs -------------------------------------------------------------------------

# The one rule for every sender a person enters (send form, API, numbers page, an
# integration's default sender): alphanumeric 1-11 of letters, digits and - . _ &, with at
# least one letter; numeric at most 15 digits with an optional +.
MAX_ALPHANUMERIC_SENDER = 11
MAX_NUMERIC_SENDER_DIGITS = 15
_NUMERIC_SENDER = re.compile(r"^\+?[0-9]+$")
_ALPHANUMERIC_SENDER = re.compile(r"^[A-Za-z0-9\-._&]+$")


def sender_kind(value: str) -> str:
    """`numeric` for a sender of digits (optional +), else `alphanumeric`."""
    return "numeric" if _NUMERIC_SENDER.match(value) else "alphanumeric"


def sender_problem(value: str) -> str | None:
    """Why `value` is not a valid sender (number or sender ID), in words; None when valid."""
    if not value:
        return "A sender ID is required."
    if sender_kind(value) == "numeric":
        if len(value.lstrip("+")) > MAX_NUMERIC_SENDER_DIGITS:
            return f"A numeric sender ID has at most {MAX_NUMERIC_SENDER_DIGITS} digits."
        return None
    if any(ch.isspace() for ch in value):
        return "An alphanumeric sender ID has no spaces (e.g. MITTO-SMS)."
    if not _ALPHANUMERIC_SENDER.match(value):
        return "An alphanumeric sender ID uses only letters, digits and - . _ &."
    if not any(ch.isalpha() for ch in value):
        return "An alphanumeric sender ID needs at least one letter."
    if len(value) > MAX_ALPHANUMERIC_SENDER:
        return f"An alphanumeric sender ID has at most {MAX_ALPHANUMERIC_SENDER} characters."
    return None
