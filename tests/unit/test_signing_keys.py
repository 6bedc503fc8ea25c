"""Signature keys pasted for a provider: anything but an RSA public key of 2048 bits or more
is a field message, never an exception."""

from __future__ import annotations

import base64

from tenants.providers import signing

# A SubjectPublicKeyInfo naming an algorithm (OID 1.2.3.4) that no library knows.
UNKNOWN_ALGORITHM = bytes.fromhex("300c300506032a03040303000102")


def test_well_formed_der_of_an_unknown_key_type_is_a_field_message() -> None:
    value = base64.b64encode(UNKNOWN_ALGORITHM).decode()
    assert signing.public_key_problem(value) is not None
    assert not signing.rsa_signature_valid(value, "sha256", "AAAA", b"message")


def test_text_that_is_not_base64_is_a_field_message() -> None:
    assert signing.public_key_problem("not a key!") is not None
