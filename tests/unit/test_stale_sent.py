"""Never stuck: a message `sent` with no report after its provider's window is asked about
through the gateway, and ends `failed` with NO_DELIVERY_REPORT when the provider cannot say
(a later real report still wins)."""

from __future__ import annotations

from datetime import UTC, datetime

from tasks.gateways import gateway_for
from tenants.messaging import messages
from tenants.messaging import outbox as dispatch
from tenants.messaging.messages import StatusReport
from tenants.messaging.outbox import TransientProviderError
from tenants.providers.codes import explain_error
from tests.unit.test_delivery import make_outbox, status_of


def test_windows_are_per_provider_kind_and_configurable(settings_env):
    assert dispatch.no_report_window("twilio") == 6 * 3600
    assert dispatch.no_report_window("simulator") < dispatch.no_report_window("messagemedia")
    settings_env(NO_REPORT_WINDOW_TWILIO_SECONDS="30")
    assert dispatch.no_report_window("twilio") == 30
    assert dispatch.no_report_window("sinch_sms") == 24 * 3600
    assert "never said whether it arrived" in explain_error("NO_DELIVERY_REPORT")


async def test_stale_sent_messages_are_looked_up_then_failed_when_unknown(
    world, simulator, settings_env
):
    simulator.configure({"callback_delay_ms": 600_000})  # the reports are lost
    account = world.accounts["alpha"]
    _, (known, forgotten) = await make_outbox(account, ["+61400000001", "+61400000002"], cost=2)
    assert (await dispatch.submit_chunk([known, forgotten], gateway_for)).sent == 2
    # Within the window nothing happens.
    assert (await dispatch.resolve_stale_sent(gateway_for)).looked_up == 0
    assert {await status_of(known), await status_of(forgotten)} == {"sent"}

    settings_env(NO_REPORT_WINDOW_SECONDS="0")
    simulator.records.pop(str(forgotten))  # the provider has no trace of this one
    outcome = await dispatch.resolve_stale_sent(gateway_for)
    assert (outcome.looked_up, outcome.reported, outcome.failed) == (2, 1, 1)
    assert await status_of(known) == "delivered"
    view = await messages.get_message(account, forgotten)
    assert view.status == "failed" and view.error_code == "NO_DELIVERY_REPORT"
    assert not view.refunded  # the provider took it: no refund
    assert view.events[-1].source == "platform"
    # Nothing is left to look up; the next pass does nothing.
    assert (await dispatch.resolve_stale_sent(gateway_for)).looked_up == 0

    # A real report that comes later still wins over the platform's conclusion.
    late = StatusReport(forgotten, "delivered", datetime(2020, 1, 1, tzinfo=UTC), None, None, "e1")
    assert (await messages.ingest_status_reports([late])).applied == 1
    assert await status_of(forgotten) == "delivered"


async def test_a_provider_that_cannot_be_asked_now_is_asked_again_later(world, settings_env):
    class Down:
        name = "simulator"
        kind = "simulator"

        async def delivery_reports(self, batch):
            raise TransientProviderError("down")

    async def get(provider):
        return Down()

    account = world.accounts["alpha"]
    _, (message_id,) = await make_outbox(account, ["+61400000003"])
    await messages.ingest_status_reports(
        [StatusReport(message_id, "sent", datetime.now(UTC), None, "r", "s1")]
    )
    settings_env(NO_REPORT_WINDOW_SECONDS="0")
    outcome = await dispatch.resolve_stale_sent(get)
    assert outcome.failed == 0 and await status_of(message_id) == "sent"
