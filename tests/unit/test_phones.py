"""The E.164 fast path of tenants.phones answers exactly as phonenumbers.is_valid_number,
pinned over every region's example numbers of every type (the numbers most likely to be
valid, so each classifier branch is taken) and their one-digit neighbours."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from tenants.phones import e164_region, normalize_phone


def _examples() -> list[phonenumbers.PhoneNumber]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(example)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            found.append(example)
    return found


def _neighbours(e164: str) -> list[str]:
    """The number itself, with its last digit changed, one digit more and one fewer."""
    last = e164[-1]
    return [
        e164,
        e164[:-1] + str((int(last) + 1) % 10),
        e164[:-1] + str((int(last) + 5) % 10),
        e164 + "1",
        e164[:-1],
        e164[:-2] + "99",
    ]


def _expected(text: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def test_the_fast_path_agrees_with_is_valid_number_on_every_example_and_its_neighbours():
    examples = _examples()
    assert len(examples) > 1000  # every region, most types
    checked = valid = 0
    for example in examples:
        for text in _neighbours(phonenumbers.format_number(example, PhoneNumberFormat.E164)):
            expected = _expected(text)
            assert normalize_phone(text, "ZZ") == expected, text
            checked += 1
            valid += expected is not None
    # Both answers are exercised in quantity.
    assert valid > 1000 and checked - valid > 1000


def test_regions_sharing_a_calling_code_are_told_apart_before_validating():
    # +61: Australia, Christmas Island (8 9164), Cocos (8 9162); +1: NANP regions.
    for text in ("+61891640123", "+61891621234", "+61412345678", "+16135550123", "+18092345678"):
        assert normalize_phone(text, "AU") == _expected(text) == text
    assert normalize_phone("+61891649999999", "AU") is None


def test_the_memo_answers_again_and_knows_the_region_phonenumbers_gives():
    """Each distinct E.164 text is decided once: asked again it gets the same answer, and a
    number valid as written carries region_code_for_number (destination_country reads it for pricing)."""
    regions_checked = 0
    for example in _examples():
        for text in _neighbours(phonenumbers.format_number(example, PhoneNumberFormat.E164)):
            first = normalize_phone(text, "ZZ")
            assert normalize_phone(text, "AU") == first, text
            if first != text:
                continue
            known = e164_region(text)
            if known:
                parsed = phonenumbers.parse(text, None)
                assert known == phonenumbers.region_code_for_number(parsed), text
                regions_checked += 1
    assert regions_checked > 1000
