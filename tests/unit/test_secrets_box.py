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
        secrets_box.configure(secrets_box.server_secret)
    assert secrets_box.decrypt(token) == "x"


def test_age_limit(monkeypatch):
    import time as real_time

    token = secrets_box.encrypt("flow")
    assert secrets_box.decrypt(token, max_age_seconds=60) == "flow"
    later = real_time.time() + 120
    monkeypatch.setattr("cryptography.fernet.time.time", lambda: later)
    with pytest.raises(secrets_box.SecretUnreadable):
        secrets_box.decrypt(token, max_age_seconds=60)


def test_without_secret_key_the_data_folder_key_is_made_once_and_reused(settings_env, tmp_path):
    # `portal serve` and `portal worker` processes started without SECRET_KEY must still
    # read each other's secrets, so both take the key kept in the data folder.
    secrets_box.configure(secrets_box.server_secret)  # as a worker process has it
    settings_env(SECRET_KEY=None, DATA_DIR=tmp_path / "data")
    first = secrets_box.server_secret()
    assert (tmp_path / "data" / "secret_key").read_text().strip() == first
    token = secrets_box.encrypt("provider-password")
    assert secrets_box.server_secret() == first
    assert secrets_box.decrypt(token) == "provider-password"
    settings_env(SECRET_KEY="test-secret-key-not-for-production")
    with pytest.raises(secrets_box.SecretUnreadable):
        secrets_box.decrypt(token)
