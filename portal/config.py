"""One settings object, read from the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tasks.broker import broker_url
from tenants.db import database_url


def _data_dir() -> Path:
    path = Path(os.environ.get("DATA_DIR") or "data").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret_key(data_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    secret_key: str
    base_url: str
    simulator_secret: str
    data_dir: Path

    @property
    def cookie_secure(self) -> bool:
        return self.base_url.startswith("https://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = _data_dir()
    return Settings(
        database_url=database_url(),
        broker_url=broker_url(),
        secret_key=_secret_key(data_dir),
        base_url=(os.environ.get("PORTAL_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        simulator_secret=os.environ.get("SIMULATOR_SECRET") or "simulator-secret",
        data_dir=data_dir,
    )
