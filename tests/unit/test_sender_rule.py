"""The one sender rule (DESIGN.md), the same wherever a sender is entered: the send form and
API, the numbers page (sender ID requests) and an integration's default sender."""

from __future__ import annotations

import pytest

from tenants.audit.record import SYSTEM
from tenants.errors import ValidationFailed
from tenants.messaging.accept import validate_sender
from tenants.numbers import numbers
from tenants.phones import sender_problem
from tenants.providers import integrations as providers
from tenants.providers.tables import ProviderIntegration

VALID = [
    "MITTO-SMS",
    "Northwind",
    "A",
    "AB.CD_EF&G1",
    "ABCDEFGHIJK",
    "+61412345678",
    "123456789012345",
]
INVALID = {
    "NW Sydney": "no spaces",
    "ABCDEFGHIJKL": "at most 11 characters",
    "Mitto!": "only letters, digits",
    "12-34": "at least one letter",
    "+1234567890123456": "at most 15 digits",
}


@pytest.mark.parametrize("value", VALID)
def test_valid_senders_pass_every_entry_point(value):
    assert sender_problem(value) is None
    assert validate_sender(value) is None
    assert numbers.classify_sender_id(value)[1] == value


@pytest.mark.parametrize(("value", "words"), INVALID.items())
def test_invalid_senders_are_refused_with_the_same_words_everywhere(value, words):
    problem = sender_problem(value)
    assert problem is not None and words in problem
    assert validate_sender(value) == problem
    with pytest.raises(ValidationFailed) as caught:
        numbers.classify_sender_id(value)
    assert caught.value.errors == {"value": problem}


async def test_an_integration_default_sender_follows_the_rule(world):
    values = {"account_sid": "AC" + "a" * 32, "auth_token": "f" * 32}
    with pytest.raises(ValidationFailed) as caught:
        await providers.create_integration(
            SYSTEM,
            account_id=world.accounts["platform"],
            kind="twilio",
            name="Twilio",
            values={**values, "default_sender": "NW Sydney"},
        )
    assert "no spaces" in caught.value.errors["default_sender"]
    assert await ProviderIntegration.count() == 0
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="twilio",
        name="Twilio",
        values={**values, "default_sender": "MITTO-SMS"},
    )
    assert created.integration.id
