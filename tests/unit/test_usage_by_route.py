"""The usage report by country and by sender (usage_route_rollup) equals what was sent,
after late, duplicated and reordered reports: counted from the messages themselves."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from tenants.accounts.tree import get_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import run_sql
from tenants.errors import ValidationFailed
from tenants.messaging import accept as sending
from tenants.messaging import messages
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.messages import StatusReport
from tenants.numbers import numbers
from tenants.reports import usage

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
WIDE = usage.Period(date(2026, 1, 1), date(2026, 12, 31))
AU = [f"+6141300{n:04d}" for n in range(5)]
NZ = [f"+6421000{n:04d}" for n in range(3)]
GB = [f"+4474001234{n:02d}" for n in range(2)]


async def _sender(account_id: int, value: str) -> None:
    view = await numbers.register_sender_id(
        actor=SYSTEM, within_account_id=account_id, account_id=account_id, value=value
    )
    await numbers.decide_sender_id(actor=SYSTEM, sender_id_id=view.id, status="approved")


async def _send(account_id: int, to: list[str], sender: str) -> list[int]:
    result = await sending.accept_send(
        SendRequest(
            account_id=account_id,
            numbers=to,
            body="Sale on now " + "x" * 150,
            sender=sender,
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    return [a.message_id for a in result.accepted]


async def _scan(account_id: int, columns: str) -> dict[tuple[str, ...], tuple[int, int, int]]:
    """What the report must say, from the messages (sender is message.from_number)."""
    rows = await run_sql(
        f"SELECT {columns}, COUNT(*) AS n, SUM(segments) AS s, SUM(cost) AS c "  # noqa: S608 (test constants)
        f"FROM message WHERE account_id = {{}} AND direction = 'out' GROUP BY {columns}",
        account_id,
    )
    names = [c.strip() for c in columns.split(",")]
    return {tuple(str(r[n]) for n in names): (int(r["n"]), int(r["s"]), int(r["c"])) for r in rows}


async def _report(account_id: int, group_by: tuple[str, ...]) -> dict:  # type: ignore[type-arg]
    found = await usage.usage_report(await get_account(account_id), WIDE, group_by)
    return {
        tuple(str(getattr(r, g)) for g in group_by): (
            r.counts.messages,
            r.counts.segments,
            r.counts.credits,
        )
        for r in found.rows
    }


async def _send_both(account: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """AU and NZ recipients from Northwind, AU and GB ones from Promo, all at T0."""
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    await _sender(account, "Northwind")
    await _sender(account, "Promo")
    monkeypatch.setattr(sending, "now", lambda: T0)
    ids = await _send(account, AU + NZ, "Northwind")
    return ids + await _send(account, AU[:2] + GB, "Promo")


def _reports(ids: list[int], rnd: random.Random) -> list[list[StatusReport]]:
    """Each message: sent, then a final status; some redelivered, all shuffled."""
    out = []
    for n, i in enumerate(ids):
        final = ("delivered", "failed", "rejected", "read")[n % 4]
        out.append(StatusReport(i, "sent", T0 + timedelta(seconds=1), None, f"r{i}", f"e{i}s"))
        code = "EXPIRED" if final == "failed" else None
        out.append(StatusReport(i, final, T0 + timedelta(seconds=5), code, f"r{i}", f"e{i}f"))
        if n % 3 == 0:  # a late report, older than the final one
            out.append(StatusReport(i, "sent", T0 + timedelta(seconds=2), None, f"r{i}", f"e{i}l"))
    out += rnd.sample(out, k=len(out) // 3)  # duplicates
    rnd.shuffle(out)
    return [out[n : n + 3] for n in range(0, len(out), 3)]


async def test_usage_by_country_and_sender_equals_what_was_sent(world, monkeypatch):
    account = world.accounts["alpha"]
    ids = await _send_both(account, monkeypatch)
    assert await _report(account, ("country", "sender")) == {
        ("AU", "Northwind"): (5, 10, 10),
        ("NZ", "Northwind"): (3, 6, 6),
        ("AU", "Promo"): (2, 4, 4),
        ("GB", "Promo"): (2, 4, 4),
    }
    for batch in _reports(ids, random.Random(16)):
        await messages.ingest_status_reports(batch)
    assert await _report(account, ("country",)) == await _scan(account, "country")
    assert await _report(account, ("sender",)) == await _scan(account, "from_number")
    assert await _report(account, ("country", "status")) == await _scan(account, "country, status")
    assert await _report(account, ("sender", "status")) == await _scan(
        account, "from_number, status"
    )
    # every message once: what was sent, by either grouping, and as the coarse roll-up says
    by_country = (await usage.usage_report(await get_account(account), WIDE, ("country",))).totals
    overall = (await usage.usage_report(await get_account(account), WIDE, ())).totals
    assert by_country == overall == usage.Counts(len(ids), 2 * len(ids), 2 * len(ids))
    statuses = await _report(account, ("status",))
    assert statuses == await _scan(account, "status")
    assert {k[0]: v[0] for k, v in statuses.items()} == {
        "delivered": 3,
        "failed": 3,
        "rejected": 3,
        "read": 3,
    }


async def test_a_master_sees_its_subtree_by_sender_and_a_unknown_group_is_refused(world):
    master, branch = world.accounts["alpha"], world.accounts["alpha-one"]
    await ledger.adjust(master, 100, reason="test credits", actor=SYSTEM)
    await ledger.adjust(branch, 100, reason="test credits", actor=SYSTEM)
    await _sender(master, "Master")
    await _sender(branch, "Branch")
    await _send(master, AU[:1], "Master")
    await _send(branch, AU[1:3], "Branch")
    report = await usage.usage_report(await get_account(master), WIDE, ("account", "sender"))
    assert [(r.account_id, r.sender, r.counts.messages) for r in report.rows] == sorted(
        [(master, "Master", 1), (branch, "Branch", 2)]
    )
    assert usage.parse_group_by("country,sender") == ("country", "sender")
    with pytest.raises(ValidationFailed) as exc:
        usage.parse_group_by("country,region")
    assert "region" in exc.value.errors["group_by"]


async def _route_daily() -> dict[str, tuple[int, int, int, int, str, str, str]]:
    rows = await run_sql(
        "SELECT key, account_id, day, country, sender, messages, segments, credits "
        "FROM usage_route_daily"
    )
    return {
        r["key"]: (
            int(r["messages"]),
            int(r["segments"]),
            int(r["credits"]),
            int(r["account_id"]),
            str(r["day"])[:10],
            r["country"],
            r["sender"],
        )
        for r in rows
    }


async def test_usage_route_daily_is_the_route_roll_up_without_channel_and_status(
    world, monkeypatch
):
    """Only an accept moves usage_route_daily; the reports by country or sender read it and
    say what the full route roll-up says; the migration's backfill writes the same rows."""
    account = world.accounts["alpha"]
    ids = await _send_both(account, monkeypatch)
    accepted = await _route_daily()
    assert sorted(v[:3] + v[5:] for v in accepted.values()) == [
        (2, 4, 4, "AU", "Promo"),
        (2, 4, 4, "GB", "Promo"),
        (3, 6, 6, "NZ", "Northwind"),
        (5, 10, 10, "AU", "Northwind"),
    ]
    assert {f"{account}|2026-03-01|AU|Promo", f"{account}|2026-03-01|NZ|Northwind"} <= set(
        accepted
    )  # the key the upsert of the next accept targets
    for batch in _reports(ids, random.Random(16)):
        await messages.ingest_status_reports(batch)
    assert await _route_daily() == accepted  # status changes move nothing here
    assert (
        usage._table(("country",))
        == usage._table(("account", "day", "sender"))
        == ("usage_route_daily")
    )
    assert (
        usage._table(("country", "status"))
        == usage._table(("sender", "channel"))
        == ("usage_route_rollup")
    )
    assert await _report(account, ("country", "sender")) == await _scan(
        account, "country, from_number"
    )
    master = await get_account(account)
    # the same figures as the full route roll-up, which a grouping by status reads
    for group in ("country", "sender"):
        detailed = await usage.usage_report(master, WIDE, (group, "status"))
        summed: dict[str, usage.Counts] = {}
        for row in detailed.rows:
            key = getattr(row, group)
            summed[key] = summed.get(key, usage.Counts()) + row.counts
        coarse = await usage.usage_report(master, WIDE, (group,))
        assert {getattr(r, group): r.counts for r in coarse.rows} == summed

    backfill = _migration("usage_route_daily_backfill")
    await run_sql("DELETE FROM usage_route_daily")
    await backfill.backfill()
    assert await _route_daily() == accepted


def _migration(suffix: str):  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = next((Path(__file__).parents[2] / "migrations").glob(f"*_{suffix}.py"))
    spec = importlib.util.spec_from_file_location(suffix, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
