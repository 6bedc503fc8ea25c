"""Recurring-send and quiet-hours pages: a plain form post (JavaScript off) creates a
schedule and lands on its detail with upcoming runs; bad input re-renders the form with
the field named (422) and writes nothing; roles without campaigns.manage are refused."""

from __future__ import annotations

import re

from tenants.audit.record import SYSTEM
from tenants.messaging.tables import QuietHours, RecurringSchedule
from tenants.templates import templates
from tests.conftest import csrf_token, login
from tests.factories import HX

FORM = {
    "name": "Friday reminder",
    "body": "See you on Friday",
    "numbers": "+61293744000",
    "frequency": "monthly",
    "month_day": "0",
    "local_time": "10:15",
    "max_runs": "3",
}


async def test_create_without_javascript_then_act(client, world):
    await login(client, world.users["Sender"])
    token = await csrf_token(client, "/recurring")
    answer = await client.post(
        "/recurring", data={**FORM, "_csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    detail = await client.get(answer.headers["location"])
    assert detail.status_code == 200
    assert "Monthly on the last weekday at 10:15" in detail.text
    assert detail.text.count('10:15 <span class="muted small">') == 3  # three runs, local time
    sid = answer.headers["location"].rsplit("/", 1)[1]
    paused = await client.post(
        f"/recurring/{sid}/pause", data={"_csrf_token": token}, follow_redirects=False
    )
    assert paused.status_code == 303
    assert "Resume" in (await client.get(f"/recurring/{sid}")).text
    listing = await client.get("/recurring")
    assert "Friday reminder" in listing.text and "paused" in listing.text


async def test_bad_input_rerenders_the_form_naming_the_field(client, world):
    await login(client, world.users["Sender"])
    token = await csrf_token(client, "/recurring")
    bad = {**FORM, "local_time": "", "max_runs": "many", "_csrf_token": token}
    answer = await client.post("/recurring", data=bad, headers=HX)
    assert answer.status_code == 422
    assert 'id="max_runs-error"' in answer.text
    bad = {**FORM, "local_time": "", "_csrf_token": token}
    answer = await client.post("/recurring", data=bad, headers=HX)
    assert answer.status_code == 422 and 'id="local_time-error"' in answer.text
    assert await RecurringSchedule.count() == 0
    # The weekdays ticked come back ticked, Monday (0) too.
    weekly = {**FORM, "frequency": "weekly", "weekdays": ["0", "4"], "local_time": ""}
    answer = await client.post("/recurring", data={**weekly, "_csrf_token": token}, headers=HX)
    assert answer.status_code == 422
    ticked = re.findall(r'name="weekdays" value="(\d)" checked', answer.text)
    assert ticked == ["0", "4"]


async def test_roles_and_quiet_hours_page(client, world):
    await login(client, world.users["Support"])
    assert (await client.get("/recurring")).status_code == 403
    await login(client, world.users["Owner"])
    token = await csrf_token(client, "/settings/quiet-hours")
    saved = await client.post(
        "/settings/quiet-hours",
        data={
            "enabled": "1",
            "start": "08:30",
            "end": "19:00",
            "days": ["5", "6"],
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = await client.get("/settings/quiet-hours")
    assert "08:30 to 19:00" in page.text and "never on Sat, Sun" in page.text
    bad = await client.post(
        "/settings/quiet-hours",
        data={"enabled": "1", "start": "19:00", "end": "19:00", "_csrf_token": token},
        headers=HX,
    )
    assert bad.status_code == 422 and 'id="end-error"' in bad.text
    assert (await QuietHours.select(QuietHours.start))[0]["start"] == "08:30"
    # An overnight window (past midnight) is a window like any other, JavaScript off.
    overnight = await client.post(
        "/settings/quiet-hours",
        data={"enabled": "1", "start": "21:00", "end": "08:00", "_csrf_token": token},
        follow_redirects=False,
    )
    assert overnight.status_code == 303
    page = await client.get("/settings/quiet-hours")
    assert "21:00 to 08:00 (overnight)" in page.text


async def test_a_template_is_marked_transactional_from_its_page(client, world):
    template = await templates.ensure_approved_template(
        actor=SYSTEM,
        account_id=world.accounts["alpha"],
        name="OTP",
        body="Code {{c}}",
        shared_down=False,
    )
    await login(client, world.users["Sender"])
    token = await csrf_token(client, f"/templates/{template.id}")
    answer = await client.post(
        f"/templates/{template.id}/quiet-exempt",
        data={"exempt": "1", "_csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert await templates.is_quiet_exempt(template.id)
    assert "Transactional: sent at once" in (await client.get(f"/templates/{template.id}")).text
