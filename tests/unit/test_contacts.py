"""Contact services: recipients by list and tag for the send pipeline, export safety,
deleting a contact keeps its consent history."""

from __future__ import annotations

import pytest

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.errors import NotFound


async def _make(world, phone, tags=(), first="", slug="alpha"):
    return await contacts.create_contact(
        actor=SYSTEM, account_id=world.accounts[slug], phone=phone, tags=tags, first_name=first
    )


async def test_recipients_by_list_and_tag_each_once(world):
    alpha = world.accounts["alpha"]
    a = await _make(world, "+61412000001", tags=["vip"])
    b = await _make(world, "+61412000002", tags=["vip", "west"])
    c = await _make(world, "+61412000003")
    group = await contacts.create_list(actor=SYSTEM, account_id=alpha, name="Members")
    assert (
        await contacts.add_to_list(
            actor=SYSTEM, account_id=alpha, list_id=group.id, contact_ids=[b.id, c.id]
        )
        == 2
    )
    got = await contacts.recipient_phones(alpha, list_ids=[group.id], tags=["VIP"])
    assert got == [(a.id, a.phone), (b.id, b.phone), (c.id, c.phone)]
    other = await contacts.create_list(
        actor=SYSTEM, account_id=world.accounts["beta"], name="Theirs"
    )
    with pytest.raises(NotFound):
        await contacts.recipient_phones(alpha, list_ids=[other.id])


async def test_export_escapes_formulas_and_shows_consent(world):
    await _make(world, "+61412000001", first="=HYPERLINK(1)")
    await consent_events.record_opt_out(
        world.accounts["alpha"], "+61412000001", "sms", source="manual"
    )
    text = "".join([chunk async for chunk in contacts.export_csv(world.accounts["alpha"])])
    assert "'=HYPERLINK(1)" in text and "opted_out" in text


async def test_deleting_a_contact_keeps_the_opt_out(world):
    contact = await _make(world, "+61412000001")
    await consent_events.record_opt_out(
        world.accounts["alpha"], contact.phone, "sms", source="keyword"
    )
    await contacts.delete_contact(
        actor=SYSTEM, account_id=world.accounts["alpha"], contact_id=contact.id
    )
    again = await _make(world, "+61412000001")
    trace = await consent_events.explain(world.accounts["alpha"], again.phone, "sms")
    assert trace.status == "opted_out"
