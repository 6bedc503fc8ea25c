"""The bulk outbox path of accept_send (ids drawn first, rows by COPY / executemany) and the
array-join look-ups it relies on, on whichever database the run uses."""

from __future__ import annotations

import pytest

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.consent.filter import filter_recipients
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.db import (
    array_argument,
    copy_rows,
    is_sqlite,
    next_ids,
    run_sql,
    transaction,
)
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.tables import Message
from tenants.phones import normalize_phone
from tenants.reports.tables import UsageRollup


async def _send(account: int, numbers: list[str]) -> sending.SendResult:
    return await sending.accept_send(
        SendRequest(account_id=account, numbers=numbers, body="Hi", permissions=PLATFORM_SEND),
        actor=SYSTEM,
    )


async def test_each_accepted_number_gets_the_id_of_its_own_row(world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    first = await _send(account, [f"+614000000{n:02d}" for n in range(30)])
    # A row written the ordinary way in between: the bulk path must not reuse its id.
    await Message.insert(Message(account_id=account, to_number="+61400000999"))
    second = await _send(account, [f"+614000001{n:02d}" for n in range(30)])
    rows = await run_sql("SELECT id, to_number, batch_id, status, cost FROM message")
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == 61
    for result in (first, second):
        for accepted in result.accepted:
            row = by_id[accepted.message_id]
            assert (row["to_number"], row["batch_id"]) == (accepted.to, result.batch_id)
            assert (row["status"], row["cost"]) == ("enqueued", 1)
    await Message.insert(Message(account_id=account, to_number="+61400000998"))
    assert await Message.count() == 62
    rollup = await UsageRollup.select().where(UsageRollup.account_id == account)
    assert [(r["status"], r["messages"], r["credits"]) for r in rollup] == [("enqueued", 60, 60)]


async def test_bulk_rows_roll_back_with_their_transaction(world):
    account = world.accounts["alpha"]
    with pytest.raises(RuntimeError, match="after the copy"):
        async with transaction():
            ids = await next_ids("message", 3)
            await copy_rows(
                "message",
                ("id", "account_id", "to_number"),
                [(i, account, f"+6140000000{i % 10}") for i in ids],
            )
            assert await Message.count() == 3  # seen inside the transaction
            raise RuntimeError("after the copy")
    assert await Message.count() == 0
    with pytest.raises(RuntimeError, match="open transaction"):
        await copy_rows("message", ("account_id",), [(account,)])


async def test_array_join_filter_matches_a_number_by_number_reference(world):
    """The set-based filter (one array join per look-up) answers what checking each number
    on its own would, including duplicates, invalid input and numbers of many regions."""
    account = world.accounts["alpha"]
    raw = [
        "+61400000001", "0400 000 002", "+61400000001", "+14155550123", "+447911123456",
        "+33612345678", "+8613800138000", "+5511912345678", "+61400000003", "12", "+999123",
        "+919876543210", "+4915123456789", "0400000004",
    ]  # fmt: skip
    await consent_events.record_opt_out(account, "+61400000002", "sms", source="manual")
    await consent_events.record_opt_out(account, "+447911123456", "sms", source="manual")
    await consent_events.record_opt_out(account, "+61400000004", "whatsapp", source="manual")
    allowed, skipped = await filter_recipients(account, raw, "sms")
    expected_allowed: list[str] = []
    expected_skipped: list[tuple[str, str]] = []
    for phone in raw:
        e164 = normalize_phone(phone, "AU")
        if e164 is None:
            expected_skipped.append((phone, "invalid_number"))
        elif e164 in expected_allowed:
            continue
        elif (await filter_recipients(account, [e164], "sms"))[0] == [e164]:
            expected_allowed.append(e164)
        else:
            expected_skipped.append((phone, "opted_out"))
    assert allowed == expected_allowed
    assert sorted(skipped) == sorted(expected_skipped)
    assert "+61400000004" in allowed  # a WhatsApp opt-out does not stop SMS
    assert {"+61400000002", "+447911123456"}.isdisjoint(allowed)


async def test_merge_values_come_from_the_array_join(world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    for n, name in enumerate(("Ann", "Bob", "Cy")):
        await contacts.create_contact(
            actor=SYSTEM, account_id=account, phone=f"+6140000001{n}", first_name=name
        )
    result = await sending.accept_send(
        SendRequest(
            account_id=account,
            numbers=["+61400000010", "+61400000011", "+61400000012", "+61400000013"],
            body="Hi {{first_name|there}}",
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    rows = await run_sql("SELECT to_number, body, contact_id FROM message ORDER BY to_number")
    assert [r["body"] for r in rows] == ["Hi Ann", "Hi Bob", "Hi Cy", "Hi there"]
    assert [r["contact_id"] is None for r in rows] == [False, False, False, True]
    assert len(result.accepted) == 4


async def test_merge_values_are_the_accounts_own_however_many_contacts_it_holds(world):
    """The contact look-up starts from the send's numbers (from_array): each number finds
    the sending account's contact, never another account's with the same phone, and the
    account's other contacts change nothing."""
    alpha, beta = world.accounts["alpha"], world.accounts["beta"]
    await ledger.adjust(alpha, 1000, reason="test credits", actor=SYSTEM)
    for n in range(40):
        await contacts.create_contact(
            actor=SYSTEM, account_id=alpha, phone=f"+614000002{n:02d}", first_name=f"A{n}"
        )
    await contacts.create_contact(
        actor=SYSTEM, account_id=beta, phone="+61400000201", first_name="Beta's"
    )
    await contacts.create_contact(
        actor=SYSTEM, account_id=beta, phone="+61400000299", first_name="Beta only"
    )
    await sending.accept_send(
        SendRequest(
            account_id=alpha,
            numbers=["+61400000201", "+61400000239", "+61400000299"],
            body="Hi {{first_name|there}}",
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    rows = await run_sql("SELECT to_number, body FROM message ORDER BY to_number")
    assert [(r["to_number"], r["body"]) for r in rows] == [
        ("+61400000201", "Hi A1"),
        ("+61400000239", "Hi A39"),
        ("+61400000299", "Hi there"),
    ]


async def test_contact_look_up_uses_the_unique_account_phone_index(world, monkeypatch):
    """By phone and account_id, SQLite without ANALYZE statistics would take the account_id
    index and scan the whole array once per contact of the account (minutes for 20k
    contacts by 40k numbers): the look-up goes by the unique account|phone key instead."""
    statements: list[str] = []

    async def recording(template: str, *args: object) -> list[dict[str, object]]:
        statements.append(template)
        return await run_sql(template, *args)

    monkeypatch.setattr(sending, "run_sql", recording)
    await sending._contact_values(world.accounts["alpha"], ["+61400000201"])
    (statement,) = statements
    if not is_sqlite():
        assert "contact.account_phone" in statement
        return
    plan = await run_sql(
        "EXPLAIN QUERY PLAN " + statement, array_argument([f"{world.accounts['alpha']}|+614"])
    )
    steps = [row["detail"] for row in plan]
    assert steps[0].startswith("SCAN wanted"), steps
    assert "USING INDEX sqlite_autoindex_contact" in steps[1], steps
