"""GET /api/v1/reports/consent: opt-outs that bind an account, received by it or inherited
from its consent scope, by period and source; contact record ids only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenants import clock
from tenants.accounts.tables import Account
from tenants.accounts.tree import create_sub_account
from tenants.audit.record import SYSTEM
from tenants.consent import events
from tenants.contacts.contacts import create_contact

URL = "/api/v1/reports/consent"
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch):
    def set_time(*args: int) -> None:
        moment = datetime(*args, tzinfo=UTC)
        monkeypatch.setattr(clock, "now", lambda: moment)

    return set_time


async def opt_out(account_id: int, phone: str, source: str) -> None:
    await events.record_opt_out(account_id, phone, "sms", source=source)


async def seeded(world, at) -> dict[str, int]:
    """alpha (root scope) with alpha-one sharing its scope: opt-outs on both, and beta's."""
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    mine = await create_contact(actor=SYSTEM, account_id=one, phone="+61400000011")
    theirs = await create_contact(actor=SYSTEM, account_id=alpha, phone="+61400000012")
    at(2026, 3, 2, 1, 0)
    await opt_out(one, "+61400000011", "keyword")
    await opt_out(one, "+61400000013", "keyword")
    at(2026, 3, 9, 1, 0)
    await opt_out(one, "+61400000014", "api")
    await opt_out(alpha, "+61400000011", "manual")
    await opt_out(alpha, "+61400000012", "import")
    await opt_out(world.accounts["beta"], "+61400000015", "api")
    at(2026, 4, 2, 1, 0)
    await opt_out(one, "+61400000016", "keyword")  # outside the period
    return {"mine": mine.id, "theirs": theirs.id}


async def test_received_and_inherited_by_period_and_source(client, world, make_key, at):
    ids = await seeded(world, at)
    one = world.accounts["alpha-one"]
    headers = await make_key("alpha-one", "Owner")
    response = await client.get(URL, params={**PERIOD, "bucket": "week"}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_id"] == one and body["bucket"] == "week"
    assert body["rows"] == [
        {
            "period": "2026-W10",
            "origin": "received",
            "source": "keyword",
            "opt_outs": 2,
            "contact_ids": [ids["mine"]],
        },
        {
            "period": "2026-W11",
            "origin": "received",
            "source": "api",
            "opt_outs": 1,
            "contact_ids": [],
        },
        {
            "period": "2026-W11",
            "origin": "inherited",
            "source": "manual",
            "opt_outs": 1,
            "contact_ids": [ids["mine"]],
        },
        {
            "period": "2026-W11",
            "origin": "inherited",
            "source": "import",
            "opt_outs": 1,
            "contact_ids": [],
        },
    ]
    assert body["totals"] == {"opt_outs": 5, "received": 3, "inherited": 2}
    assert "+614" not in response.text and "61400" not in response.text
    listed = {i for r in body["rows"] for i in r["contact_ids"]}
    assert ids["theirs"] not in listed  # the master's contact record is not alpha-one's data
    # the master: everything its scope received is its own, beta's never counts
    master = await client.get(URL, params=PERIOD, headers=await make_key("alpha", "Owner"))
    assert master.json()["totals"] == {"opt_outs": 5, "received": 2, "inherited": 3}
    assert [r["contact_ids"] for r in master.json()["rows"] if r["origin"] == "received"] == [
        [],  # manual, for a number alpha has no contact record of
        [ids["theirs"]],  # import
    ]


async def test_an_isolated_sub_account_inherits_nothing(client, world, make_key, at):
    await seeded(world, at)
    one = world.accounts["alpha-one"]
    await Account.update({Account.consent_mode: "isolated"}).where(Account.id == one)
    response = await client.get(URL, params=PERIOD, headers=await make_key("alpha-one", "Owner"))
    assert response.json()["totals"] == {"opt_outs": 3, "received": 3, "inherited": 0}


async def test_days_follow_the_account_time_zone(client, world, make_key, at):
    one = world.accounts["alpha-one"]
    await Account.update({Account.timezone: "Australia/Sydney"}).where(Account.id == one)
    at(2026, 2, 28, 14, 0)  # 1 March 01:00 in Sydney
    await opt_out(one, "+61400000021", "keyword")
    response = await client.get(
        URL,
        params={"from": "2026-03-01", "to": "2026-03-01", "bucket": "day"},
        headers=await make_key("alpha-one", "Owner"),
    )
    assert [(r["period"], r["opt_outs"]) for r in response.json()["rows"]] == [("2026-03-01", 1)]


async def test_a_master_reads_a_sub_account_and_a_sibling_is_404(client, world, make_key, at):
    await seeded(world, at)
    owner = await make_key("alpha", "Owner")
    sub = await client.get(
        URL, params={**PERIOD, "account_id": str(world.accounts["alpha-one"])}, headers=owner
    )
    assert sub.status_code == 200 and sub.json()["totals"]["received"] == 3
    sibling = await create_sub_account(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        parent_id=world.accounts["alpha"],
        name="Alpha Two",
        slug="alpha-two",
    )
    headers = await make_key("alpha-one", "Owner")
    for other in (sibling.id, world.accounts["alpha"], world.accounts["beta"], 987654):
        response = await client.get(
            URL, params={**PERIOD, "account_id": str(other)}, headers=headers
        )
        assert response.status_code == 404, response.text


async def test_refusals_name_the_field(client, world, make_key):
    assert (await client.get(URL, params=PERIOD)).status_code == 401
    support = await client.get(URL, params=PERIOD, headers=await make_key("alpha", "Support"))
    assert support.status_code == 403
    owner = await make_key("alpha", "Owner")
    for params, field in (
        ({"to": "2026-03-01"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({**PERIOD, "bucket": "year"}, "bucket"),
        ({**PERIOD, "account_id": "abc"}, "account_id"),
    ):
        response = await client.get(URL, params=params, headers=owner)
        assert response.status_code == 422, (params, response.text)
        assert field in response.json()["errors"], (params, response.text)
