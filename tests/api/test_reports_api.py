"""GET /api/v1/reports/usage: counts of the key's account and the descendants it manages,
grouped as asked; 401/403/404/422 as the contract says; never a number or a text."""

from __future__ import annotations

from datetime import UTC, datetime

from tenants.accounts.tree import create_sub_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging import accept as sending
from tenants.messaging import messages
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.messages import StatusReport
from tests.api.conftest import basic

URL = "/api/v1/reports/usage"
DAY = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


async def send(account_id: int, numbers: list[str], body: str) -> list[int]:
    await ledger.adjust(account_id, 100, reason="test credits", actor=SYSTEM)
    result = await sending.accept_send(
        SendRequest(account_id=account_id, numbers=numbers, body=body, permissions=PLATFORM_SEND),
        actor=SYSTEM,
    )
    return [a.message_id for a in result.accepted]


async def test_a_master_sees_its_subtree_by_account_and_status_counts_only(
    client, world, make_key, monkeypatch
):
    monkeypatch.setattr(sending, "now", lambda: DAY)
    own = await send(world.accounts["alpha"], ["+61400000001"], "Master text")
    sub = await send(world.accounts["alpha-one"], ["+61400000002", "+61400000003"], "Secret x")
    await send(world.accounts["beta"], ["+61400000004"], "Another tenant")
    await messages.ingest_status_reports(
        [StatusReport(sub[0], "delivered", DAY, event_id="e1"), StatusReport(own[0], "sent", DAY)]
    )
    headers = await make_key("alpha", "Owner")
    response = await client.get(
        URL, params={**PERIOD, "group_by": "account,status"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == "2026-03-01" and body["to"] == "2026-03-31"
    a, a1 = world.accounts["alpha"], world.accounts["alpha-one"]
    assert body["rows"] == [
        {"account_id": a, "status": "sent", "messages": 1, "segments": 1, "credits": 1},
        {"account_id": a1, "status": "delivered", "messages": 1, "segments": 1, "credits": 1},
        {"account_id": a1, "status": "enqueued", "messages": 1, "segments": 1, "credits": 1},
    ]
    assert body["totals"] == {"messages": 3, "segments": 3, "credits": 3}
    for secret in ("+6140000000", "Secret", "Master text", "Another tenant"):
        assert secret not in response.text
    # one sub-account by day, and the whole period when nothing is grouped
    one = await client.get(
        URL, params={**PERIOD, "group_by": "day", "account_id": str(a1)}, headers=headers
    )
    assert one.json()["rows"] == [{"day": "2026-03-01", "messages": 2, "segments": 2, "credits": 2}]
    flat = await client.get(URL, params=PERIOD, headers=headers)
    assert flat.json()["rows"] == [{"messages": 3, "segments": 3, "credits": 3}]
    # a period without messages has no rows and zero totals
    empty = await client.get(
        URL, params={"from": "2026-04-01", "to": "2026-04-02"}, headers=headers
    )
    assert empty.json() == {
        "from": "2026-04-01",
        "to": "2026-04-02",
        "rows": [],
        "totals": {"messages": 0, "segments": 0, "credits": 0},
    }


async def test_refusals_401_403_404_422(client, world, make_key):
    assert (await client.get(URL, params=PERIOD)).status_code == 401
    assert (await client.get(URL, params=PERIOD, headers=basic("nope", "nope"))).status_code == 401
    support = await client.get(URL, params=PERIOD, headers=await make_key("alpha", "Support"))
    assert support.status_code == 403
    assert support.json()["code"] == "permission_denied"
    owner = await make_key("alpha", "Owner")
    for params, field in (
        ({"to": "2026-03-01"}, "from"),
        ({"from": "2026-03-01"}, "to"),
        ({"from": "1 March", "to": "2026-03-01"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "to"),
        ({**PERIOD, "group_by": "day,region"}, "group_by"),
        ({**PERIOD, "group_by": "day,day"}, "group_by"),
        ({**PERIOD, "account_id": "abc"}, "account_id"),
        ({**PERIOD, "account_id": "99999999999999999999"}, "account_id"),
        ({**PERIOD, "account_id": "-3"}, "account_id"),
    ):
        response = await client.get(URL, params=params, headers=owner)
        assert response.status_code == 422, (params, response.text)
        assert field in response.json()["errors"], (params, response.text)
    # another tenant, an account that does not exist: 404, never 403
    for other in (world.accounts["beta"], world.accounts["beta-one"], 987654):
        response = await client.get(URL, params={**PERIOD, "account_id": str(other)}, headers=owner)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_a_sibling_and_the_parent_are_404_to_a_sub_account(client, world, make_key):
    sibling = await create_sub_account(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        parent_id=world.accounts["alpha"],
        name="Alpha Two",
        slug="alpha-two",
    )
    await send(sibling.id, ["+61400000005"], "Sibling text")
    headers = await make_key("alpha-one", "Owner")
    for other in (sibling.id, world.accounts["alpha"]):
        response = await client.get(
            URL, params={**PERIOD, "account_id": str(other)}, headers=headers
        )
        assert response.status_code == 404, response.text
    own = await client.get(URL, params={**PERIOD, "group_by": "account"}, headers=headers)
    assert own.status_code == 200
    assert own.json()["rows"] == []


async def test_by_country_and_sender_a_sub_accounts_senders_stay_its_own(
    client, world, make_key, monkeypatch
):
    from tenants.numbers import numbers

    monkeypatch.setattr(sending, "now", lambda: DAY)
    a, a1 = world.accounts["alpha"], world.accounts["alpha-one"]
    for account, value in ((a, "Master"), (a1, "Branch")):
        view = await numbers.register_sender_id(
            actor=SYSTEM, within_account_id=account, account_id=account, value=value
        )
        await numbers.decide_sender_id(actor=SYSTEM, sender_id_id=view.id, status="approved")
        await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    for account, to, sender in (
        (a, ["+61400000001", "+6421000001"], "Master"),
        (a1, ["+61400000002", "+61400000003"], "Branch"),
    ):
        await sending.accept_send(
            SendRequest(
                account_id=account, numbers=to, body="Hi", sender=sender, permissions=PLATFORM_SEND
            ),
            actor=SYSTEM,
        )
    headers = await make_key("alpha", "Owner")
    response = await client.get(
        URL, params={**PERIOD, "group_by": "country,sender"}, headers=headers
    )
    assert response.status_code == 200, response.text
    one = {"segments": 1, "credits": 1}
    assert response.json()["rows"] == [
        {"country": "AU", "sender": "*", "messages": 2, **one | {"segments": 2, "credits": 2}},
        {"country": "AU", "sender": "Master", "messages": 1, **one},
        {"country": "NZ", "sender": "Master", "messages": 1, **one},
    ]
    assert "Branch" not in response.text
    # the sub-account's own key names its own senders
    own = await client.get(
        URL, params={**PERIOD, "group_by": "sender"}, headers=await make_key("alpha-one", "Owner")
    )
    assert own.json()["rows"] == [{"sender": "Branch", "messages": 2, "segments": 2, "credits": 2}]
