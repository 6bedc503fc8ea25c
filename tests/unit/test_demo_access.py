"""The demo's access scenarios hold: finance may only buy, support only sends approved
templates, sales sends but does not export, and a team member holds an extra privilege."""

from __future__ import annotations

from tenants.access import users
from tenants.access.decide import Principal, decide
from tenants.demo import seed_demo


async def _person(email: str) -> Principal:
    user = await users.find_user_by_email(email)
    assert user is not None
    return Principal(kind="user", label=email, user_id=user.id)


async def test_demo_access_scenarios_and_seeding_twice_changes_nothing():
    ids = await seed_demo()
    again = await seed_demo()
    assert ids == again
    sydney, northwind = ids["sydney"], ids["northwind"]
    finance = await _person("finance@northwind.test")
    assert (await decide(finance, northwind, "credits.buy")).allowed
    assert not (await decide(finance, northwind, "messages.send")).allowed
    support = await _person("support@sydney.test")
    assert (await decide(support, sydney, "messages.send_template")).allowed
    assert not (await decide(support, sydney, "messages.send")).allowed
    sales = await _person("sales@sydney.test")
    send = await decide(sales, sydney, "messages.send")
    assert send.allowed and send.reason == "role Sales via team Sales team"
    assert not (await decide(sales, sydney, "contacts.export")).allowed
    approve = await decide(sales, sydney, "templates.approve")
    assert approve.allowed
    assert approve.reason.startswith("granted by override set by owner@northwind.test on ")
