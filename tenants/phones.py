"""Phone numbers: parsing a person's input into E.164 with the `phonenumbers` package."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

# Numbers people type carry spaces, dots, dashes and brackets; anything else (letters,
# vanity numbers) is refused rather than guessed.
_ALLOWED = re.compile(r"^[+0-9()\-.\s/]+$")
_MAX_INPUT = 40
_E164 = re.compile(r"^\+([1-9][0-9]{6,14})$")


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


def _check_e164(text: str) -> str | None:
    """Validate text already in E.164 without the general parser (about twice as fast:
    stored contacts and API callers mostly send E.164). Returns _UNDECIDED for the cases
    the parser treats specially (a national number starting with 0, or not valid as is)."""
    digits = text[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            if not national or national[0] == "0":
                return _UNDECIDED
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            # An invalid-looking number may still be one the parser repairs (a trunk
            # prefix after the country code): let it decide.
            return text if phonenumbers.is_valid_number(number) else _UNDECIDED
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
