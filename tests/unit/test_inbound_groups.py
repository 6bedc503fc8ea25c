"""Group commit of inbound messages (tenants.messaging.inbound with tenants.group_commit):
concurrent inbound messages are routed in one transaction, each as it would be alone, and
one message's failure is not the others'."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tenants.consent import events as consent_events
from tenants.consent import keywords as consent_keywords
from tenants.consent.tables import ConsentEvent
from tenants.contacts import contacts
from tenants.db import transaction
from tenants.group_commit import PerLoop
from tenants.messaging import inbound
from tenants.messaging.tables import Batch, InboundReply, InboundRoute, Message
from tenants.webhooks import deliveries as customer_webhooks
from tenants.webhooks.tables import WebhookDelivery
from tests.conftest import drain_credits
from tests.unit.test_inbound import MELB, SHARED, fund, outbox_to, send_from

A = "+61412345671"
B = "+61412345672"
C = "+61412345673"


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> PerLoop[inbound.InboundGroups]:
    """A grouper that waits long enough for every caller of a gather to join its group."""
    grouper: PerLoop[inbound.InboundGroups] = PerLoop(
        lambda: inbound.InboundGroups(window_seconds=0.3)
    )
    monkeypatch.setattr(inbound, "_groups", grouper)
    return grouper


async def together(*messages: tuple[str, str, str, str]) -> list[Any]:
    return await asyncio.gather(
        *(inbound.route_inbound(*message) for message in messages), return_exceptions=True
    )


async def test_concurrent_copies_of_one_inbound_are_one_message_and_one_opt_out(
    demo, groups, settings_env
):
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1")
    await fund(demo, "melbourne")
    await customer_webhooks.add_subscription(
        SYSTEM, account_id=demo["melbourne"], url="https://rx.example.test/in", events=("inbound",)
    )
    results = await together(*[("dup-1", A, MELB, "STOP")] * 4, ("other", B, MELB, "hello"))
    assert groups.get().groups_written == 1
    first, *copies, other = results
    assert not first.duplicate and all(c.duplicate for c in copies)
    assert {c.message_id for c in copies} == {first.message_id}
    assert all(c.reply_message_ids == first.reply_message_ids for c in copies)
    assert all(c.reply_chunks == () for c in copies) and first.reply_chunks
    assert (other.route, other.duplicate) == ("number_owner", False)
    assert await Message.count().where(Message.direction == "in") == 2
    assert await ConsentEvent.count() == 1
    assert len(await outbox_to(A)) == 1  # one confirmation
    # One inbound webhook delivery per message, none for a copy.
    assert await WebhookDelivery.count() == 2
    # A later copy, in a group of its own, is the same message again.
    again = await inbound.route_inbound("dup-1", A, MELB, "STOP")
    assert again.duplicate and again.reply_message_ids == first.reply_message_ids
    assert len(await outbox_to(A)) == 1


async def test_a_stop_and_a_keyword_in_one_group_route_as_they_would_alone(demo, groups):
    await fund(demo, "melbourne", "melbourne-events", "sydney")
    await send_from(demo["melbourne-events"], MELB, to=A)
    stop_a, stop_b, join_c, hello = await together(
        ("s-a", A, MELB, "Stop"),
        ("s-b", B, MELB, "STOP"),
        ("j-c", C, SHARED, "join"),
        ("h-a", A, MELB, "see you"),
    )
    assert groups.get().groups_written == 1
    # STOP after Melbourne Events wrote: its scope; the other STOP: the number's holder.
    assert (stop_a.route, stop_a.account_id) == ("opt_out", demo["melbourne-events"])
    assert (stop_b.route, stop_b.account_id) == ("opt_out", demo["melbourne"])
    assert (join_c.route, join_c.account_id, join_c.keyword) == ("keyword", demo["sydney"], "JOIN")
    assert (hello.route, hello.account_id) == ("last_messaged", demo["melbourne-events"])
    for phone in (A, B):
        explained = await consent_events.explain(demo["melbourne"], phone, "sms")
        assert explained.status == "opted_out", phone
    assert (await consent_events.explain(demo["sydney"], C, "sms")).status == "opted_in"
    assert await contacts.find_contact_by_phone(demo["sydney"], C) is not None
    # Each consent event points at its own inbound message, in the same transaction.
    events = await ConsentEvent.select(ConsentEvent.phone, ConsentEvent.message_id)
    assert {(e["phone"], e["message_id"]) for e in events} == {
        (A, stop_a.message_id),
        (B, stop_b.message_id),
        (C, join_c.message_id),
    }
    # Every reply was sent once, to its own phone, tied to its own route.
    confirmation = await consent_keywords.confirmation_reply(demo["melbourne"], "opt_out")
    assert [r["body"] for r in await outbox_to(A)] == ["Hello", confirmation]
    assert [r["body"] for r in await outbox_to(B)] == [confirmation]
    (join_reply,) = await outbox_to(C)
    assert join_reply["from_number"] == SHARED and join_reply["account_id"] == demo["sydney"]
    for result in (stop_a, stop_b, join_c):
        (reply_id,) = result.reply_message_ids
        row = await InboundReply.select().where(InboundReply.message_id == reply_id).first()
        route = await InboundRoute.select().where(InboundRoute.id == row["route_id"]).first()
        assert route["message_id"] == result.message_id and route["replies_done"]
    assert hello.reply_message_ids == ()


async def test_a_keyword_then_a_stop_from_one_phone_in_one_group_keep_their_order(demo, groups):
    """The JOIN's auto-reply is accepted before the STOP from the same phone is routed: it
    goes (the phone had just opted in), then the STOP's confirmation."""
    await fund(demo, "sydney")
    join, stop = await together(("o-1", A, SHARED, "join"), ("o-2", A, SHARED, "stop"))
    assert groups.get().groups_written == 1
    assert join.reply_message_ids and stop.reply_message_ids
    assert stop.account_id == demo["sydney"]  # the account that just answered the phone
    bodies = [r["body"] for r in await outbox_to(A)]
    assert len(bodies) == 2 and bodies[0].startswith("Thanks there, you are on the Sydney")
    assert (await consent_events.explain(demo["sydney"], A, "sms")).status == "opted_out"


async def test_a_reply_refused_for_credits_leaves_nothing_and_the_group_stands(demo, groups):
    await fund(demo, "melbourne")
    await drain_credits(demo["sydney"])
    batches = await Batch.count()
    join_a, join_b, stop = await together(
        ("c-1", A, SHARED, "join"), ("c-2", B, SHARED, "join"), ("c-3", C, MELB, "stop")
    )
    assert groups.get().groups_written == 1
    for join in (join_a, join_b):
        assert join.route == "keyword" and join.message_id and join.reply_message_ids == ()
        assert join.reply_errors and join.reply_errors[0].startswith("reply 1:")
    assert (await consent_events.explain(demo["sydney"], A, "sms")).status == "opted_in"
    assert stop.reply_message_ids and not stop.reply_errors
    # Only the confirmation's batch was written; the refused replies left none behind.
    assert await Batch.count() == batches + 1
    assert await outbox_to(A) == [] and await outbox_to(B) == []


async def test_one_failing_message_fails_alone_and_the_others_are_routed(demo, groups, monkeypatch):
    await fund(demo, "melbourne")
    real_one, real_wave = inbound._store_message, inbound._store_messages

    async def store(flow: inbound._Flow) -> int:
        if flow.report.body == "boom":
            raise RuntimeError("this message cannot be stored")
        return await real_one(flow)

    async def store_wave(flows: list[inbound._Flow]) -> None:
        if any(flow.report.body == "boom" for flow in flows):
            raise RuntimeError("this message cannot be stored")
        await real_wave(flows)

    monkeypatch.setattr(inbound, "_store_message", store)
    monkeypatch.setattr(inbound, "_store_messages", store_wave)
    stop, bad, hello = await together(
        ("f-1", A, MELB, "STOP"), ("f-2", B, MELB, "boom"), ("f-3", C, MELB, "hello")
    )
    # The group's transaction failed whole; each message was then routed on its own.
    assert groups.get().groups_written == 0
    assert isinstance(bad, RuntimeError)
    assert stop.route == "opt_out" and stop.reply_message_ids and not stop.duplicate
    assert hello.route == "number_owner" and not hello.duplicate
    assert await Message.count().where(Message.direction == "in") == 2
    assert await ConsentEvent.count() == 1
    assert len(await outbox_to(A)) == 1
    assert await InboundRoute.count() == 2


async def test_inside_a_transaction_an_inbound_joins_it(demo, groups):
    await fund(demo, "melbourne")
    with pytest.raises(RuntimeError):
        async with transaction():
            result = await inbound.route_inbound("t-1", A, MELB, "STOP")
            assert result.route == "opt_out"
            raise RuntimeError("roll back")
    assert groups.get().groups_written == 0
    assert await Message.count() == 0 and await ConsentEvent.count() == 0


async def test_a_stop_then_a_start_from_one_phone_in_one_group_end_opted_in(demo, groups):
    """The phone's second message goes in the next wave of the group: its START is recorded
    after its STOP, and each is confirmed in turn."""
    await fund(demo, "melbourne")
    stop_a, stop_b, start_a = await together(
        ("w-1", A, MELB, "STOP"), ("w-2", B, MELB, "STOP"), ("w-3", A, MELB, "START")
    )
    assert groups.get().groups_written == 1
    assert (stop_a.consent_action, start_a.consent_action) == ("opt_out", "opt_in")
    assert (await consent_events.explain(demo["melbourne"], A, "sms")).status == "opted_in"
    assert (await consent_events.explain(demo["melbourne"], B, "sms")).status == "opted_out"
    events = await ConsentEvent.select(
        ConsentEvent.phone, ConsentEvent.action, ConsentEvent.message_id
    ).order_by(ConsentEvent.id)
    assert [(e["action"], e["message_id"]) for e in events if e["phone"] == A] == [
        ("opt_out", stop_a.message_id),
        ("opt_in", start_a.message_id),
    ]
    stopped = await consent_keywords.confirmation_reply(demo["melbourne"], "opt_out")
    started = await consent_keywords.confirmation_reply(demo["melbourne"], "opt_in")
    assert [r["body"] for r in await outbox_to(A)] == [stopped, started]
    assert [r["body"] for r in await outbox_to(B)] == [stopped]


async def test_a_copy_of_a_keyword_inside_a_group_joins_and_answers_once(demo, groups):
    await fund(demo, "sydney")
    known = await contacts.create_contact(actor=SYSTEM, account_id=demo["sydney"], phone=B)
    first, other, copy = await together(
        ("k-1", A, SHARED, "join"), ("k-2", B, SHARED, "join"), ("k-1", A, SHARED, "join")
    )
    assert groups.get().groups_written == 1
    assert not first.duplicate and not other.duplicate and copy.duplicate
    assert (copy.message_id, copy.reply_message_ids) == (first.message_id, first.reply_message_ids)
    assert await Message.count().where(Message.direction == "in") == 2
    # B was already a contact: it joined the list as it was; A's contact was made (audited).
    created = await contacts.find_contact_by_phone(demo["sydney"], A)
    assert created is not None
    assert (await contacts.find_contact_by_phone(demo["sydney"], B)) == known
    join_list = (await contacts.contact_lists(demo["sydney"]))[0]
    assert join_list.size == 2
    assert (
        await contacts.lists_of(created.id) == await contacts.lists_of(known.id) == [join_list.id]
    )
    audits = await AuditEvent.select(
        AuditEvent.action, AuditEvent.target_id, AuditEvent.actor_label
    ).order_by(AuditEvent.id)
    mine = {str(known.id), str(created.id)}
    assert [a for a in audits if a["action"] == "contact.create" and a["target_id"] in mine] == [
        {"action": "contact.create", "target_id": str(known.id), "actor_label": "system"},
        {
            "action": "contact.create",
            "target_id": str(created.id),
            "actor_label": "inbound keyword",
        },
    ]
    for phone in (A, B):
        assert (await consent_events.explain(demo["sydney"], phone, "sms")).status == "opted_in"
        (reply,) = await outbox_to(phone)
        assert reply["body"].startswith("Thanks")
    assert await ConsentEvent.count() == 2
    routes = await InboundRoute.select(InboundRoute.dedupe_key, InboundRoute.replies_done)
    assert sorted(r["dedupe_key"] for r in routes) == ["simulator:k-1", "simulator:k-2"]
    assert all(r["replies_done"] for r in routes)


async def test_messages_from_one_phone_in_one_group_are_routed_in_turn(demo, groups):
    """A phone's third message sees the confirmation its second one was answered with (it is
    then "last messaged" by that account), and its conversation counts all three."""
    await fund(demo, "melbourne")
    hello, stop, again, other = await together(
        ("t-1", A, MELB, "hello"),
        ("t-2", A, MELB, "stop"),
        ("t-3", A, MELB, "hello again"),
        ("t-4", B, MELB, "hi"),
    )
    assert groups.get().groups_written == 1
    assert [r.route for r in (hello, stop, again, other)] == [
        "number_owner",
        "opt_out",
        "last_messaged",
        "number_owner",
    ]
    assert hello.message_id < stop.message_id < again.message_id
    by_phone = {c.phone: c for c in await inbound.conversations(demo["melbourne"])}
    assert (by_phone[A].unread, by_phone[A].last_body, by_phone[A].last_direction) == (
        3,
        "hello again",
        "in",
    )
    assert (by_phone[B].unread, by_phone[B].last_body) == (1, "hi")
    thread = await inbound.thread(demo["melbourne"], by_phone[A].id)
    assert [m.direction for m in thread] == ["in", "in", "out", "in"]


async def test_a_known_message_with_its_replies_undone_is_answered_in_its_phones_turn(demo, groups):
    """A route stored before the group whose replies were never sent (a crash between
    routing and replying) is answered once, under its own idempotency key."""
    await fund(demo, "melbourne")
    first = await inbound.route_inbound("u-1", A, MELB, "STOP")
    (reply_id,) = first.reply_message_ids
    # As if the process stopped before the reply: no reply, the route not done.
    await InboundReply.delete().where(InboundReply.message_id == reply_id)
    await Message.delete().where(Message.id == reply_id)
    await Batch.delete().where(Batch.id.is_not_null())
    await InboundRoute.update(
        {InboundRoute.replies_done: False, InboundRoute.reply_message_ids: "[]"}
    ).where(InboundRoute.message_id == first.message_id)
    copy, start = await together(("u-1", A, MELB, "STOP"), ("u-2", A, MELB, "START"))
    assert copy.duplicate and copy.message_id == first.message_id
    assert len(copy.reply_message_ids) == 1 and start.reply_message_ids
    assert (await consent_events.explain(demo["melbourne"], A, "sms")).status == "opted_in"
    stopped = await consent_keywords.confirmation_reply(demo["melbourne"], "opt_out")
    started = await consent_keywords.confirmation_reply(demo["melbourne"], "opt_in")
    assert [r["body"] for r in await outbox_to(A)] == [stopped, started]
