"""Contacts pages: create and search, the consent component with manual opt-out/opt-in,
CSV import (mapping, line-numbered errors, good rows or nothing, opt-out column) and
export only with contacts.export."""

from __future__ import annotations

import re

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tests.conftest import login
from tests.factories import HX


async def _contact(world, phone="+61412345678", slug="alpha", first="Ann"):
    return await contacts.create_contact(
        actor=SYSTEM, account_id=world.accounts[slug], phone=phone, first_name=first
    )


async def test_create_contact_inline_with_validation(client, world):
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/contacts",
        data={"_csrf_token": token, "phone": "12345", "first_name": "Ann"},
        headers=HX,
    )
    assert r.status_code == 422
    assert "not a valid phone number" in r.text and "<html" not in r.text
    r = await client.post(
        "/contacts",
        data={"_csrf_token": token, "phone": "0412 345 678", "first_name": "Ann", "tags": "VIP, x"},
        headers=HX,
    )
    assert r.status_code == 201 and "+61412345678" in r.text
    page = await client.get("/contacts?q=ann")
    assert "Ann" in page.text and "+61412345678" in page.text and ">vip<" in page.text
    frag = await client.get("/contacts?q=zzz", headers=HX)
    assert "0 contacts" in frag.text and "<html" not in frag.text


async def test_contacts_of_another_account_are_404(client, world):
    other = await _contact(world, slug="beta")
    await login(client, world.users["Owner"])
    assert (await client.get(f"/contacts/{other.id}")).status_code == 404


async def test_consent_component_manual_opt_out_and_opt_in_with_note(client, world):
    contact = await _contact(world)
    token = await login(client, world.users["Admin"])
    page = await client.get(f"/contacts/{contact.id}")
    assert 'data-status="unknown"' in page.text and "Alpha Master" in page.text
    r = await client.post(
        f"/contacts/{contact.id}/consent",
        data={"_csrf_token": token, "action": "opt_out", "channel_group": "sms"},
        headers=HX,
    )
    assert r.status_code == 200 and 'data-status="opted_out"' in r.text
    assert "manual" in r.text and "admin@alpha.test" in r.text
    r = await client.post(
        f"/contacts/{contact.id}/consent",
        data={"_csrf_token": token, "action": "opt_in", "channel_group": "sms", "note": ""},
        headers=HX,
    )
    assert r.status_code == 422 and "required for an opt-in" in r.text
    assert (await consent_events.explain(world.accounts["alpha"], contact.phone, "sms")).status == (
        "opted_out"
    )
    r = await client.post(
        f"/contacts/{contact.id}/consent",
        data={
            "_csrf_token": token,
            "action": "opt_in",
            "channel_group": "sms",
            "note": "Signed form at the desk",
        },
        headers=HX,
    )
    assert r.status_code == 200 and 'data-status="opted_in"' in r.text
    assert "Signed form at the desk" in r.text


async def test_consent_manage_is_required(client, world):
    contact = await _contact(world)
    token = await login(client, world.users["Sender"])
    page = await client.get(f"/contacts/{contact.id}")
    assert page.status_code == 200 and 'id="consent-form"' not in page.text
    r = await client.post(
        f"/contacts/{contact.id}/consent",
        data={"_csrf_token": token, "action": "opt_out", "channel_group": "sms"},
    )
    assert r.status_code == 403


async def test_export_only_with_contacts_export(client, world):
    await _contact(world)
    await login(client, world.users["Sender"])
    page = await client.get("/contacts")
    assert 'id="export-link"' in page.text
    r = await client.get("/contacts/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("id,phone,first_name") and "+61412345678" in lines[1]
    await client.post("/logout", data={})
    client.cookies.clear()
    await login(client, world.users["Viewer"])
    page = await client.get("/contacts")
    assert page.status_code == 200 and 'id="export-link"' not in page.text
    assert (await client.get("/contacts/export.csv")).status_code == 403


CSV = (
    "Mobile,First Name,Surname,SMS opt-out,Store\n"
    "0412 000 001,Ann,Lee,no,Bondi\n"
    ",Bob,Ray,,\n"
    "0412 000 003,Cy,Moe,yes,Manly\n"
    "not-a-number,Di,Fox,,\n"
    "+61412000001,Ann,Again,,\n"
    "0412 000 006,Ed,Kim,,\n"
)


async def _upload(client, token, body=CSV):
    r = await client.post(
        "/contacts/import",
        data={"_csrf_token": token},
        files={"file": ("people.csv", body.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


async def test_import_preview_errors_and_good_rows(client, world):
    token = await login(client, world.users["Sender"])
    location = await _upload(client, token)
    page = await client.get(location)
    assert page.status_code == 200
    # Guessed mapping: Mobile -> phone, SMS opt-out -> sms_opt_out, Store -> custom field.
    assert re.search(r'name="col_0".*?value="phone" selected', page.text, re.S)
    assert re.search(r'name="col_3".*?value="sms_opt_out" selected', page.text, re.S)
    mapping = {
        "col_0": "phone",
        "col_1": "first_name",
        "col_2": "last_name",
        "col_3": "sms_opt_out",
        "col_4": "field:store",
    }
    r = await client.post(
        location, data={"_csrf_token": token, "step": "check", **mapping}, headers=HX
    )
    assert r.status_code == 200
    assert (
        "<strong>6</strong> rows: <strong>3</strong> good, <strong>3</strong> with errors" in r.text
    )
    for line, problem in ((3, "missing phone"), (5, "invalid number"), (6, "duplicate")):
        assert re.search(rf"<td>{line}</td><td>{problem}</td>", r.text), (line, problem)
    # All or nothing: nothing is written.
    r = await client.post(
        location,
        data={"_csrf_token": token, "step": "import", "mode": "all_or_nothing", **mapping},
        headers=HX,
    )
    assert "Nothing was imported" in r.text
    assert (await contacts.search_contacts(world.accounts["alpha"]))[1] == 0
    r = await client.post(
        location,
        data={"_csrf_token": token, "step": "import", "mode": "good_rows", **mapping},
        headers=HX,
    )
    assert "3 new, 0 updated, 1 opt-outs recorded; 3 bad rows skipped" in r.text
    found, total = await contacts.search_contacts(world.accounts["alpha"])
    assert total == 3
    bondi = next(c for c in found if c.phone == "+61412000001")
    assert bondi.fields == {"store": "Bondi"} and bondi.last_name == "Lee"
    trace = await consent_events.explain(world.accounts["alpha"], "+61412000003", "sms")
    assert trace.status == "opted_out" and trace.deciding_event.source == "import"


async def test_reimport_never_clears_an_opt_out(client, world):
    await consent_events.record_opt_out(
        world.accounts["alpha"], "+61412000001", "sms", source="keyword"
    )
    token = await login(client, world.users["Sender"])
    location = await _upload(client, token, "phone,opt out\n0412000001,no\n0412000002,\n")
    r = await client.post(
        location,
        data={
            "_csrf_token": token,
            "step": "import",
            "mode": "good_rows",
            "col_0": "phone",
            "col_1": "sms_opt_out",
        },
        headers=HX,
    )
    assert "2 new" in r.text
    assert (
        await consent_events.explain(world.accounts["alpha"], "+61412000001", "sms")
    ).status == ("opted_out")


async def test_import_rejects_a_non_csv_file(client, world):
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/contacts/import",
        data={"_csrf_token": token},
        files={"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")},
    )
    assert r.status_code == 422 and "UTF-8" in r.text


async def test_search_matches_numbers_only_for_a_number_and_finds_the_national_form(world):
    account = world.accounts["alpha"]
    await _contact(world, phone="+61413000006", first="Bulk6")
    await _contact(world, phone="+61413000016", first="Zed")
    await _contact(world, phone="+61466666666", first="Sixes")

    async def names(q: str) -> set[str]:
        found, _ = await contacts.search_contacts(account, q=q)
        return {c.first_name for c in found}

    # "Bulk6" is a name: its 6 must not match every number with a 6 in it.
    assert await names("Bulk6") == {"Bulk6"}
    assert await names("0413000006") == {"Bulk6"}
    assert await names("0413 000 006") == {"Bulk6"}
    assert await names("+61413000006") == {"Bulk6"}
    assert await names("61413") == {"Bulk6", "Zed"}


async def test_send_message_from_a_contact_preselects_the_recipient_and_lists_are_checkboxes(
    client, world
):
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/contacts", data={"_csrf_token": token, "phone": "0412 345 679", "first_name": "Bo"}
    )
    assert r.status_code == 200 and "/contacts/" in str(r.url)  # redirected to the record
    record = r
    link = re.search(r'id="send-to-contact" href="([^"]+)"', record.text)
    assert link is not None and "Send message" in record.text
    send = await client.get(link.group(1).replace("&amp;", "&"))
    assert send.status_code == 200
    assert re.search(r'<textarea id="numbers"[^>]*>\+61412345679</textarea>', send.text)
    await client.post("/contacts/lists", data={"_csrf_token": token, "name": "Only list"})
    send = await client.get("/send")
    # One list: a checkbox with its name (a one-option multi-select read "0 selected").
    assert re.search(r'type="checkbox" name="list_ids" value="\d+"\s*> Only list', send.text)
    assert not re.search(r'<select[^>]*name="list_ids"', send.text)


async def test_send_page_prefill_takes_only_a_phone_like_value(client, world):
    await login(client, world.users["Sender"])
    odd = await client.get("/send?to=%3Cscript%3Ex")
    assert odd.status_code == 200
    assert re.search(r'<textarea id="numbers"[^>]*></textarea>', odd.text)
