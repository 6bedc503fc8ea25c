"""Messages search (text, national and E.164 numbers, literal % and _), the total count, and
the CSV export of the filtered list behind `messages.export` on the page and the API."""

from __future__ import annotations

import csv
import io

from tenants.access.decide import BUILTIN_ROLES
from tenants.messaging import messages
from tenants.messaging.messages import MessageFilter
from tenants.messaging.tables import Message
from tests.conftest import login
from tests.factories import HX

HEADER = "id,created_at,direction,to,from,status,segments,cost,channel,body"


async def seed(account_id: int) -> dict[str, int]:
    """Three messages in the account; returns their ids by a short name."""
    rows = {
        "kind": ("+61413000006", "Your code is 100% ready"),
        "other": ("+61400000009", "Lunch at noon"),
        "under": ("+61400000010", "=cmd snake_case"),
    }
    ids = {}
    for name, (to, body) in rows.items():
        saved = await Message.insert(
            Message(account_id=account_id, to_number=to, from_number="ACME", body=body, cost=1)
        ).returning(Message.id)
        ids[name] = saved[0]["id"]
    return ids


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_search_finds_national_and_e164_forms_and_text_literally(world):
    alpha = world.accounts["alpha"]
    ids = await seed(alpha)
    await seed(world.accounts["beta"])

    async def found(**flt: str) -> set[int]:
        page = await messages.list_messages(alpha, MessageFilter(**flt))  # type: ignore[arg-type]
        assert page.total == len(page.items)
        return {m.id for m in page.items}

    assert await found(number="0413000006") == {ids["kind"]}
    assert await found(number="0413 000 006") == {ids["kind"]}
    assert await found(number="+61413000006") == {ids["kind"]}
    assert await found(number="61413000006") == {ids["kind"]}
    assert await found(text="CODE") == {ids["kind"]}
    assert await found(text="100%") == {ids["kind"]}
    assert await found(text="%") == {ids["kind"]}  # a % is no wildcard
    assert await found(text="e_c") == {ids["under"]}  # nor is an _
    assert await found(text="_") == {ids["under"]}
    assert await found(text="nothing like it") == set()


async def test_total_counts_every_page_and_pages_follow_on(world):
    alpha = world.accounts["alpha"]
    ids = await seed(alpha)
    first = await messages.list_messages(alpha, MessageFilter(), limit=2)
    assert first.total == 3 and len(first.items) == 2
    rest = await messages.list_messages(
        alpha, MessageFilter(), before_id=first.next_before_id, limit=2
    )
    assert rest.total == 3 and [m.id for m in rest.items] == [min(ids.values())]
    assert rest.next_before_id is None


async def test_the_page_searches_by_text_and_shows_the_total(client, world):
    ids = await seed(world.accounts["alpha"])
    await login(client, world.users["Viewer"])
    page = await client.get("/messages?number=0413000006")
    assert page.status_code == 200
    assert f'id="message-{ids["kind"]}"' in page.text
    assert f'id="message-{ids["other"]}"' not in page.text
    assert "1 message match" in page.text
    fragment = await client.get("/messages?q=lunch", headers=HX)
    assert f'id="message-{ids["other"]}"' in fragment.text and "<html" not in fragment.text
    assert 'id="export-link"' not in page.text  # a Viewer may not export


def test_who_holds_messages_export():
    holders = {role for role, perms in BUILTIN_ROLES.items() if "messages.export" in perms}
    assert holders == {"Owner", "Admin", "Sender"}


async def test_sender_and_owner_export_the_filtered_list_of_their_account(client, world):
    ids = await seed(world.accounts["alpha"])
    await seed(world.accounts["beta"])
    for role in ("Sender", "Owner"):
        await login(client, world.users[role])
        page = await client.get("/messages")
        assert 'id="export-link"' in page.text
        r = await client.get("/messages/export.csv")
        assert r.status_code == 200, role
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        assert r.text.splitlines()[0] == HEADER
        rows = parse(r.text)
        assert [int(row["id"]) for row in rows] == sorted(ids.values(), reverse=True)
    filtered = parse((await client.get("/messages/export.csv?number=0413000006")).text)
    assert [int(row["id"]) for row in filtered] == [ids["kind"]]
    row = filtered[0]
    assert (row["to"], row["from"], row["direction"], row["cost"]) == (
        "+61413000006",
        "ACME",
        "out",
        "1",
    )
    assert row["body"] == "Your code is 100% ready" and row["channel"] == "sms"
    under = parse((await client.get("/messages/export.csv?q=snake")).text)
    assert under[0]["body"] == "'=cmd snake_case"  # no formula in a spreadsheet


async def test_a_role_without_messages_export_is_refused_on_the_page(client, world):
    await seed(world.accounts["alpha"])
    for role in ("Viewer", "Support", "Finance"):
        await login(client, world.users[role])
        r = await client.get("/messages/export.csv")
        assert r.status_code == 403, role
        assert "+61413000006" not in r.text
    await login(client, world.users["Sender"])
    bad = await client.get("/messages/export.csv?date_from=yesterday")
    assert bad.status_code in (400, 422) and "date_from" in bad.text
    bad = await client.get("/messages/export.csv?status=bogus")
    assert bad.status_code in (400, 422) and "status" in bad.text
