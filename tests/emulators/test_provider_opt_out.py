"""A provider reporting that the recipient unsubscribed (Twilio's 21610: the recipient
replied STOP and Twilio now blocks them) is an opt-out of its own source, `provider`:
recorded once with the status change, enforced on the next send, and shown by the consent
report with contact record ids only."""

from __future__ import annotations

from datetime import timedelta

from tenants.accounts.tree import get_account
from tenants.audit.record import SYSTEM
from tenants.consent import events
from tenants.contacts.contacts import create_contact
from tenants.credits import ledger
from tenants.db import run_sql
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.providers import callbacks
from tenants.reports import consent, usage
from tests.emulators.test_emulators import as_callback, msg, twilio_gateway

PHONE = "+61400000021"


async def _send(account_id: int) -> sending.SendResult:
    return await sending.accept_send(
        SendRequest(account_id=account_id, numbers=[PHONE], body="Hi", permissions=PLATFORM_SEND),
        actor=SYSTEM,
    )


async def test_twilio_21610_is_a_provider_opt_out_in_the_consent_report(world, twilio_emu, catcher):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    contact = await create_contact(actor=SYSTEM, account_id=account, phone=PHONE)
    (accepted,) = (await _send(account)).accepted
    message_id = accepted.message_id
    gateway = twilio_gateway(twilio_emu)
    (submitted,) = await gateway.submit([msg(message_id, PHONE)])
    carrier = (await run_sql("SELECT provider FROM message WHERE id = {}", message_id))[0]
    for _ in range(2):  # Twilio redelivers the same callback: one opt-out still
        await twilio_emu.post_status(
            catcher, submitted.provider_ref or "", "undelivered", error_code=21610
        )
        callback = as_callback(catcher.last)
        gateway.verify(callback)
        await callbacks.ingest_events(carrier["provider"], gateway.parse_status(callback))
    assert twilio_emu.violations == []
    row = (await run_sql("SELECT status, error_code FROM message WHERE id = {}", message_id))[0]
    assert (row["status"], row["error_code"]) == ("failed", "twilio:21610")
    explained = await events.explain(account, PHONE, "sms")
    assert explained.status == "opted_out"
    assert explained.deciding_event is not None
    assert explained.deciding_event.source == "provider"
    # consent is enforced on the next send
    again = await _send(account)
    assert again.accepted == [] and [to for to, _ in again.skipped] == [PHONE]
    master = await get_account(account)
    today = await usage.today_in(account)
    report = await consent.consent_report(
        master, usage.Period(today - timedelta(days=1), today + timedelta(days=1)), "day"
    )
    assert [(r.origin, r.source, r.opt_outs, r.contact_ids) for r in report.rows] == [
        ("received", "provider", 1, [contact.id])
    ]


async def test_other_failure_codes_record_no_opt_out(world, twilio_emu, catcher):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    (accepted,) = (await _send(account)).accepted
    gateway = twilio_gateway(twilio_emu)
    (submitted,) = await gateway.submit([msg(accepted.message_id, PHONE)])
    carrier = await run_sql("SELECT provider FROM message WHERE id = {}", accepted.message_id)
    await twilio_emu.post_status(
        catcher, submitted.provider_ref or "", "undelivered", error_code=30003
    )
    callback = as_callback(catcher.last)
    await callbacks.ingest_events(carrier[0]["provider"], gateway.parse_status(callback))
    assert (await events.explain(account, PHONE, "sms")).status != "opted_out"
