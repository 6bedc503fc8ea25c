"""RSA public keys of providers that sign their webhooks with a private key of their own
(MessageMedia's signature keys): how a pasted key is kept (base64 DER, the form the
provider's Signature Key API returns it in; PEM armour and line breaks are dropped), the
refusal for a key that is not one, and the PKCS#1 v1.5 check of a signature."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha512": hashes.SHA512,
}
_ARMOUR = re.compile(r"-----(BEGIN|END) (RSA )?PUBLIC KEY-----")
MIN_KEY_BITS = 2048


def normalised_public_key(text: str) -> str:
    """The key's base64 DER, whether pasted bare or as PEM (on one line or several)."""
    return re.sub(r"\s+", "", _ARMOUR.sub("", text))


def load_public_key(value: str) -> rsa.RSAPublicKey:
    """The RSA public key a normalised value holds; ValueError when it holds none."""
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    try:
        key = load_der_public_key(der)
    except UnsupportedAlgorithm:  # well-formed DER of a key type cryptography cannot load
        raise ValueError("unsupported key type") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key


def public_key_problem(value: str) -> str | None:
    """What to say next to the field, or None for an RSA public key of 2048 bits or more."""
    try:
        key = load_public_key(value)
    except ValueError:
        return "Paste the public key of the signature key (base64, or PEM with its BEGIN and END lines)."
    if key.key_size < MIN_KEY_BITS:
        return f"The key has {key.key_size} bits; a signature key has at least {MIN_KEY_BITS}."
    return None


def rsa_signature_valid(public_key: str, digest: str, signature: str, message: bytes) -> bool:
    """Whether `signature` (base64) is the key's PKCS#1 v1.5 signature of `message`."""
    algorithm = DIGESTS.get(digest.lower())
    if algorithm is None:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        load_public_key(public_key).verify(raw, message, padding.PKCS1v15(), algorithm())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
