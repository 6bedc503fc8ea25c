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
