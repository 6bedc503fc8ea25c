"""Statements per signed-in page, counted (not timed): each page of the demo tree has a
budget of SQL statements one request may run, so a page that starts reading the same
thing twice, or one row at a time, fails here before it is slow in production.

Counted at the driver (aiosqlite's execute, asyncpg's fetch/execute), transaction control
and connection set-up aside. The figures are the count the page runs today; lower one when
a change makes a page cheaper, never raise one without saying why in the commit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite
import asyncpg
import pytest

from tenants.audit.record import SYSTEM
from tenants.messaging import accept as sending
from tenants.messaging.tables import Campaign, Message
from tests.conftest import login
from tests.factories import HX, fund

NOT_COUNTED = re.compile(
    r"\s*(PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START TRANSACTION|RESET|UNLISTEN"
    r"|CLOSE|SELECT pg_advisory_unlock_all)",
    re.I,
)

# page -> the most statements one request may run (the page as it is today).
# Every page: the session, its user, the account, the grants, the branding chain and the
# account switcher (6); then its own reads.
BUDGETS = {
    # + notices, subtree, today's and the subtree's usage (the member count and the time
    # zone come from the per-process memo)
    "dashboard": 5,
    # + the page of messages, the campaign names (a first page holding every match is its
    # own total; past 50 the total is one capped count more)
    "messages log": 3,
    "messages log poll": 2,  # htmx's table alone: + the page of messages (no campaign names)
    "message page": 6,  # + the message, its events, its MMS media, short links, rich content
    # + the campaign, its batch, status counts, whether it has tracked links (the click
    # figures only for a send that has some)
    "progress fragment": 5,
    "campaigns": 5,  # + campaigns, batches, status counts, scheduled ones
}


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The statements run inside the block, by any thread (the test client's app runs in
    its own)."""
    seen: list[str] = []
    patched: list[tuple[type, str, Any]] = []

    def counting(cls: type, name: str) -> None:
        real = getattr(cls, name)

        def wrapper(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not NOT_COUNTED.match(query):
                seen.append(" ".join(query.split())[:120])
            return real(self, query, *args, **kwargs)

        patched.append((cls, name, real))
        setattr(cls, name, wrapper)

    for name in ("execute", "execute_fetchall", "executemany"):
        counting(aiosqlite.Connection, name)
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        counting(asyncpg.connection.Connection, name)
    try:
        yield seen
    finally:
        for cls, name, real in reversed(patched):
            setattr(cls, name, real)


async def _pages(demo: dict[str, int]) -> dict[str, tuple[str, dict[str, str]]]:
    """Each page's path, after a 30-recipient campaign of Northwind's went out."""
    await fund(demo["northwind"], 1_000)
    await sending.accept_send(
        sending.SendRequest(
            account_id=demo["northwind"],
            numbers=[f"+614123450{i:02d}" for i in range(30)],
            body="Spring sale",
            campaign_name="Spring sale",
            permissions=sending.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    message = (
        await Message.select(Message.id).where(Message.account_id == demo["northwind"]).first()
    )
    campaign = (
        await Campaign.select(Campaign.id).where(Campaign.account_id == demo["northwind"]).first()
    )
    assert message and campaign, "the demo tree has messages and a campaign"
    return {
        "dashboard": ("/", {}),
        "messages log": ("/messages", {}),
        "messages log poll": ("/messages", HX),
        "message page": (f"/messages/{message['id']}", {}),
        "progress fragment": (f"/campaigns/{campaign['id']}", HX),
        "campaigns": ("/campaigns", {}),
    }


@pytest.mark.parametrize("page", sorted(BUDGETS))
async def test_a_page_stays_within_its_statement_budget(client, demo, page):
    await login(client, "owner@northwind.test")
    path, headers = (await _pages(demo))[page]
    assert (await client.get(path, headers=headers)).status_code == 200  # warm
    with counted_statements() as statements:
        answer = await client.get(path, headers=headers)
    assert answer.status_code == 200
    assert len(statements) <= BUDGETS[page], "\n".join(statements)
    assert statements, "the counter saw the page's statements"


async def test_the_campaigns_index_runs_as_many_statements_for_three_campaigns_as_for_one(
    client, demo
):
    await login(client, "owner@northwind.test")
    path, _ = (await _pages(demo))["campaigns"]
    assert (await client.get(path)).status_code == 200  # warm
    with counted_statements() as one:
        assert (await client.get(path)).status_code == 200
    for name in ("Summer sale", "Winter sale"):
        await sending.accept_send(
            sending.SendRequest(
                account_id=demo["northwind"],
                numbers=["+61412345001", "+61412345002"],
                body=name,
                campaign_name=name,
                permissions=sending.PLATFORM_SEND,
            ),
            actor=SYSTEM,
        )
    assert (await client.get(path)).status_code == 200  # the new version read once
    with counted_statements() as three:
        answer = await client.get(path)
    assert answer.status_code == 200
    assert "Summer sale" in answer.text and "Winter sale" in answer.text
    assert len(three) == len(one), "\n".join(three)
