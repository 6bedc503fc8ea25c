"""/reports/consent: the page (works with JavaScript off, no inline style or script) and the
CSV, totals equal to the opt-outs recorded, contact ids only, bad input 422 naming the field."""

from __future__ import annotations

import csv
import io
import re

from tenants.audit.record import SYSTEM
from tenants.consent import events
from tenants.contacts.contacts import create_contact
from tests.conftest import login

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")


async def seed(world) -> int:  # type: ignore[no-untyped-def]
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    contact = await create_contact(
        actor=SYSTEM, account_id=alpha, phone="+61400000031", first_name="Zed"
    )
    await events.record_opt_out(alpha, "+61400000031", "sms", source="keyword")
    await events.record_opt_out(alpha, "+61400000032", "sms", source="api")
    await events.record_opt_out(one, "+61400000033", "sms", source="keyword", note="Sub note")
    await events.record_opt_out(world.accounts["beta"], "+61400000034", "sms", source="api")
    return contact.id


async def test_the_page_and_csv_explain_the_numbers(client, world):
    contact_id = await seed(world)
    await login(client, world.users["Owner"])
    page = await client.get("/reports/consent", params={"period": "month", "bucket": "day"})
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="consent-received">2<' in html and 'id="consent-inherited">1<' in html
    assert f'href="/contacts/{contact_id}"' in html
    assert 'style="' not in html and not INLINE_SCRIPT.search(html)
    assert "6140000003" not in html and "Zed" not in html and "Sub note" not in html
    # the form is a plain GET form: it works without JavaScript
    assert 'method="get" action="/reports/consent"' in html
    download = await client.get("/reports/consent.csv", params={"period": "month"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sum(int(r["opt_outs"]) for r in rows) == 3
    by = {(r["origin"], r["source"]): r for r in rows}
    assert by[("received", "keyword")]["contact_ids"] == str(contact_id)
    assert by[("inherited", "keyword")]["opt_outs"] == "1"
    assert "61400" not in download.text


async def test_a_sub_account_user_sees_its_own_and_what_it_inherits(client, world):
    await seed(world)
    await login(client, "sender@alpha-one.test")
    page = await client.get("/reports/consent")
    assert page.status_code == 200
    assert 'id="consent-received">1<' in page.text and 'id="consent-inherited">2<' in page.text
    # a Sender has no contacts.view: counts only, no contact record ids
    assert not re.search(r'href="/contacts/\d', page.text)


async def test_bad_input_is_422_naming_the_field(client, world):
    await login(client, world.users["Owner"])
    for params, field in (
        ({"period": "custom", "from": "nope", "to": "2026-03-01"}, "from"),
        ({"period": "custom", "from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"period": "year"}, "period"),
        ({"bucket": "year"}, "bucket"),
    ):
        page = await client.get("/reports/consent", params=params)
        assert page.status_code == 422, params
        assert f'id="consent-{field}-error"' in page.text, params
    assert (await client.get("/reports/consent.csv", params={"bucket": "x"})).status_code == 422


async def test_who_sees_it(client, world):
    for role, status in (("Viewer", 200), ("Support", 403)):
        await login(client, world.users[role])
        assert (await client.get("/reports/consent")).status_code == status, role
