"""Provider integrations as services: per-field validation, sealed secrets shown once,
who may own integrations, the per-channel provider inherited down the tree, and sending
through the chosen one."""

from __future__ import annotations

import pytest

from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tenants.errors import PermissionDenied, ValidationFailed
from tenants.messaging.accept import PLATFORM_SEND
from tenants.messaging.tables import Message
from tenants.providers import integrations as providers
from tenants.providers.tables import ProviderIntegration

SID = "AC" + "1" * 32
TOKEN = "abcdef0123456789abcdef0123456789"


def twilio_values(**overrides: str) -> dict[str, str]:
    return {"account_sid": SID, "auth_token": TOKEN, "default_sender": "Alpha", **overrides}


async def platform_twilio(world, name: str = "Twilio AU") -> providers.IntegrationView:
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="twilio",
        name=name,
        values=twilio_values(),
    )
    return created.integration


async def test_each_bad_field_is_named_and_nothing_is_saved(world):
    with pytest.raises(ValidationFailed) as caught:
        await providers.create_integration(
            SYSTEM,
            account_id=world.accounts["platform"],
            kind="twilio",
            name="",
            values={"account_sid": "SK123", "auth_token": "", "messaging_service_sid": "nope"},
            rate_limit="fast",
        )
    errors = caught.value.errors
    assert set(errors) == {
        "name",
        "account_sid",
        "auth_token",
        "messaging_service_sid",
        "rate_limit",
    }
    assert "AC followed by 32" in errors["account_sid"] and "required" in errors["auth_token"]
    with pytest.raises(ValidationFailed) as caught:
        await providers.create_integration(
            SYSTEM,
            account_id=world.accounts["platform"],
            kind="sinch_sms",
            name="Sinch",
            values={"service_plan_id": "plan-with-dashes", "api_token": "short", "region": "asia"},
        )
    assert set(caught.value.errors) == {"service_plan_id", "api_token", "region"}
    assert "US, EU" in caught.value.errors["region"]
    assert await ProviderIntegration.count() == 0


async def test_secrets_are_sealed_at_rest_shown_once_and_kept_when_left_blank(world):
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="twilio",
        name="Twilio AU",
        values=twilio_values(),
    )
    assert created.shown_once == {"auth_token": TOKEN}
    row = await ProviderIntegration.select().first()
    assert TOKEN not in row["secrets_sealed"] and TOKEN not in row["settings"]
    assert created.integration.secret_hints == {"auth_token": "••••" + TOKEN[-4:]}
    audit_text = " ".join(str(r) for r in await AuditEvent.select(AuditEvent.after))
    assert TOKEN not in audit_text
    # an edit with the secret left blank keeps it and shows nothing
    updated = await providers.update_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        integration_id=created.integration.id,
        name="Twilio Australia",
        values=twilio_values(auth_token=""),
    )
    assert updated.shown_once == {}
    config = await providers.load_config(created.integration.id)
    assert config.secrets == {"auth_token": TOKEN} and config.name == "Twilio Australia"
    replaced = await providers.update_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        integration_id=created.integration.id,
        name="Twilio Australia",
        values=twilio_values(auth_token="f" * 32),
    )
    assert replaced.shown_once == {"auth_token": "f" * 32}


async def test_masters_own_integrations_only_when_the_operator_allows(world):
    alpha = world.accounts["alpha"]
    with pytest.raises(PermissionDenied, match="not allowed this master"):
        await providers.create_integration(
            SYSTEM, account_id=alpha, kind="twilio", name="Own", values=twilio_values()
        )
    await providers.set_master_permit(SYSTEM, master_id=alpha, allowed=True)
    own = await providers.create_integration(
        SYSTEM, account_id=alpha, kind="twilio", name="Own", values=twilio_values()
    )
    assert own.integration.account_id == alpha
    with pytest.raises(PermissionDenied, match="belong to the platform or to a master"):
        await providers.create_integration(
            SYSTEM,
            account_id=world.accounts["alpha-one"],
            kind="twilio",
            name="Sub",
            values=twilio_values(),
        )
    # alpha's integration is offered down alpha's tree, never to beta's
    assert [
        i.name for i in await providers.available_integrations(world.accounts["alpha-one"])
    ] == ["Own"]
    assert await providers.available_integrations(world.accounts["beta-one"]) == []


async def test_channel_choice_is_inherited_down_the_tree_and_overridden(world):
    twilio = await platform_twilio(world)
    platform, alpha, alpha_one, beta = (
        world.accounts[s] for s in ("platform", "alpha", "alpha-one", "beta")
    )
    assert await providers.provider_for(alpha_one, "sms") == "simulator"
    await providers.set_channel_default(
        SYSTEM, account_id=platform, channel="sms", choice=str(twilio.id)
    )
    assert await providers.provider_for(alpha_one, "sms") == twilio.key
    assert await providers.provider_for(beta, "sms") == twilio.key
    assert await providers.provider_for(beta, "rcs") == "simulator"
    await providers.set_channel_default(SYSTEM, account_id=alpha, channel="sms", choice="simulator")
    assert await providers.provider_for(alpha_one, "sms") == "simulator"
    settings = {s.channel: s for s in await providers.channel_settings(alpha_one)}
    assert settings["sms"].own_choice == "inherit" and settings["sms"].decided_by == "Alpha Master"
    await providers.set_channel_default(
        SYSTEM, account_id=alpha_one, channel="sms", choice=str(twilio.id)
    )
    assert await providers.provider_for(alpha_one, "sms") == twilio.key
    # a disabled integration is passed over: the next choice up the tree applies
    await providers.set_integration_status(
        SYSTEM, account_id=platform, integration_id=twilio.id, status="disabled"
    )
    assert await providers.provider_for(alpha_one, "sms") == "simulator"
    assert await providers.provider_for(beta, "sms") == "simulator"


async def test_a_channel_can_only_use_a_provider_that_offers_it(world):
    twilio = await platform_twilio(world)
    with pytest.raises(ValidationFailed) as caught:
        await providers.set_channel_default(
            SYSTEM, account_id=world.accounts["alpha"], channel="rcs", choice=str(twilio.id)
        )
    assert caught.value.errors == {"rcs": "Twilio AU does not offer RCS."}
    with pytest.raises(ValidationFailed):
        await providers.set_channel_default(
            SYSTEM, account_id=world.accounts["alpha"], channel="sms", choice="999"
        )


async def test_sending_uses_the_accounts_provider_for_the_channel(world):
    from tenants.credits import ledger
    from tenants.messaging.accept import SendRequest, accept_send

    twilio = await platform_twilio(world)
    alpha = world.accounts["alpha"]
    await providers.set_channel_default(
        SYSTEM, account_id=alpha, channel="sms", choice=str(twilio.id)
    )
    await ledger.adjust(alpha, 100, reason="test credits", actor=SYSTEM)
    result = await accept_send(
        SendRequest(
            account_id=alpha, numbers=["+61400000001"], body="Hi", permissions=PLATFORM_SEND
        ),
        actor=SYSTEM,
    )
    (accepted,) = result.accepted
    row = await Message.select(Message.provider).where(Message.id == accepted.message_id).first()
    assert row["provider"] == twilio.key
