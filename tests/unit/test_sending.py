"""Accepting a send: recipients from lists and tags, merge fields per contact, exact
segments and country prices, one reservation, idempotency, nothing written on refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.errors import Conflict, InsufficientCredits, PermissionDenied, ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND, SendRequest, destination_country
from tenants.messaging.tables import Batch, Message


async def fund(account_id: int, amount: int = 1000) -> None:
    await ledger.adjust(account_id, amount, reason="test credits", actor=SYSTEM)


def test_destination_country_reads_shared_calling_codes():
    assert destination_country("+61412345678") == "AU"
    assert destination_country("+14155550123") == "US"
    assert destination_country("+16135550123") == "CA"  # +1 shared: decided by area code
    assert destination_country("+447400123456") == "GB"
    assert destination_country("+447911123456") == "GG"  # +44 7911: Guernsey
    assert destination_country("+33612345678") == "FR"


async def test_lists_tags_and_merge_fields_per_contact(world):
    account = world.accounts["alpha"]
    await fund(account)
    ann = await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400000001", first_name="Ann", tags=["vip"]
    )
    await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400000002", tags=["vip"]
    )
    bob = await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400000003", first_name="Bob"
    )
    lst = await contacts.create_list(actor=SYSTEM, account_id=account, name="Club")
    await contacts.add_to_list(
        actor=SYSTEM, account_id=account, list_id=lst.id, contact_ids=[bob.id, ann.id]
    )
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["0400 000 001"],  # the same person as Ann: sent once
            list_ids=[lst.id],
            tags=["vip"],
            body="Hi {{first_name|there}}, your code is {{code}}",
            variables={"code": "42"},
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    bodies = {
        r["to_number"]: r["body"] for r in await Message.select(Message.to_number, Message.body)
    }
    assert bodies == {
        "+61400000001": "Hi Ann, your code is 42",
        "+61400000002": "Hi there, your code is 42",
        "+61400000003": "Hi Bob, your code is 42",
    }
    assert len(result.accepted) == 3 and result.total_cost == 3


async def test_segments_are_counted_per_rendered_message(world):
    account = world.accounts["alpha"]
    await fund(account)
    await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400000001", first_name="A"
    )
    await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400000002", first_name="Zoë" * 30
    )
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["+61400000001", "+61400000002"],
            body="Hello {{first_name}}, " + "x" * 50,
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    by_number = {a.to: (a.segments, a.encoding) for a in result.accepted}
    assert by_number["+61400000001"] == (1, "GSM-7")
    assert by_number["+61400000002"] == (3, "UCS-2")  # 'ë' forces UCS-2: 148 units, 67 a segment
    assert result.total_cost == 4
    assert await ledger.balance(account) == 996


async def test_dry_run_prices_and_writes_nothing(world):
    account = world.accounts["alpha"]
    await fund(account)
    await consent_events.record_opt_out(account, "+61400000002", "sms", source="manual")
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["+61400000001", "+61400000002", "12"],
            body="Hi",
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
        dry_run=True,
    )
    assert result.dry_run and result.total_cost == 1
    assert result.skipped_by_reason() == {"invalid_number": 1, "opted_out": 1}
    assert await Message.count() == 0 and await Batch.count() == 0
    assert await ledger.balance(account) == 1000


async def test_refusals_write_nothing(world):
    account = world.accounts["alpha"]
    req = SendRequest(
        account_id=account, numbers=["+61400000001"], body="Hi", permissions=PLATFORM_SEND
    )
    with pytest.raises(InsufficientCredits):
        await sending.accept_send(req, actor=SYSTEM)
    with pytest.raises(PermissionDenied):
        await sending.accept_send(
            SendRequest(account_id=account, numbers=["+61400000001"], body="Hi"), actor=SYSTEM
        )
    with pytest.raises(ValidationFailed) as exc:
        await sending.accept_send(
            SendRequest(account_id=account, numbers=["+61400000001"], template_id=999_999),
            actor=SYSTEM,
        )
    assert "template_id" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        await sending.accept_send(
            SendRequest(
                account_id=account, list_ids=[999_999], body="Hi", permissions=PLATFORM_SEND
            ),
            actor=SYSTEM,
        )
    assert "list_ids" in exc.value.errors
    assert await Message.count() == 0 and await Batch.count() == 0


async def test_idempotency_key_replays_and_conflicts(world):
    account = world.accounts["alpha"]
    await fund(account)
    req = SendRequest(
        account_id=account,
        numbers=["+61400000001"],
        body="Hi",
        permissions=PLATFORM_SEND,
        idempotency_key="k1",
    )
    first = await sending.accept_send(req, actor=SYSTEM)
    again = await sending.accept_send(req, actor=SYSTEM)
    assert again.replayed and again.batch_id == first.batch_id
    assert [a.message_id for a in again.accepted] == [a.message_id for a in first.accepted]
    with pytest.raises(Conflict):
        await sending.accept_send(
            SendRequest(
                account_id=account,
                numbers=["+61400000002"],
                body="Hi",
                permissions=PLATFORM_SEND,
                idempotency_key="k1",
            ),
            actor=SYSTEM,
        )
    assert await ledger.balance(account) == 999


async def test_scheduled_sends_reserve_now_and_wait(world):
    account = world.accounts["alpha"]
    await fund(account)
    later = datetime.now(UTC) + timedelta(hours=2)
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["+61400000001"],
            body="Later",
            send_at=later,
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    assert result.scheduled_for == later and result.chunks == []
    assert await ledger.balance(account) == 999
    batch = await Batch.select(Batch.state).first()
    assert batch["state"] == "scheduled"


@pytest.mark.parametrize(
    ("asked", "held", "needed"),
    [
        ({"body": "Hi"}, frozenset({"campaigns.manage"}), "messages.send"),
        (
            {"body": "Hi", "campaign_name": "Spring"},
            frozenset({"messages.send"}),
            "campaigns.manage",
        ),
    ],
)
async def test_the_send_decides_permissions_for_every_transport(world, asked, held, needed):
    """Page, API and inbox hand over what the caller holds; the send itself refuses."""
    account = world.accounts["alpha"]
    await fund(account)
    with pytest.raises(PermissionDenied, match=needed):
        await sending.accept_send(
            SendRequest(account_id=account, numbers=["+61400000001"], permissions=held, **asked),
            actor=SYSTEM,
        )
    assert await Batch.count() == 0 and await Message.count() == 0
    assert await ledger.balance(account) == 1000
