"""No control character gets in through a form, on either database (PostgreSQL cannot even
store a NUL): 422 naming the field, nothing written. Inbound texts carry the provider's
bytes, so there the control characters are dropped and the message is kept."""

from __future__ import annotations

import pytest

from tenants.contacts.tables import Contact
from tenants.messaging import inbound
from tenants.messaging.tables import Message
from tests.conftest import login
from tests.factories import HX


@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "no-javascript"])
@pytest.mark.parametrize("bad", ["Ann\x00", "A\x07nn", "\x1b[31mAnn"])
async def test_a_control_character_in_a_form_is_422_naming_the_field(client, world, headers, bad):
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/contacts",
        data={"_csrf_token": token, "phone": "0412 345 678", "first_name": bad},
        headers=headers,
    )
    assert r.status_code == 422
    assert "first_name" in r.text and "control characters" in r.text
    assert await Contact.count() == 0


async def test_line_breaks_and_tabs_are_text(client, world):
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/contacts",
        data={"_csrf_token": token, "phone": "0412 345 678", "first_name": "Ann\tMarie"},
        headers=HX,
    )
    assert r.status_code == 201


async def test_an_inbound_text_keeps_its_words_and_loses_its_control_characters(demo):
    result = await inbound.route_inbound(
        "nul-1", "+61412345678", "+61480000000", "Hi\x00 there\x07"
    )
    assert result.message_id is not None
    row = await Message.select(Message.body).where(Message.id == result.message_id).first()
    assert row is not None and row["body"] == "Hi there"


async def test_a_csv_row_with_a_nul_is_reported_by_its_line_and_the_good_rows_import(client, world):
    token = await login(client, world.users["Sender"])
    body = "Mobile,First name\n0412 000 001,Ann\n0412 000 002,B\x00b\n0412 000 003,Cy\n"
    r = await client.post(
        "/contacts/import",
        data={"_csrf_token": token},
        files={"file": ("people.csv", body.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    mapping = {"col_0": "phone", "col_1": "first_name"}
    r = await client.post(
        location, data={"_csrf_token": token, "step": "check", **mapping}, headers=HX
    )
    assert r.status_code == 200
    assert "<td>3</td><td>invalid value</td>" in r.text  # the line of the NUL, by number
    r = await client.post(
        location,
        data={"_csrf_token": token, "step": "import", "mode": "good_rows", **mapping},
        headers=HX,
    )
    assert r.status_code == 200
    assert await Contact.count() == 2
