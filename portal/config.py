"""One settings object, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tasks.broker import broker_url
from tenants import secrets_box
from tenants.db import database_url


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    secret_key: str
    base_url: str
    simulator_secret: str
    data_dir: Path
    # The built-in simulator's mount at /simulator (on by default so the demo works).
    simulator_enabled: bool = True

    @property
    def cookie_secure(self) -> bool:
        return self.base_url.startswith("https://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = secrets_box.data_dir()
    return Settings(
        database_url=database_url(),
        broker_url=broker_url(),
        secret_key=secrets_box.server_secret(),
        base_url=(os.environ.get("PORTAL_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        simulator_secret=os.environ.get("SIMULATOR_SECRET") or "simulator-secret",
        data_dir=data_dir,
        simulator_enabled=(os.environ.get("SIMULATOR_ENABLED") or "1").strip().lower()
        not in ("0", "false", "no", "off"),
    )
