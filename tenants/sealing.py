"""Secrets kept at rest (webhook signing secrets, provider credentials): sealed with Fernet
under a key derived from SECRET_KEY, so a copy of the database alone reveals none of them."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def data_dir() -> Path:
    path = Path(os.environ.get("DATA_DIR") or "data").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_secret() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data folder.

    Web and worker processes must agree on it, so both read it here.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = data_dir() / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sms-portal sealed secrets"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plain: str) -> str:
    return _fernet(server_secret()).encrypt(plain.encode()).decode()


class SealBroken(Exception):
    """The sealed value was written under another SECRET_KEY or was altered."""


def unseal(token: str) -> str:
    try:
        return _fernet(server_secret()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SealBroken("sealed secret cannot be opened with this SECRET_KEY") from None
