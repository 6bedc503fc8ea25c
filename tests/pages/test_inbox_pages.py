"""/inbox: conversations by phone with unread counts, opening marks read, inline replies go
through the send pipeline (consent, credits); each account sees only its own inbox."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.db import DB
from tenants.messaging import inbound
from tenants.messaging.tables import Batch, Conversation, Message
from tenants.templates import templates
from tests.conftest import drain_credits, login
from tests.factories import HX, fund

PHONE = "+61412345678"


async def melbourne_conversation(demo) -> int:
    await inbound.route_inbound("in-1", PHONE, "+61480000001", "Are you open today?")
    await inbound.route_inbound("in-2", PHONE, "+61480000001", "Hello?")
    (conversation,) = await inbound.conversations(demo["melbourne"])
    return conversation.id


async def test_inbox_lists_conversations_with_unread_counts(client, demo):
    await melbourne_conversation(demo)
    await login(client, "admin@melbourne.test")
    page = await client.get("/inbox")
    assert page.status_code == 200
    assert PHONE in page.text and "2 unread" in page.text and "Hello?" in page.text
    fragment = await client.get("/inbox", headers=HX)
    assert "2 unread" in fragment.text and "<html" not in fragment.text


async def test_opening_marks_read_and_shows_both_directions(client, demo):
    conversation_id = await melbourne_conversation(demo)
    await login(client, "admin@melbourne.test")
    r = await client.get(f"/inbox/{conversation_id}", headers=HX)
    assert r.status_code == 200 and r.headers["hx-trigger"] == "inbox-read"
    assert "Are you open today?" in r.text and "Hello?" in r.text
    assert (await inbound.get_conversation(demo["melbourne"], conversation_id)).unread == 0
    page = await client.get("/inbox")
    assert "unread" not in page.text.split('id="conversations"')[1].split("</ul>")[0]


async def test_reply_inline_is_charged_and_sent_from_the_number(client, demo):
    await ledger.adjust(demo["melbourne"], 100, reason="test credits", actor=SYSTEM)
    conversation_id = await melbourne_conversation(demo)
    token = await login(client, "admin@melbourne.test")
    before = await ledger.balance(demo["melbourne"])
    r = await client.post(
        f"/inbox/{conversation_id}/reply",
        data={"_csrf_token": token, "body": "Yes, until 5pm."},
        headers=HX,
    )
    assert r.status_code == 201, r.text
    assert "Reply accepted" in r.text and "Yes, until 5pm." in r.text
    (sent,) = await Message.select(
        Message.account_id, Message.from_number, Message.to_number, Message.cost
    ).where(Message.direction == "out")
    assert (sent["account_id"], sent["from_number"], sent["to_number"]) == (
        demo["melbourne"],
        "+61480000001",
        PHONE,
    )
    assert await ledger.balance(demo["melbourne"]) == before - sent["cost"]


async def test_reply_to_an_opted_out_phone_is_not_sent(client, demo):
    await ledger.adjust(demo["melbourne"], 100, reason="test credits", actor=SYSTEM)
    conversation_id = await melbourne_conversation(demo)
    await consent_events.record_opt_out(demo["melbourne"], PHONE, "sms", source="manual")
    token = await login(client, "admin@melbourne.test")
    r = await client.post(
        f"/inbox/{conversation_id}/reply", data={"_csrf_token": token, "body": "Hi"}, headers=HX
    )
    assert r.status_code == 409 and "the recipient opted out" in r.text
    assert await Message.count().where(Message.direction == "out") == 0


async def test_reply_without_credits_says_so(client, demo):
    conversation_id = await melbourne_conversation(demo)
    await drain_credits(demo["melbourne"])
    token = await login(client, "admin@melbourne.test")
    r = await client.post(
        f"/inbox/{conversation_id}/reply", data={"_csrf_token": token, "body": "Hi"}, headers=HX
    )
    assert r.status_code == 409 and "credits" in r.text.lower()
    r = await client.post(
        f"/inbox/{conversation_id}/reply", data={"_csrf_token": token, "body": " "}, headers=HX
    )
    assert r.status_code == 422 and 'id="reply-body-error"' in r.text


async def test_another_account_gets_404_and_an_empty_inbox(client, demo):
    conversation_id = await melbourne_conversation(demo)
    token = await login(client, "owner@northwind.test")
    page = await client.get("/inbox")
    assert PHONE not in page.text  # a sub-account's inbound is not readable from above
    assert (await client.get(f"/inbox/{conversation_id}", headers=HX)).status_code == 404
    r = await client.post(
        f"/inbox/{conversation_id}/reply", data={"_csrf_token": token, "body": "Hi"}, headers=HX
    )
    assert r.status_code == 404


async def test_support_can_read_but_not_reply(client, demo):
    await inbound.route_inbound("s-1", PHONE, "+61480000000", "JOIN")  # JOIN belongs to Sydney
    token = await login(client, "support@sydney.test")
    page = await client.get("/inbox")
    assert page.status_code == 200 and PHONE in page.text
    (conversation,) = await inbound.conversations(demo["sydney"])
    r = await client.get(f"/inbox/{conversation.id}")
    assert "Replying needs the permission to send free text" in r.text
    assert 'name="template_id"' in r.text and 'name="body"' not in r.text
    outgoing = await Message.count().where(Message.direction == "out")
    r = await client.post(
        f"/inbox/{conversation.id}/reply", data={"_csrf_token": token, "body": "Hi"}, headers=HX
    )
    assert r.status_code == 403
    assert await Message.count().where(Message.direction == "out") == outgoing


async def sydney_template(demo, body: str) -> int:
    template = await templates.ensure_approved_template(
        actor=SYSTEM, account_id=demo["sydney"], name="Open hours", body=body, shared_down=False
    )
    return template.id


async def test_support_replies_with_an_approved_template_filled_from_the_contact(client, demo):
    await fund(demo["sydney"])
    await contacts.create_contact(
        actor=SYSTEM, account_id=demo["sydney"], phone=PHONE, first_name="Ada", last_name="Lee"
    )
    template_id = await sydney_template(demo, "Hi {{first_name|there}}, we open at 9am.")
    await inbound.route_inbound("s-1", PHONE, "+61480000000", "JOIN")  # Sydney's keyword
    (conversation,) = await inbound.conversations(demo["sydney"])
    token = await login(client, "support@sydney.test")
    page = await client.get(f"/inbox/{conversation.id}")
    assert "Open hours" in page.text and f'value="{template_id}"' in page.text
    r = await client.post(
        f"/inbox/{conversation.id}/reply",
        data={"_csrf_token": token, "template_id": str(template_id)},
        headers=HX,
    )
    assert r.status_code == 201, r.text
    assert "Reply accepted" in r.text and "Hi Ada, we open at 9am." in r.text
    (sent,) = await Message.select(Message.batch_id, Message.to_number).where(
        (Message.direction == "out") & (Message.body == "Hi Ada, we open at 9am.")
    )
    assert sent["to_number"] == PHONE
    batch = await Batch.select(Batch.template_id).where(Batch.id == sent["batch_id"]).first()
    assert batch == {"template_id": template_id}
    (row,) = await Conversation.select(Conversation.last_body, Conversation.last_direction)
    assert row == {"last_body": "Hi Ada, we open at 9am.", "last_direction": "out"}
    # Without JavaScript the form posts and lands back on the thread.
    r = await client.post(
        f"/inbox/{conversation.id}/reply",
        data={"_csrf_token": token, "template_id": str(template_id)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/inbox/{conversation.id}"


async def test_a_template_reply_with_a_bad_choice_names_the_field(client, demo):
    await fund(demo["sydney"])
    template_id = await sydney_template(demo, "We open at 9am.")
    await inbound.route_inbound("s-1", PHONE, "+61480000000", "JOIN")  # Sydney's keyword
    (conversation,) = await inbound.conversations(demo["sydney"])
    token = await login(client, "support@sydney.test")
    outgoing = await Message.count().where(Message.direction == "out")
    for choice in ("abc", "999999", ""):
        r = await client.post(
            f"/inbox/{conversation.id}/reply",
            data={"_csrf_token": token, "template_id": choice},
            headers=HX,
        )
        assert r.status_code == 422, (choice, r.text)
        assert 'id="reply-template-error"' in r.text
    r = await client.post(
        f"/inbox/{conversation.id}/reply",
        data={"_csrf_token": token, "template_id": str(template_id), "body": "Hi"},
        headers=HX,
    )
    assert r.status_code == 422 and "not both" in r.text
    assert await Message.count().where(Message.direction == "out") == outgoing


async def test_the_inbox_names_the_contact_beside_the_number(client, demo):
    await contacts.create_contact(
        actor=SYSTEM, account_id=demo["melbourne"], phone=PHONE, first_name="Ada", last_name="Lee"
    )
    conversation_id = await melbourne_conversation(demo)
    other = "+61412000999"
    await inbound.route_inbound("in-3", other, "+61480000001", "Unknown here")
    await login(client, "admin@melbourne.test")
    page = await client.get("/inbox", headers=HX)
    mine = page.text.split(f'id="conversation-{conversation_id}"')[1].split("</li>")[0]
    assert "Ada Lee" in mine and PHONE in mine
    assert other in page.text and page.text.count("Ada Lee") == 1
    thread = await client.get(f"/inbox/{conversation_id}", headers=HX)
    assert "Ada Lee" in thread.text


async def test_a_reply_on_its_way_polls_the_thread_until_final(client, demo):
    await ledger.adjust(demo["melbourne"], 100, reason="test credits", actor=SYSTEM)
    conversation_id = await melbourne_conversation(demo)
    token = await login(client, "admin@melbourne.test")
    polling = 'hx-trigger="every 2s"'
    assert polling not in (await client.get(f"/inbox/{conversation_id}", headers=HX)).text
    await client.post(
        f"/inbox/{conversation_id}/reply",
        data={"_csrf_token": token, "body": "On its way"},
        headers=HX,
    )
    thread = await client.get(f"/inbox/{conversation_id}", headers=HX)
    assert polling in thread.text and 'hx-select="#thread-messages"' in thread.text
    assert "status-enqueued" in thread.text
    await Message.update({Message.status: "delivered"}).where(Message.direction == "out")
    done = await client.get(f"/inbox/{conversation_id}")
    assert polling not in done.text and "status-delivered" in done.text


async def test_contact_names_cost_one_query_for_the_whole_list(demo, monkeypatch):
    phones = [f"+614120010{i:02d}" for i in range(12)]
    for i, phone in enumerate(phones):
        await inbound.route_inbound(f"many-{i}", phone, "+61480000001", "Hi")
        if i % 2 == 0:
            await contacts.create_contact(
                actor=SYSTEM, account_id=demo["melbourne"], phone=phone, first_name=f"P{i}"
            )
    queries: list[str] = []
    original = DB.run_querystring

    async def counting(querystring, *args, **kwargs):
        queries.append(str(querystring))
        return await original(querystring, *args, **kwargs)

    monkeypatch.setattr(DB, "run_querystring", counting)
    listed = await inbound.conversations(demo["melbourne"])
    assert len(queries) == 2, queries  # the conversations, then their contacts' names
    names = {c.phone: c.name for c in listed}
    assert names == {p: (f"P{i}" if i % 2 == 0 else "") for i, p in enumerate(phones)}
