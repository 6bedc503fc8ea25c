"""The secrets box: round trip, nothing readable in the stored text, tampering and another
SECRET_KEY are refused, and an age limit can be asked for."""

from __future__ import annotations

import pytest

from tenants import secrets_box


def test_round_trip_and_ciphertext_hides_the_text():
    token = secrets_box.encrypt("client-secret-123")
    assert "client-secret-123" not in token
    assert secrets_box.decrypt(token) == "client-secret-123"
    assert secrets_box.encrypt("client-secret-123") != token  # random IV each time


def test_tampered_or_foreign_tokens_are_refused():
    token = secrets_box.encrypt("x")
    with pytest.raises(secrets_box.SecretUnreadable):
        secrets_box.decrypt(token[:-4] + "AAAA")
    try:
        secrets_box.configure(lambda: "another-secret-key")
        with pytest.raises(secrets_box.SecretUnreadable):
            secrets_box.decrypt(token)
    finally:
        secrets_box.configure(secrets_box._from_environment)
    assert secrets_box.decrypt(token) == "x"


def test_age_limit(monkeypatch):
    import time as real_time

    token = secrets_box.encrypt("flow")
    assert secrets_box.decrypt(token, max_age_seconds=60) == "flow"
    later = real_time.time() + 120
    monkeypatch.setattr("cryptography.fernet.time.time", lambda: later)
    with pytest.raises(secrets_box.SecretUnreadable):
        secrets_box.decrypt(token, max_age_seconds=60)
