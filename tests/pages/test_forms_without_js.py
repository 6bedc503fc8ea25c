"""Forms posted without htmx (JavaScript off) that used to answer a bare error page or
accept a send of nobody: they re-render the page with the field's error and change nothing."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.messaging.tables import Batch, Message
from tests.conftest import login
from tests.factories import HX


async def test_a_bad_list_name_re_renders_the_contacts_page_with_the_error(client, world):
    token = await login(client, world.users["Sender"])
    r = await client.post("/contacts/lists", data={"_csrf_token": token, "name": "  "})
    assert r.status_code == 422
    assert '<p class="field-error" id="list-name-error">A list name is 1-80 characters.</p>' in (
        r.text
    )
    assert 'id="create-contact-form"' in r.text and 'id="nav-menu"' in r.text
    await client.post("/contacts/lists", data={"_csrf_token": token, "name": "Regulars"})
    again = await client.post("/contacts/lists", data={"_csrf_token": token, "name": "regulars"})
    assert again.status_code == 422 and "already exists" in again.text
    assert 'value="regulars"' in again.text  # what was typed stays in the box
    names = [item.name for item in await contacts.contact_lists(world.accounts["alpha"])]
    assert names == ["Regulars"]
    ok = await client.post("/contacts/lists", data={"_csrf_token": token, "name": "Walk-ins"})
    assert ok.status_code == 200 and str(ok.url).endswith("/contacts")  # 303, then the page
    assert "Walk-ins" in ok.text


def _send(csrf: str, numbers: str, **extra: str) -> dict[str, str]:
    return {
        "_csrf_token": csrf,
        "numbers": numbers,
        "mode": "text",
        "body": "Hello",
        "channel": "sms",
        "when": "now",
        "action": "send",
        **extra,
    }


async def test_a_send_to_no_valid_number_is_a_field_error_and_sends_nothing(client, world):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    for headers in ({}, HX):
        r = await client.post("/send", data=_send(csrf, "not-a-number, 12"), headers=headers)
        assert r.status_code == 422, r.text
        assert (
            '<p class="field-error" id="numbers-error">Not a phone number: not-a-number, 12.'
            in (r.text)
        )
        assert ">not-a-number, 12</textarea>" in r.text
    assert await Batch.count() == 0 and await Message.count() == 0
    # A bad number beside a good one is still skipped and listed after the send.
    mixed = await client.post("/send", data=_send(csrf, "not-a-number\n+61400000001"))
    assert mixed.status_code == 201 and "1 accepted, 1 skipped" in mixed.text
    # A list or a tag may still bring recipients: nothing is refused at the field then.
    tagged = await client.post("/send", data=_send(csrf, "nope", tags="vip", action="preview"))
    assert 'id="numbers-error"' not in tagged.text
