"""Merge fields in previews: the inbox lists a keyword auto-reply as its person got it
(their contact's fields, else the defaults), never the raw `{{first_name|there}}`; what a
person wrote in is shown exactly as written; the keywords page previews each auto-reply."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.contacts import contacts
from tenants.messaging import inbound
from tests.conftest import login
from tests.factories import HX, fund

SHARED = "+61480000000"  # Northwind's shared number; JOIN on it belongs to Sydney


async def test_the_inbox_shows_an_auto_reply_with_the_defaults_filled_in(client, demo):
    await fund(demo["sydney"])
    await inbound.route_inbound("m-1", "+61412345678", SHARED, "JOIN")
    await login(client, "support@sydney.test")
    page = await client.get("/inbox")
    assert "Thanks there, you are on the Sydney Branch list." in page.text
    assert "{{first_name" not in page.text
    fragment = await client.get("/inbox", headers=HX)  # the list's polling swap
    assert "Thanks there," in fragment.text and "{{" not in fragment.text


async def test_the_inbox_fills_the_contacts_own_fields(client, demo):
    await fund(demo["sydney"])
    await contacts.create_contact(
        actor=SYSTEM, account_id=demo["sydney"], phone="+61412345679", first_name="Ann"
    )
    await inbound.route_inbound("m-2", "+61412345679", SHARED, "JOIN")
    await login(client, "support@sydney.test")
    page = await client.get("/inbox")
    assert "Thanks Ann, you are on the Sydney Branch list." in page.text


async def test_what_a_person_wrote_is_shown_as_written(client, demo):
    await inbound.route_inbound("m-3", "+61412345670", "+61480000001", "Is {{first_name}} ok?")
    await login(client, "admin@melbourne.test")
    page = await client.get("/inbox")
    assert "Is {{first_name}} ok?" in page.text


async def test_the_keywords_page_previews_the_auto_reply(client, demo):
    await login(client, "owner@northwind.test")
    page = await client.get("/keywords")
    assert "Preview for a number with no contact: <q>Thanks there, you are on" in page.text
