"""Settled reads (tenants.db.shared_read(settled=True), tenants.memo): an inbound group
reads the cache_version counter once and keeps the settings routing and replying read
(numbers, keywords, accounts, prices, senders, consent words and replies, integrations,
webhook subscriptions, contact lists) across groups while it stands. A write to any of
those tables, from any process, bumps the counter in its own transaction: the next group
reads afresh, and a reply never goes out under settings that were changed before it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tenants import memo
from tenants.access import resolved
from tenants.audit.record import SYSTEM
from tenants.consent import keywords as consent_keywords
from tenants.credits import pricing
from tenants.db import is_sqlite, reads_shared, run_sql
from tenants.messaging import inbound
from tenants.numbers import keywords
from tenants.numbers.tables import Keyword, KeywordAction
from tenants.providers.tables import ChannelDefault
from tests.unit.test_inbound import MELB, SHARED, fund, outbox_to

WATCHED = importlib.import_module(
    "migrations.tenants_2026_12_02t08_30_00_000000_cache_version_settings"
).WATCHED

A = "+61412345681"
B = "+61412345682"
C = "+61412345683"
D = "+61412345684"


async def _reply_bodies(phone: str) -> list[str]:
    return [r["body"] for r in await outbox_to(phone)]


async def _join_reply(demo: dict[str, int]) -> dict[str, Any]:
    row = (
        await KeywordAction.select(KeywordAction.id, KeywordAction.reply_text)
        .where(
            (KeywordAction.keyword.word == "JOIN")
            & (KeywordAction.keyword.account == demo["sydney"])
            & (KeywordAction.kind == "auto_reply")
        )
        .first()
    )
    assert row is not None
    return row


async def test_a_keyword_reply_changed_behind_the_memo_is_the_next_groups_reply(demo):
    await fund(demo, "sydney")
    first = await inbound.route_inbound("settled-1", A, SHARED, "join")
    assert first.route == "keyword"
    action = await _join_reply(demo)
    (sent,) = await _reply_bodies(A)
    assert sent.startswith("Thanks")
    before = await resolved.read_version()
    # A plain UPDATE, as another process (a person editing the keyword) would write it.
    await KeywordAction.update({KeywordAction.reply_text: "New words for JOIN"}).where(
        KeywordAction.id == action["id"]
    )
    after = await resolved.read_version()
    assert before is not None and after is not None and after > before
    await inbound.route_inbound("settled-2", B, SHARED, "join")
    assert await _reply_bodies(B) == ["New words for JOIN"]


async def test_a_keyword_deleted_behind_the_memo_no_longer_routes(demo):
    await fund(demo, "sydney", "northwind")
    assert (await inbound.route_inbound("settled-3", A, SHARED, "join")).route == "keyword"
    keyword = await Keyword.select(Keyword.id).where(Keyword.word == "JOIN").first()
    assert keyword is not None
    await KeywordAction.delete().where(KeywordAction.keyword == keyword["id"])
    await Keyword.delete().where(Keyword.id == keyword["id"])
    again = await inbound.route_inbound("settled-4", B, SHARED, "join")
    assert again.route != "keyword" and again.keyword is None
    assert await _reply_bodies(B) == []


async def test_a_confirmation_and_a_price_changed_behind_the_memo_apply_at_once(demo):
    await fund(demo, "melbourne")
    await inbound.route_inbound("settled-5", A, MELB, "STOP")
    await run_sql(
        "INSERT INTO consent_reply (account_id, kind, body) VALUES ({}, {}, {})",
        demo["melbourne"],
        "opt_out",
        "Melbourne: you will hear no more.",
    )
    await inbound.route_inbound("settled-6", B, MELB, "STOP")
    assert await _reply_bodies(B) == ["Melbourne: you will hear no more."]
    # The price a reply is charged is the price now, not the one a group kept.
    await pricing.set_price(
        actor=SYSTEM,
        account_id=demo["melbourne"],
        channel="sms",
        country="AU",
        credits=7,
        is_operator=True,
        within_account_id=demo["melbourne"],
    )
    await inbound.route_inbound("settled-7", C, MELB, "STOP")
    rows = await run_sql("SELECT cost FROM message WHERE direction = 'out' AND to_number = {}", C)
    assert [r["cost"] for r in rows] == [7]


async def test_a_second_group_reads_no_settled_setting_again(demo, monkeypatch):
    await fund(demo, "sydney")
    await inbound.route_inbound("settled-8", A, SHARED, "join")
    loads: list[int] = []
    real = keywords._views

    async def counted(rows: list[dict[str, Any]]) -> list[keywords.KeywordView]:
        loads.append(len(rows))
        return await real(rows)

    monkeypatch.setattr(keywords, "_views", counted)
    await inbound.route_inbound("settled-9", B, SHARED, "join")
    assert loads == [], "the keyword was read again though no setting changed"
    # Outside a group (a page, the API) every read is fresh.
    number = await keywords.keyword_on((await _number_id(SHARED)), "join")
    assert number is not None and loads == [1]


async def _number_id(value: str) -> int:
    rows = await run_sql("SELECT id FROM phone_number WHERE number = {}", value)
    return int(rows[0]["id"])


async def test_a_block_that_read_an_older_counter_keeps_nothing(demo):
    memo.forget()
    version = await resolved.read_version()
    assert version is not None
    await run_sql("UPDATE cache_version SET n = n + 1 WHERE id = 1")
    with reads_shared(version + 1):
        await consent_keywords.keyword_lists(demo["melbourne"])
    kept = dict(memo._memo)
    with reads_shared(version):  # older than the memo: read afresh, nothing kept
        words = await consent_keywords.keyword_lists(demo["melbourne"])
    assert memo._memo == kept and "STOP" in words["opt_out"]
    # Each caller gets its own lists: changing them changes nothing kept.
    with reads_shared(version + 1):
        mine = await consent_keywords.keyword_lists(demo["melbourne"])
        mine["opt_out"].append("NOT-A-WORD")
        again = await consent_keywords.keyword_lists(demo["melbourne"])
    assert "NOT-A-WORD" not in again["opt_out"]


async def _triggers_on(table: str) -> int:
    if is_sqlite():
        rows = await run_sql(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger' AND tbl_name = {} "
            "AND sql LIKE '%cache_version%'",
            table,
        )
    else:
        rows = await run_sql(
            "SELECT count(*) AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname = {} AND t.tgname LIKE 'cache_version%'",
            table,
        )
    return int(rows[0]["n"])


@pytest.mark.parametrize("table", WATCHED)
async def test_every_write_to_a_settled_table_bumps_the_counter(demo, table):
    # Insert, update and delete: three row triggers on SQLite, one statement trigger on
    # PostgreSQL.
    # PostgreSQL has a second statement trigger for TRUNCATE.
    assert await _triggers_on(table) == (3 if is_sqlite() else 2)
    rows = await run_sql(f"SELECT id FROM {table} ORDER BY id LIMIT 1")  # noqa: S608
    if rows:
        before = await resolved.read_version()
        await run_sql(f"UPDATE {table} SET id = id WHERE id = {{}}", rows[0]["id"])  # noqa: S608
        after = await resolved.read_version()
        assert before is not None and after is not None and after > before, table


async def test_emptying_a_watched_table_at_once_bumps_the_counter(demo):
    # TRUNCATE on PostgreSQL (no INSERT/UPDATE/DELETE trigger fires for it); on SQLite a
    # DELETE without WHERE, which runs the row triggers (no truncate optimisation then).
    await ChannelDefault.insert(
        ChannelDefault(account_id=demo["sydney"], channel="mms", key=f"{demo['sydney']}:mms")
    )
    before = await resolved.read_version()
    if is_sqlite():
        await run_sql("DELETE FROM channel_default")
    else:
        await run_sql("TRUNCATE channel_default")
    after = await resolved.read_version()
    assert before is not None and after is not None and after > before
