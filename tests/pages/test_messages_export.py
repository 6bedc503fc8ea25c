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


async def _many(account_id: int, count: int) -> list[int]:
    saved = await Message.insert(
        *(
            Message(account_id=account_id, to_number=f"+614130001{n:02d}", body=f"Note {n}")
            for n in range(count)
        )
    ).returning(Message.id)
    return sorted((r["id"] for r in saved), reverse=True)


async def test_the_total_is_exact_up_to_the_cap_and_says_so_past_it(world):
    alpha = world.accounts["alpha"]
    ids = await _many(alpha, 60)
    await _many(world.accounts["beta"], 5)
    exact = await messages.list_messages(alpha, MessageFilter())
    assert (exact.total, exact.total_text, exact.total_is_capped) == (60, "60", False)
    under = await messages.list_messages(alpha, MessageFilter(count_up_to=100))
    assert (under.total, under.total_text) == (60, "60")
    capped = await messages.list_messages(alpha, MessageFilter(count_up_to=55))
    assert capped.total_is_capped and capped.total_text == "55+"
    assert [m.id for m in capped.items] == ids[:50] and capped.next_before_id == ids[49]
    older = await messages.list_messages(
        alpha, MessageFilter(count_up_to=55), before_id=capped.next_before_id
    )
    assert [m.id for m in older.items] == ids[50:] and older.next_before_id is None
    assert older.total_text == "55+"  # the total is over every page, not the rest
    few = await messages.list_messages(alpha, MessageFilter(text="Note 5", count_up_to=2))
    assert few.total == len(few.items) == 11 and not few.total_is_capped  # 5, 50-59


async def test_the_page_says_the_capped_total_and_pages_on(client, world, monkeypatch):
    ids = await _many(world.accounts["alpha"], 60)
    await login(client, world.users["Viewer"])
    assert "60 messages match" in (await client.get("/messages")).text
    monkeypatch.setattr(messages, "PAGE_COUNT_CAP", 55)
    page = await client.get("/messages")
    assert page.status_code == 200 and "55+ messages match" in page.text
    assert f'id="message-{ids[49]}"' in page.text and f'id="message-{ids[50]}"' not in page.text
    more = await client.get(f"/messages?before_id={ids[49]}", headers=HX)
    assert f'id="message-{ids[50]}"' in more.text and "<html" not in more.text
    assert "Older messages" not in more.text
