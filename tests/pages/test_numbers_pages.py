"""/numbers: the operator adds numbers and reviews sender IDs; masters assign and take back;
who sees the page and which numbers."""

from __future__ import annotations

from tenants.numbers import numbers
from tests.conftest import login
from tests.factories import HX, make_user


async def test_operator_adds_a_number_to_a_master(client, demo):
    token = await login(client, "operator@portal.test")
    page = await client.get("/numbers")
    assert page.status_code == 200 and "Add a number to a master" in page.text
    r = await client.post(
        "/numbers",
        data={
            "_csrf_token": token,
            "number": "+61 480 000 005",
            "kind": "long_code",
            "owner_id": str(demo["northwind"]),
            "label": "Promo line",
        },
        headers=HX,
    )
    assert r.status_code == 201
    assert "Added +61480000005 to Northwind Messaging" in r.text and "<html" not in r.text
    added = await numbers.find_number("+61480000005")
    assert added is not None and added.owner_id == demo["northwind"]


async def test_add_number_errors_are_inline_and_change_nothing(client, demo):
    token = await login(client, "operator@portal.test")
    r = await client.post(
        "/numbers",
        data={"_csrf_token": token, "number": "12345", "kind": "long_code", "owner_id": ""},
        headers=HX,
    )
    assert r.status_code == 422
    assert r.headers["hx-retarget"] == "#add-number-form"
    assert 'id="num-number-error"' in r.text and "international form" in r.text
    assert len(await numbers.numbers_for(demo["platform"])) == 2


async def test_master_assigns_and_takes_back(client, demo):
    token = await login(client, "owner@northwind.test")
    page = await client.get("/numbers")
    assert "+61480000000" in page.text and "+61480000001" in page.text
    assert "Add a number to a master" not in page.text
    shared = await numbers.find_number("+61480000000")
    assert shared is not None
    r = await client.post(
        f"/numbers/{shared.id}/assign",
        data={"_csrf_token": token, "account_id": str(demo["sydney"])},
        headers=HX,
    )
    assert r.status_code == 200 and "+61480000000 is now held by Sydney Branch" in r.text
    r = await client.post(f"/numbers/{shared.id}/reclaim", data={"_csrf_token": token}, headers=HX)
    assert r.status_code == 200 and "held by Northwind Messaging" in r.text
    assert (await numbers.get_number(shared.id)).assigned_id is None


async def test_a_sub_admin_sees_what_it_uses_and_cannot_assign(client, demo):
    token = await login(client, "admin@melbourne.test")
    page = await client.get("/numbers")
    assert page.status_code == 200
    assert "+61480000001" in page.text and "shared with you" in page.text
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    r = await client.post(
        f"/numbers/{melb.id}/assign",
        data={"_csrf_token": token, "account_id": str(demo["melbourne-events"])},
        headers=HX,
    )
    assert r.status_code == 403
    assert (await numbers.get_number(melb.id)).holder_id == demo["melbourne"]


async def test_sydney_cannot_touch_melbournes_number(client, demo):
    await make_user("admin@sydney.test", demo["sydney"], "Admin")
    token = await login(client, "admin@sydney.test")
    page = await client.get("/numbers")
    assert "+61480000001" not in page.text
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    r = await client.post(f"/numbers/{melb.id}/reclaim", data={"_csrf_token": token}, headers=HX)
    assert r.status_code == 404


async def test_sender_role_has_no_numbers_page(client, demo):
    await login(client, "sender@sydney.test")
    assert (await client.get("/numbers")).status_code == 403


async def test_sender_id_request_then_operator_approval(client, demo):
    token = await login(client, "admin@melbourne.test")
    r = await client.post(
        "/numbers/sender-ids",
        data={"_csrf_token": token, "value": "MelbEventsXX", "account_id": str(demo["melbourne"])},
        headers=HX,
    )
    assert r.status_code == 422 and "at most 11 characters" in r.text
    r = await client.post(
        "/numbers/sender-ids",
        data={
            "_csrf_token": token,
            "value": "MelbEvents",
            "account_id": str(demo["melbourne-events"]),
        },
        headers=HX,
    )
    assert r.status_code == 201 and "the platform operator reviews it" in r.text
    await client.post("/logout", data={"_csrf_token": token})

    token = await login(client, "operator@portal.test")
    page = await client.get("/numbers")
    assert "MelbEvents" in page.text and "Nothing to review" not in page.text
    pending = await numbers.sender_ids_with_status("pending")
    r = await client.post(
        f"/numbers/sender-ids/{pending[0].id}/decide",
        data={"_csrf_token": token, "status": "rejected"},
        headers=HX,
    )
    assert r.status_code == 422 and "Say why" in r.text
    r = await client.post(
        f"/numbers/sender-ids/{pending[0].id}/decide",
        data={"_csrf_token": token, "status": "approved"},
        headers=HX,
    )
    assert r.status_code == 200 and "MelbEvents (Melbourne Events) is approved" in r.text
    senders = await numbers.usable_senders(demo["melbourne-events"])
    assert "MelbEvents" in [s.value for s in senders]
