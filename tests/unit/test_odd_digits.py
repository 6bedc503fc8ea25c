"""Characters that str.isdigit takes and int() (or compare_digest) refuses: a code, a media
token or a provider's metadata holding one is simply not valid, never an exception."""

from __future__ import annotations

import time

import pyotp

from tasks.gateways.messagemedia import _our_id
from tenants.access import totp
from tenants.media import store


def test_a_two_factor_code_with_a_superscript_digit_matches_no_step():
    secret = pyotp.random_base32()
    good = pyotp.TOTP(secret).now()
    assert totp._matching_step(secret, good, time.time()) is not None
    assert totp._matching_step(secret, good[:5] + "²", time.time()) is None


def test_a_media_token_with_odd_digits_is_malformed():
    assert store.verify_token("1².9999999999.sig") is None
    assert store.verify_token("١.9999999999.sig") is None


def test_messagemedia_metadata_with_odd_digits_names_no_message():
    assert _our_id({"portal_message_id": "٣"}) is None
