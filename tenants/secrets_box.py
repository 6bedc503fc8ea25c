"""Encryption at rest for secrets the platform must read back (OIDC client secrets, TOTP
seeds, provider credentials, webhook signing secrets): Fernet with a key derived from the
portal's SECRET_KEY, so a copy of the database alone reveals none of them.

The key material comes from a function the portal installs at start-up (`configure`);
until then it is `server_secret()`: SECRET_KEY from the environment, else the key kept in
the data folder, so web and worker processes on one machine agree on it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenants.errors import DomainError
from tenants.settings import get_settings

_INFO = b"sms-portal secrets box v1"


class SecretUnreadable(DomainError):
    """A stored secret cannot be decrypted (SECRET_KEY changed, or the value was altered)."""

    code = "secret_unreadable"


def data_dir() -> Path:
    """The folder for files the portal keeps (DATA_DIR, default ./data), created if missing."""
    path = get_settings().web.data_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_secret() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data folder.

    Web and worker processes must agree on it, so both read it here.
    """
    material = get_settings().web.secret_key
    if material:
        return material
    key_file = data_dir() / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


_key_material: Callable[[], str] = server_secret
_fernets: dict[str, Fernet] = {}


def configure(key_material: Callable[[], str]) -> None:
    """Install where the key material comes from (the portal calls this at start-up)."""
    global _key_material
    _key_material = key_material


def key_material() -> str:
    """The installed key material (SECRET_KEY), for keys derived for other uses."""
    return _key_material()


def _fernet() -> Fernet:
    material = _key_material()
    fernet = _fernets.get(material)
    if fernet is None:
        # HKDF turns a secret of any length into the 32 bytes Fernet needs, and `info`
        # keeps this key apart from any other use of SECRET_KEY (CSRF, sessions).
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            material.encode()
        )
        fernet = Fernet(base64.urlsafe_b64encode(derived))
        _fernets[material] = fernet
    return fernet


def encrypt(text: str) -> str:
    """Authenticated encryption of `text`; the result is ASCII, safe for a text column."""
    return _fernet().encrypt(text.encode()).decode("ascii")


def decrypt(token: str, *, max_age_seconds: int | None = None) -> str:
    """The text `encrypt` produced; `max_age_seconds` also refuses tokens older than that."""
    try:
        return _fernet().decrypt(token.encode("ascii"), ttl=max_age_seconds).decode()
    except (InvalidToken, UnicodeError, ValueError):
        raise SecretUnreadable("the stored secret cannot be read") from None
