"""Inbound routing on the demo tree: compliance first, then the keyword owner, then the
account that last messaged the phone from the number, then the number's holder; once per
provider id."""

from __future__ import annotations

import json

import pytest

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.consent import keywords as consent_keywords
from tenants.consent.filter import filter_recipients
from tenants.consent.tables import ConsentEvent
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.messaging import accept as sending
from tenants.messaging import inbound, messages
from tenants.messaging.accept import PLATFORM_SEND
from tenants.messaging.tables import Message
from tenants.numbers import keywords, numbers
from tenants.webhooks import deliveries as customer_webhooks
from tenants.webhooks.tables import WebhookDelivery
from tests.conftest import drain_credits

PHONE = "+61412345678"
SHARED = "+61480000000"
MELB = "+61480000001"


async def fund(demo: dict[str, int], *slugs: str) -> None:
    for slug in slugs:
        await ledger.adjust(demo[slug], 500, reason="test credits", actor=SYSTEM)


async def send_from(account_id: int, sender: str, to: str = PHONE) -> int:
    result = await sending.accept_send(
        sending.SendRequest(
            account_id=account_id,
            numbers=[to],
            body="Hello",
            sender=sender,
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    assert result.accepted, result.skipped
    message_id = result.accepted[0].message_id
    assert message_id is not None
    return message_id


async def outbox_to(phone: str) -> list[dict]:
    return (
        await Message.select(Message.account_id, Message.body, Message.from_number, Message.status)
        .where((Message.direction == "out") & (Message.to_number == phone))
        .order_by(Message.id)
    )


async def test_join_lands_in_sydney_and_adds_the_sender_to_its_list(demo):
    await fund(demo, "sydney")
    result = await inbound.route_inbound("sim-1", PHONE, SHARED, "join")
    assert (result.account_id, result.route, result.keyword) == (demo["sydney"], "keyword", "JOIN")
    contact = await contacts.find_contact_by_phone(demo["sydney"], PHONE)
    assert contact is not None
    join_list = (await contacts.contact_lists(demo["sydney"]))[0]
    assert join_list.name == "JOIN subscribers" and join_list.size == 1
    assert await contacts.lists_of(contact.id) == [join_list.id]
    explained = await consent_events.explain(demo["sydney"], PHONE, "sms")
    assert explained.status == "opted_in"
    # The auto-reply went through the send pipeline, from the number the phone wrote to.
    replies = await outbox_to(PHONE)
    assert [(r["account_id"], r["from_number"]) for r in replies] == [(demo["sydney"], SHARED)]
    assert replies[0]["body"].startswith("Thanks there, you are on the Sydney Branch list")
    # The message itself is in Sydney's inbox, unread.
    (conversation,) = await inbound.conversations(demo["sydney"])
    assert (conversation.phone, conversation.number, conversation.unread) == (PHONE, SHARED, 1)
    assert await inbound.conversations(demo["northwind"]) == []


@pytest.mark.parametrize("text", ["Stop ", "STOP", "stop", "  sToP. "])
async def test_stop_after_melbourne_events_opts_out_in_melbournes_scope_only(demo, text):
    await fund(demo, "melbourne-events", "sydney")
    await send_from(demo["melbourne-events"], MELB)
    result = await inbound.route_inbound("sim-stop", PHONE, MELB, text)
    assert (result.account_id, result.route) == (demo["melbourne-events"], "opt_out")
    assert result.consent_action == "opt_out"
    for slug in ("melbourne", "melbourne-events"):
        allowed, skipped = await filter_recipients(demo[slug], [PHONE], "sms")
        assert skipped == [(PHONE, "opted_out")], slug
    for slug in ("sydney", "northwind"):
        allowed, _ = await filter_recipients(demo[slug], [PHONE], "sms")
        assert allowed == [PHONE], slug
    explained = await consent_events.explain(demo["melbourne-events"], PHONE, "sms")
    assert explained.scope_account_id == demo["melbourne"]
    # The confirmation is sent even though the phone has just opted out.
    confirmation = await consent_keywords.confirmation_reply(demo["melbourne-events"], "opt_out")
    bodies = [r["body"] for r in await outbox_to(PHONE)]
    assert bodies == ["Hello", confirmation]
    assert await messages.confirmation_ids(list(result.reply_message_ids)) == set(
        result.reply_message_ids
    )


async def test_the_same_inbound_id_twice_is_one_message_and_one_opt_out(demo):
    await fund(demo, "melbourne")
    first = await inbound.route_inbound("sim-dup", PHONE, MELB, "STOP")
    again = await inbound.route_inbound("sim-dup", PHONE, MELB, "STOP")
    assert not first.duplicate and again.duplicate
    assert again.message_id == first.message_id
    assert again.reply_message_ids == first.reply_message_ids and again.reply_chunks == ()
    assert await Message.count().where(Message.direction == "in") == 1
    assert await ConsentEvent.count() == 1
    assert len(await outbox_to(PHONE)) == 1  # one confirmation
    (conversation,) = await inbound.conversations(demo["melbourne"])
    assert conversation.unread == 1


async def test_start_reopts_in_and_help_answers_without_consent_change(demo):
    await fund(demo, "melbourne")
    await inbound.route_inbound("a", PHONE, MELB, "stop")
    start = await inbound.route_inbound("b", PHONE, MELB, "Start")
    assert start.route == "opt_in" and start.consent_action == "opt_in"
    assert (await consent_events.explain(demo["melbourne"], PHONE, "sms")).status == "opted_in"
    help_ = await inbound.route_inbound("c", PHONE, MELB, "help")
    assert help_.route == "help" and help_.consent_action is None
    assert await ConsentEvent.count() == 2
    help_text = await consent_keywords.confirmation_reply(demo["melbourne"], "help")
    assert help_text in [r["body"] for r in await outbox_to(PHONE)]


async def test_on_the_shared_number_a_reply_goes_to_who_last_wrote(demo):
    await fund(demo, "sydney", "melbourne")
    first = await inbound.route_inbound("x1", PHONE, SHARED, "hello?")
    assert (first.account_id, first.route) == (demo["northwind"], "number_owner")
    await send_from(demo["sydney"], SHARED)
    second = await inbound.route_inbound("x2", PHONE, SHARED, "hi back")
    assert (second.account_id, second.route) == (demo["sydney"], "last_messaged")
    await send_from(demo["melbourne"], SHARED)
    third = await inbound.route_inbound("x3", PHONE, SHARED, "and again")
    assert (third.account_id, third.route) == (demo["melbourne"], "last_messaged")
    # The keyword owner wins over the last writer.
    fourth = await inbound.route_inbound("x4", PHONE, SHARED, "JOIN please")
    assert (fourth.account_id, fourth.route) == (demo["sydney"], "keyword")


async def test_stop_on_the_shared_number_after_sydney_wrote_is_northwinds_scope(demo):
    await fund(demo, "sydney")
    await send_from(demo["sydney"], SHARED)
    result = await inbound.route_inbound("s1", PHONE, SHARED, "STOP")
    assert result.account_id == demo["sydney"]
    assert (await consent_events.explain(demo["northwind"], PHONE, "sms")).status == "opted_out"
    assert (await consent_events.explain(demo["melbourne"], PHONE, "sms")).status != "opted_out"


async def test_a_stop_without_credits_still_opts_out(demo):
    await drain_credits(demo["melbourne"])
    result = await inbound.route_inbound("poor", PHONE, MELB, "STOP")
    assert result.consent_action == "opt_out"
    assert result.reply_message_ids == ()
    assert result.reply_errors and "credits" in result.reply_errors[0].lower()
    assert (await consent_events.explain(demo["melbourne"], PHONE, "sms")).status == "opted_out"


async def test_unknown_number_stores_nothing(demo):
    result = await inbound.route_inbound("u1", PHONE, "+61480009999", "hello")
    assert result.route == "unknown_number" and result.message_id is None
    assert await Message.count() == 0


async def test_reassigning_the_number_moves_unclaimed_inbound(demo):
    melb = await numbers.find_number(MELB)
    assert melb is not None
    await numbers.assign_number(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        number_id=melb.id,
        to_account_id=demo["sydney"],
    )
    result = await inbound.route_inbound("r1", PHONE, MELB, "hello")
    assert (result.account_id, result.route) == (demo["sydney"], "number_owner")


async def inbound_deliveries() -> list[dict]:
    rows = await WebhookDelivery.select(
        WebhookDelivery.account_id, WebhookDelivery.event, WebhookDelivery.payload
    ).where(WebhookDelivery.event == "message.inbound")
    return [{**r, "payload": json.loads(r["payload"])} for r in rows]


async def test_every_routed_message_queues_one_inbound_webhook_event(demo):
    melb = await numbers.find_number(MELB)
    assert melb is not None
    await customer_webhooks.add_subscription(
        SYSTEM, account_id=melb.holder_id, url="https://rx.test/in", events=("inbound",)
    )
    first = await inbound.route_inbound("e1", PHONE, MELB, "hello there")
    again = await inbound.route_inbound("e1", PHONE, MELB, "hello there")
    assert again.duplicate and first.account_id == melb.holder_id
    await inbound.route_inbound("e2", PHONE, "+61480009999", "nobody's number")
    (delivery,) = await inbound_deliveries()
    assert delivery["account_id"] == melb.holder_id
    payload = delivery["payload"]
    assert (payload["sender"], payload["recipient"], payload["body"]) == (
        PHONE,
        MELB,
        "hello there",
    )
    assert payload["message_id"] == first.message_id and "keyword" not in payload


async def test_forward_action_queues_a_signed_delivery(demo):
    shared = await numbers.find_number(SHARED)
    assert shared is not None
    kw = await keywords.claim_keyword(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        number_id=shared.id,
        word="INFO2",
        account_id=demo["sydney"],
    )
    await keywords.add_action(
        actor=SYSTEM, within_account_id=demo["sydney"], keyword_id=kw.id, kind="forward_webhook"
    )
    # Without a webhook set, nothing is queued.
    await inbound.route_inbound("w0", PHONE, SHARED, "info2")
    assert await inbound_deliveries() == []
    await customer_webhooks.add_subscription(
        SYSTEM, account_id=demo["sydney"], url="https://rx.test/in", events=("inbound",)
    )
    await inbound.route_inbound("w1", PHONE, SHARED, "info2 hello")
    (delivery,) = await inbound_deliveries()
    assert delivery["account_id"] == demo["sydney"]
    assert delivery["payload"]["keyword"] == "INFO2"
    assert delivery["payload"]["body"] == "info2 hello"
    (row,) = await WebhookDelivery.select(WebhookDelivery.status)
    assert row["status"] == "pending"


async def test_a_send_without_a_sender_goes_from_the_accounts_number_and_replies_come_back(
    demo,
):
    """Sydney names no sender: the send records the number it went out from (the shared
    one it inherits), so the reply lands in Sydney's inbox, not Northwind's."""
    await fund(demo, "sydney")
    await send_from(demo["sydney"], "")
    (sent,) = await outbox_to(PHONE)
    assert sent["from_number"] == SHARED
    result = await inbound.route_inbound("reply-1", PHONE, SHARED, "Yes please")
    assert result.account_id == demo["sydney"] and result.route == "last_messaged"


async def test_with_no_number_or_sender_id_the_from_stays_the_providers(world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 10, reason="test credits", actor=SYSTEM)
    await send_from(account, "")
    (sent,) = await outbox_to(PHONE)
    assert sent["from_number"] == ""
