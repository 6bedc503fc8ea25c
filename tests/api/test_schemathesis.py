"""Property-based run over the OpenAPI document of /api/v1 (schemathesis, fixed seed, few
examples): no request the document allows may get a 5xx, an undocumented status, or a body
that does not match the documented schema."""

from __future__ import annotations

import asyncio

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from portal.app import create_app
from tenants.access import apikeys
from tenants.accounts.tree import create_root_account, create_sub_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger as credits
from tests.api.conftest import basic


@pytest.fixture
def owner_auth() -> dict[str, str]:
    """A master with a sub-account and credits, and an Owner key (every API permission)."""

    async def seed() -> dict[str, str]:
        root = await create_root_account(name="Fuzz Master", slug="fuzz")
        await create_sub_account(
            actor=SYSTEM,
            within_account_id=root.id,
            parent_id=root.id,
            name="Fuzz One",
            slug="fuzz-one",
        )
        await credits.adjust(root.id, 1000, reason="fuzzing", actor=SYSTEM)
        key = await apikeys.create_api_key(
            actor=SYSTEM, account_id=root.id, name="fuzz", role="Owner"
        )
        return basic(key.key_id, key.secret)

    return asyncio.run(seed())


schema = schemathesis.openapi.from_asgi("/api/schema/openapi.json", create_app()).include(
    path_regex="^/api/v1/"
)


@schema.parametrize()
@hypothesis.settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case, owner_auth):  # type: ignore[no-untyped-def]
    case.call_and_validate(
        headers=owner_auth,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
