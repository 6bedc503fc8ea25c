"""filter_recipients is set-based: 100k phones cost a bounded number of queries."""

from __future__ import annotations

import math

import pytest

from tenants.consent import events as consent_events
from tenants.consent.filter import FILTER_CHUNK, filter_recipients
from tenants.consent.tables import GlobalSuppression
from tenants.db import DB

N = 100_000


@pytest.fixture
def query_counter(monkeypatch):
    calls: list[str] = []
    original = DB.run_querystring

    async def counting(querystring, *args, **kwargs):
        calls.append(str(querystring)[:80])
        return await original(querystring, *args, **kwargs)

    monkeypatch.setattr(DB, "run_querystring", counting)
    return calls


async def test_filter_100k_phones_in_bounded_queries(world, query_counter):
    account = world.accounts["alpha-one"]
    phones = [f"+61412{i:06d}" for i in range(N)]
    opted_out = phones[::100]  # 1,000 numbers, opted out in the master's scope
    await consent_events.record_opt_outs_bulk(
        world.accounts["alpha"], opted_out, "sms", source="import", batch="seed"
    )
    await GlobalSuppression.insert(*[GlobalSuppression(phone=p) for p in phones[1::1000]])
    raw = [p.replace("+61", "0") for p in phones] + ["nonsense", phones[0]]
    query_counter.clear()
    allowed, skipped = await filter_recipients(account, raw, "sms")
    chunks = math.ceil(N / FILTER_CHUNK)
    assert len(query_counter) <= 2 + 2 * chunks, len(query_counter)
    reasons: dict[str, int] = {}
    for _, reason in skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    assert reasons == {"opted_out": 1000, "globally_suppressed": 100, "invalid_number": 1}
    assert len(allowed) == N - 1100  # the repeated number counts once
    assert allowed[0] == phones[2] and allowed[-1] == phones[-1]


async def test_bulk_opt_out_is_set_based_and_idempotent(world, query_counter):
    phones = [f"+61412{i:06d}" for i in range(12_000)]
    query_counter.clear()
    changed = await consent_events.record_opt_outs_bulk(
        world.accounts["alpha"], phones, "sms", source="import", batch="a"
    )
    assert changed == 12_000
    assert len(query_counter) < 20
    again = await consent_events.record_opt_outs_bulk(
        world.accounts["alpha-one"],
        phones[:10] + ["+61412999999"],
        "sms",
        source="import",
        batch="b",
    )
    assert again == 1  # only the new number; the others were already out in the scope
    trace = await consent_events.explain(world.accounts["alpha-one"], phones[5], "sms")
    assert trace.status == "opted_out" and trace.deciding_event.source == "import"
