"""Message search by a whole number (exact, To or From, from the account's number indexes)
and by a part of one, their totals over both sides and pages, and the indexes' plans."""

from __future__ import annotations

import pytest

from tenants.db import is_sqlite, run_sql
from tenants.messaging import messages
from tenants.messaging.messages import MessageFilter
from tenants.messaging.tables import Message

NUMBER = "+61413000006"


async def _add(account_id: int, *rows: tuple[str, str, str]) -> list[int]:
    """Messages (direction, to, from) in the account; their ids in the order given."""
    saved = await Message.insert(
        *(
            Message(
                account_id=account_id, direction=d, to_number=to, from_number=sent_from, body="hi"
            )
            for d, to, sent_from in rows
        )
    ).returning(Message.id)
    return [r["id"] for r in saved]


async def _all_pages(account_id: int, flt: MessageFilter, limit: int) -> list[int]:
    found, before = [], None
    while True:
        page = await messages.list_messages(account_id, flt, before_id=before, limit=limit)
        found += [m.id for m in page.items]
        if page.next_before_id is None:
            return found
        before = page.next_before_id


async def test_a_whole_number_finds_messages_to_it_and_from_it_once_each(world):
    alpha = world.accounts["alpha"]
    ids = await _add(
        alpha,
        ("out", NUMBER, "ACME"),
        ("in", "+61480000000", NUMBER),  # a reply from the number
        ("out", "+61400000009", "ACME"),
        ("out", NUMBER, NUMBER),  # to and from it: found and counted once
        ("out", "+614130000061", "ACME"),  # holds the number's digits: not the number
    )
    await _add(world.accounts["beta"], ("out", NUMBER, "ACME"), ("in", "+61480000000", NUMBER))
    expected = [ids[3], ids[1], ids[0]]
    for typed in ("0413 000 006", NUMBER, "61413000006", "(04) 1300 0006"):
        page = await messages.list_messages(alpha, MessageFilter(number=typed))
        assert [m.id for m in page.items] == expected, typed
        assert page.total == 3 and page.next_before_id is None, typed
        assert await _all_pages(alpha, MessageFilter(number=typed), limit=1) == expected
        few = await messages.list_messages(alpha, MessageFilter(number=typed), limit=2)
        assert few.total == 3 and [m.id for m in few.items] == expected[:2], typed
        capped = await messages.list_messages(
            alpha, MessageFilter(number=typed, count_up_to=2), limit=1
        )
        assert capped.total_is_capped and capped.total_text == "2+", typed
        exact = await messages.list_messages(
            alpha, MessageFilter(number=typed, count_up_to=3), limit=1
        )
        assert (exact.total, exact.total_is_capped) == (3, False), typed
    both = await messages.list_messages(alpha, MessageFilter(number=NUMBER, direction="in"))
    assert [m.id for m in both.items] == [ids[1]] and both.total == 1


async def test_a_part_of_a_number_or_a_sender_id_still_matches_anywhere(world):
    alpha = world.accounts["alpha"]
    ids = await _add(
        alpha,
        ("out", NUMBER, "ACME"),
        ("out", "+614130000061", "ACME"),
        ("out", "+61400000009", "Promo"),
    )

    async def found(number: str) -> list[int]:
        page = await messages.list_messages(alpha, MessageFilter(number=number))
        assert page.total == len(page.items)
        return [m.id for m in page.items]

    assert await found("413 000") == [ids[1], ids[0]]
    assert await found("+6141300") == [ids[1], ids[0]]
    assert await found("acme") == [ids[1], ids[0]]
    assert await found("Promo") == [ids[2]]


async def test_the_export_of_a_whole_number_holds_both_sides_newest_first(world, monkeypatch):
    alpha = world.accounts["alpha"]
    ids = await _add(
        alpha,
        ("out", NUMBER, "ACME"),
        ("in", "+61480000000", NUMBER),
        ("out", "+61400000009", "ACME"),
        ("out", NUMBER, NUMBER),
    )
    monkeypatch.setattr(messages, "EXPORT_PAGE", 1)  # a page per message: the keyset pages
    pages = [page async for page in await messages.export_rows(alpha, MessageFilter(number=NUMBER))]
    assert [row[0] for page in pages for row in page] == [ids[3], ids[1], ids[0]]


@pytest.mark.skipif(not is_sqlite(), reason="SQLite's query plan")
async def test_a_whole_number_is_read_from_the_number_indexes_not_the_account_scan(world):
    alpha = world.accounts["alpha"]
    match = await messages._filtered(alpha, MessageFilter(number="0413 000 006"))
    plans = []
    for where in match.sides:
        query = Message.select(Message.id).where(where).order_by(Message.id, ascending=False)
        sql, args = query.limit(51).querystrings[0].compile_string(engine_type="sqlite")
        rows = await run_sql("EXPLAIN QUERY PLAN " + sql.replace("?", "{}"), *args)
        plans.append(" ".join(r["detail"] for r in rows))
    assert "message_account_to (account_id=? AND to_number=?)" in plans[0], plans
    assert "message_account_from (account_id=? AND from_number=?)" in plans[1], plans
    assert all("TEMP B-TREE" not in plan for plan in plans), plans  # already in id order


async def test_the_number_indexes_exist():
    if is_sqlite():
        rows = await run_sql("SELECT name FROM sqlite_master WHERE tbl_name = 'message'")
    else:
        rows = await run_sql("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'message'")
    assert {"message_account_to", "message_account_from"} <= {r["name"] for r in rows}
