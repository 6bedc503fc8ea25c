"""The recurring-send and quiet-hours API: create, read with upcoming runs, act, edit;
bad input is a 422 naming the field and writes nothing; permissions and tenant scoping."""

from __future__ import annotations

from tenants.accounts.tables import Account
from tenants.messaging.tables import QuietHours, RecurringSchedule
from tests.factories import fund

BODY = {
    "name": "Weekly specials",
    "body": "Specials this week",
    "to": ["+61293744000"],
    "frequency": "weekly",
    "weekdays": [0, 3],
    "local_time": "09:00",
    "max_runs": 4,
}


async def test_create_read_act_and_edit(client, make_key, world):
    await Account.update({Account.timezone: "Australia/Sydney"}).where(
        Account.id == world.accounts["alpha"]
    )
    headers = await make_key("alpha", "Sender")
    created = await client.post("/api/v1/recurring", json=BODY, headers=headers)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["state"] == "active" and data["timezone"] == "Australia/Sydney"
    assert len(data["upcoming"]) == 4 and data["runs"] == []
    assert data["description"].startswith("Every Mon, Thu at 09:00")
    sid = data["id"]
    skipped = await client.post(
        f"/api/v1/recurring/{sid}/actions", json={"action": "skip"}, headers=headers
    )
    assert skipped.status_code == 200 and skipped.json()["runs"][0]["state"] == "skipped"
    paused = await client.post(
        f"/api/v1/recurring/{sid}/actions", json={"action": "pause"}, headers=headers
    )
    assert paused.json()["state"] == "paused"
    edited = await client.put(
        f"/api/v1/recurring/{sid}", json={**BODY, "local_time": "17:45"}, headers=headers
    )
    assert edited.status_code == 200 and edited.json()["local_time"] == "17:45"
    listed = await client.get("/api/v1/recurring", headers=headers)
    assert [s["id"] for s in listed.json()] == [sid]
    other = await make_key("beta", "Owner")
    assert (await client.get(f"/api/v1/recurring/{sid}", headers=other)).status_code == 404
    assert (
        await client.post(f"/api/v1/recurring/{sid}/actions", json={"action": "end"}, headers=other)
    ).status_code == 404


async def test_bad_input_is_422_naming_the_field_and_writes_nothing(client, make_key):
    headers = await make_key("alpha", "Sender")
    cases = [
        ({**BODY, "frequency": "hourly"}, "frequency"),
        ({**BODY, "weekdays": []}, "weekdays"),
        ({**BODY, "weekdays": [7]}, "weekdays"),
        ({**BODY, "local_time": "9am"}, "local_time"),
        ({**BODY, "until_date": "2026-02-30"}, "until_date"),
        ({**BODY, "to": []}, "to"),
        ({**BODY, "max_runs": 0}, "max_runs"),
        ({**BODY, "body": None}, "body"),
        ({**BODY, "body": None, "template_id": 999999}, "template_id"),
    ]
    for body, field in cases:
        answer = await client.post("/api/v1/recurring", json=body, headers=headers)
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.text, (field, answer.text)
    bad_action = await client.post(
        "/api/v1/recurring/1/actions", json={"action": "explode"}, headers=headers
    )
    assert bad_action.status_code == 422 and "action" in bad_action.text
    assert await RecurringSchedule.count() == 0


async def test_permissions(client, make_key):
    viewer = await make_key("alpha", "Viewer")
    assert (await client.post("/api/v1/recurring", json=BODY, headers=viewer)).status_code == 403
    support = await make_key("alpha", "Support")
    assert (await client.get("/api/v1/recurring", headers=support)).status_code == 403
    sender = await make_key("alpha", "Sender")  # no settings.manage
    answer = await client.put("/api/v1/quiet-hours", json={"enabled": True}, headers=sender)
    assert answer.status_code == 403
    assert await RecurringSchedule.count() == 0 and await QuietHours.count() == 0


async def test_quiet_hours_set_inherited_and_held_messages_listed(client, make_key, world):
    owner = await make_key("alpha", "Owner")
    answer = await client.put(
        "/api/v1/quiet-hours",
        json={"enabled": True, "start": "00:00", "end": "00:01", "days": []},
        headers=owner,
    )
    assert answer.status_code == 200, answer.text
    child = await make_key("alpha-one", "Owner")
    shown = (await client.get("/api/v1/quiet-hours", headers=child)).json()
    assert shown["inherited_from_account_id"] == world.accounts["alpha"]
    bad = await client.put(
        "/api/v1/quiet-hours",
        json={"enabled": True, "start": "20:00", "end": "20:00"},
        headers=owner,
    )
    assert bad.status_code == 422 and bad.json()["field"] == "end"
    assert (await client.get("/api/v1/quiet-hours", headers=owner)).json()["end"] == "00:01"
    await fund(world.accounts["alpha"])
    sent = await client.post(
        "/api/v1/messages", json={"to": ["+61293744000"], "body": "Sale"}, headers=owner
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["held"] == 1 and sent.json()["held_until"]
    held = (await client.get("/api/v1/quiet-hours/held", headers=owner)).json()
    assert [h["to"] for h in held] == ["+61293744000"]


async def test_an_overnight_window_is_accepted(client, make_key):
    owner = await make_key("alpha", "Owner")
    answer = await client.put(
        "/api/v1/quiet-hours",
        json={"enabled": True, "start": "21:00", "end": "08:00", "days": [6]},
        headers=owner,
    )
    assert answer.status_code == 200, answer.text
    shown = (await client.get("/api/v1/quiet-hours", headers=owner)).json()
    assert (shown["start"], shown["end"], shown["days"]) == ("21:00", "08:00", [6])
    assert shown["description"].startswith("Sends go 21:00 to 08:00 (overnight)")
