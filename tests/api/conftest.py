"""API fixtures: keys made through the service, used with HTTP Basic."""

from __future__ import annotations

import base64

import pytest

from tenants.access import apikeys
from tenants.audit.record import SYSTEM


def basic(key_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def make_key(world):
    async def make(slug: str = "alpha", role: str = "Owner") -> dict[str, str]:
        key = await apikeys.create_api_key(
            actor=SYSTEM, account_id=world.accounts[slug], name=f"{slug}-{role}", role=role
        )
        return basic(key.key_id, key.secret)

    return make
