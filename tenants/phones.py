"""Phone numbers: parsing a person's input into E.164 with the `phonenumbers` package."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

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
    # Most input (stored contacts, API callers) is already E.164: answered from the memo.
    known = _e164_answers.get(raw, _UNSEEN)
    if known is not _UNSEEN:
        return known[0] if known else None
    text = raw.strip()
    if not text or len(text) > _MAX_INPUT or not _ALLOWED.match(text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    if not _E164.match(text):
        return _parse(text, (region or "").upper())
    answer = _e164_answer(text)
    return answer[0] if answer else None


# The answer for each distinct number written in E.164 (which no default region changes),
# decided once per process: (its E.164 form, its region) when valid, None when not. The
# region is phonenumbers' region_code_for_number (pricing reads it), "" when the parser
# decided. Emptied when full, so it stays a few tens of MB at most.
E164_MEMO_SIZE = 150_000
_E164Answer = tuple[str, str] | None
_e164_answers: dict[str, _E164Answer] = {}
_UNSEEN: Any = object()


def _e164_answer(text: str) -> _E164Answer:
    known = _e164_answers.get(text, _UNSEEN)
    if known is not _UNSEEN:
        return known  # type: ignore[no-any-return]
    region = _check_e164(text)
    answer: _E164Answer
    if region is _UNDECIDED:
        parsed = _parse(text, "")
        answer = (parsed, "") if parsed else None
    else:
        answer = (text, region) if region else None
    if len(_e164_answers) >= E164_MEMO_SIZE:
        _e164_answers.clear()
    _e164_answers[text] = answer
    return answer


def e164_region(e164: str) -> str:
    """The region of a valid E.164 number normalize_phone() decided lately, "" if unknown."""
    known = _e164_answers.get(e164)
    return known[1] if known else ""


_UNDECIDED = ""


def _check_e164(text: str) -> str | None:
    """Validate text already in E.164 without the general parser: stored contacts and API
    callers mostly send E.164. Returns the number's region when valid, None when invalid,
    and _UNDECIDED for the cases the parser treats specially (a national number starting
    with 0, or not valid as is)."""
    digits = text[1:]
    for size in (1, 2, 3):
        code = digits[:size]
        if code in _CALLING_CODES:
            national = digits[size:]
            if not national or national[0] == "0":
                return _UNDECIDED
            classifiers = _classifiers.get(code)
            if classifiers is None:
                classifiers = _classifiers[code] = _classifiers_for(*_CALLING_CODES[code])
            # An invalid-looking number may still be one the parser repairs (a trunk
            # prefix after the country code): let it decide.
            return _region_if_valid(classifiers, national) or _UNDECIDED
    return None


# Calling codes by their digits as written, with their regions (main region first).
_CALLING_CODES: dict[str, tuple[int, tuple[str, ...]]] = {
    str(code): (code, tuple(regions))
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
    if regions
}

# phonenumbers' test of a number against one description of a region is its possible
# lengths (when it lists any), then its pattern in full: (lengths, compiled pattern).
_Desc = tuple[frozenset[int], re.Pattern[str]]
# A region as the fast path classifies a number: (region, leading digits or None, the
# general description, the descriptions of which one must match for the number to be valid).
_Classifier = tuple[str, re.Pattern[str] | None, _Desc, tuple[_Desc, ...]]
_classifiers: dict[str, tuple[_Classifier, ...]] = {}  # by calling code, built on first use


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None  # matches nothing
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _classifiers_for(code: int, regions: tuple[str, ...]) -> tuple[_Classifier, ...]:
    """phonenumbers.is_valid_number for +<code><national>, compiled once per calling code.
    is_valid_number finds the region (classifying the number against each candidate
    region's patterns), then classifies it again against the region found, and a
    classification tries up to ten types in turn; validity only needs one type to match, so
    mobile (most recipients) comes first. A calling code of one region is not told apart
    by leading digits (metadata_for_region_or_calling_code also covers non-geographic
    codes); each of several regions is, when its metadata gives leading digits."""
    found: list[_Classifier] = []
    single = len(regions) == 1
    for region in regions:
        if single:
            metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        else:
            metadata = PhoneMetadata.metadata_for_region(region, None)
        general = _desc(metadata.general_desc) if metadata is not None else None
        if metadata is None or general is None:
            continue  # (a region whose general pattern is missing validates nothing)
        # phonenumbers looks at the mobile pattern only when it differs from fixed line.
        kinds = ("mobile",) if not metadata.same_mobile_and_fixed_line_pattern else ()
        types = [_desc(getattr(metadata, kind)) for kind in (*kinds, *_TYPED)]
        leading = None if single or metadata.leading_digits is None else metadata.leading_digits
        found.append(
            (
                region,
                re.compile(leading) if leading is not None else None,
                general,
                tuple(t for t in types if t is not None),
            )
        )
    return tuple(found)


def _region_if_valid(classifiers: tuple[_Classifier, ...], national: str) -> str | None:
    """The region of a valid number (region_code_for_number), None when it is not valid.
    tests/unit/test_phones.py pins this to is_valid_number itself."""
    size = len(national)
    for region, leading, (lengths, pattern), types in classifiers:
        if leading is not None and not leading.match(national):
            continue
        valid = (not lengths or size in lengths) and pattern.fullmatch(national) is not None
        if valid and any((not ls or size in ls) and p.fullmatch(national) for ls, p in types):
            return region
        if leading is not None:
            return None  # the region its leading digits name, and it is not valid there
    return None


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
