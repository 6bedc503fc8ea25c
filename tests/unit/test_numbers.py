"""Numbers and sender IDs: the operator adds, masters assign and take back, accounts send
only from what they hold."""

from __future__ import annotations

import pytest

from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.messaging.accept import PLATFORM_SEND
from tenants.numbers import numbers


def values(senders: list[numbers.SenderView]) -> list[str]:
    return [s.value for s in senders]


async def test_demo_numbers_are_held_as_the_contract_says(demo):
    shared = await numbers.find_number("+61480000000")
    melb = await numbers.find_number("61480000001")  # providers may drop the +
    assert shared and shared.owner_id == demo["northwind"] and shared.holder_id == demo["northwind"]
    assert melb and melb.owner_id == demo["northwind"] and melb.holder_id == demo["melbourne"]


async def test_usable_senders_follow_the_tree(demo):
    # The master's unassigned number is shared by its whole tree; Melbourne's number by
    # Melbourne and the accounts below it only.
    assert values(await numbers.usable_senders(demo["northwind"])) == ["+61480000000"]
    assert values(await numbers.usable_senders(demo["sydney"])) == ["+61480000000"]
    assert values(await numbers.usable_senders(demo["melbourne-events"])) == [
        "+61480000000",
        "+61480000001",
    ]
    with pytest.raises(ValidationFailed) as exc:
        await numbers.resolve_sender(demo["sydney"], "+61480000001")
    assert exc.value.errors["sender"].startswith("'+61480000001' is not a sender")


async def test_assign_and_take_back(demo):
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    moved = await numbers.assign_number(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        number_id=melb.id,
        to_account_id=demo["sydney"],
    )
    assert moved.holder_id == demo["sydney"]
    assert "+61480000001" in values(await numbers.usable_senders(demo["sydney"]))
    assert "+61480000001" not in values(await numbers.usable_senders(demo["melbourne-events"]))
    back = await numbers.reclaim_number(
        actor=SYSTEM, within_account_id=demo["northwind"], number_id=melb.id
    )
    assert back.assigned_id is None and back.holder_id == demo["northwind"]
    actions = [r["action"] for r in await AuditEvent.select(AuditEvent.action)]
    assert "number.assign" in actions and "number.reclaim" in actions


async def test_only_the_owning_master_assigns(demo):
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    with pytest.raises(PermissionDenied):
        await numbers.assign_number(
            actor=SYSTEM,
            within_account_id=demo["melbourne"],
            number_id=melb.id,
            to_account_id=demo["melbourne-events"],
        )
    # Sydney cannot even see Melbourne's number.
    with pytest.raises(NotFound):
        await numbers.get_visible_number(demo["sydney"], melb.id)


async def test_assign_outside_the_owner_tree_is_not_found(world, demo):
    shared = await numbers.find_number("+61480000000")
    assert shared is not None
    with pytest.raises(NotFound):
        await numbers.assign_number(
            actor=SYSTEM,
            within_account_id=demo["northwind"],
            number_id=shared.id,
            to_account_id=world.accounts["alpha-one"],
        )


@pytest.mark.parametrize(
    ("raw", "kind", "field", "message"),
    [
        ("", "long_code", "number", "required"),
        ("0480000000", "long_code", "number", "international form"),
        ("+6148", "long_code", "number", "not a valid phone number"),
        ("12", "short_code", "number", "3 to 8 digits"),
        ("+61480000002", "toll_free", "kind", "long code or a short code"),
        ("+61480000000", "long_code", "number", "already on the platform"),
    ],
)
async def test_add_number_rejects_bad_input(demo, raw, kind, field, message):
    before = len(await numbers.numbers_for(demo["platform"]))
    with pytest.raises(ValidationFailed) as exc:
        await numbers.add_number(
            actor=SYSTEM, owner_account_id=demo["northwind"], number=raw, kind=kind
        )
    assert message in exc.value.errors[field]
    assert len(await numbers.numbers_for(demo["platform"])) == before


async def test_numbers_go_to_masters_only(demo):
    with pytest.raises(ValidationFailed) as exc:
        await numbers.add_number(
            actor=SYSTEM, owner_account_id=demo["sydney"], number="+61480000009", kind="long_code"
        )
    assert "master" in exc.value.errors["owner_id"]
    short = await numbers.add_number(
        actor=SYSTEM, owner_account_id=demo["northwind"], number="76 543", kind="short_code"
    )
    assert short.number == "76543" and short.kind_label == "Short code"


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("Northwind", "alphanumeric", "Northwind"),
        ("  SydneyBr ", "alphanumeric", "SydneyBr"),
        ("MITTO-SMS", "alphanumeric", "MITTO-SMS"),
        ("Hi-there", "alphanumeric", "Hi-there"),
        ("A.B_C&D-1", "alphanumeric", "A.B_C&D-1"),
        ("X", "alphanumeric", "X"),
        ("ABCDEFGHIJK", "alphanumeric", "ABCDEFGHIJK"),
        ("+123456789012345", "numeric", "+123456789012345"),
        ("123456789012345", "numeric", "123456789012345"),
    ],
)
def test_sender_id_rules_accept(raw, kind, value):
    assert numbers.classify_sender_id(raw) == (kind, value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ABCDEFGHIJKL", "at most 11 characters"),
        ("Café", "only letters, digits and - . _ &"),
        ("Hi!there", "only letters, digits and - . _ &"),
        ("NW Sydney", "no spaces"),
        ("12-34", "at least one letter"),
        ("1234567890123456", "at most 15 digits"),
        ("   ", "required"),
    ],
)
def test_sender_id_rules_refuse(raw, message):
    with pytest.raises(ValidationFailed) as exc:
        numbers.classify_sender_id(raw)
    assert message in exc.value.errors["value"]


async def test_sender_id_needs_the_operator_approval(demo):
    sender = await numbers.register_sender_id(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        account_id=demo["sydney"],
        value="SydneyBr",
    )
    assert sender.status == "pending"
    assert "SydneyBr" not in values(await numbers.usable_senders(demo["sydney"]))
    with pytest.raises(Conflict):
        await numbers.register_sender_id(
            actor=SYSTEM,
            within_account_id=demo["sydney"],
            account_id=demo["sydney"],
            value="sydneybr",
        )
    with pytest.raises(ValidationFailed) as exc:
        await numbers.decide_sender_id(actor=SYSTEM, sender_id_id=sender.id, status="rejected")
    assert "why" in exc.value.errors["note"]
    await numbers.decide_sender_id(actor=SYSTEM, sender_id_id=sender.id, status="approved")
    usable = await numbers.usable_senders(demo["sydney"])
    assert "SydneyBr" in values(usable)
    assert (await numbers.resolve_sender(demo["sydney"], "SydneyBr")).kind == "alphanumeric"
    # Sender IDs are the account's own: its parent does not send under them.
    assert "SydneyBr" not in values(await numbers.usable_senders(demo["northwind"]))


async def test_sender_id_for_another_tree_is_not_found(world, demo):
    with pytest.raises(NotFound):
        await numbers.register_sender_id(
            actor=SYSTEM,
            within_account_id=demo["sydney"],
            account_id=demo["melbourne"],
            value="Melb",
        )


async def test_sending_refuses_a_sender_the_account_may_not_use(demo):
    from tenants.messaging import accept as sending

    request = sending.SendRequest(
        account_id=demo["sydney"],
        numbers=["+61412345678"],
        body="Hi",
        sender="+61480000001",
        permissions=PLATFORM_SEND,
    )
    with pytest.raises(ValidationFailed) as exc:
        await sending.accept_send(request, actor=SYSTEM)
    assert "not a sender this account may use" in exc.value.errors["sender"]
