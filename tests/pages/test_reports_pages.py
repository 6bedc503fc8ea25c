"""Reports pages and the dashboard: usage with chart, table and CSV; the finance spend
report reconciling to the ledger; the dashboard's activity from the roll-up; who gets in."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from tenants.accounts.tree import create_sub_account, get_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger, transfers
from tenants.db import run_sql
from tenants.messaging import accept as sending
from tenants.messaging import messages
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.messages import StatusReport
from tenants.reports import spend, usage
from tests.conftest import login

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")


async def send(account_id: int, numbers: list[str], body: str = "Hello") -> list[int]:
    result = await sending.accept_send(
        SendRequest(account_id=account_id, numbers=numbers, body=body, permissions=PLATFORM_SEND),
        actor=SYSTEM,
    )
    return [a.message_id for a in result.accepted]


async def seed(world) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Alpha buys 500, allocates 100 to Alpha One, each sends; one of One's is rejected
    (refunded), one delivered, one reported late and twice; Alpha reclaims 10."""
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await ledger.adjust(alpha, 500, reason="bought", actor=SYSTEM)
    await transfers.transfer(
        actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=100, idempotency_key="a1"
    )
    own = await send(alpha, ["+61400000001", "+61400000002"])
    sub = await send(one, ["+61400000011", "+61400000012", "+61400000013"], "Private text")
    at = messages.now()
    await messages.ingest_status_reports(
        [
            StatusReport(sub[0], "rejected", at, event_id="r0"),
            StatusReport(sub[1], "delivered", at + timedelta(seconds=2), event_id="d1"),
            StatusReport(sub[1], "sent", at, event_id="s1"),  # late
            StatusReport(sub[1], "delivered", at + timedelta(seconds=2), event_id="d1"),  # twice
            StatusReport(own[0], "delivered", at, event_id="d2"),
        ]
    )
    await transfers.transfer(
        actor=SYSTEM,
        within_account_id=alpha,
        from_account_id=one,
        to_account_id=alpha,
        amount=10,
        idempotency_key="r1",
    )
    return {"own": own, "sub": sub}


async def test_the_spend_report_reconciles_to_the_ledger(world):
    await seed(world)
    alpha = await get_account(world.accounts["alpha"])
    today = await usage.today_in(alpha.id)
    report = await spend.spend_report(alpha, usage.Period(today, today))
    by_slug = {r.slug: r for r in report.rows}
    assert [r.slug for r in report.rows] == ["alpha", "alpha-one"]
    master, one = by_slug["alpha"], by_slug["alpha-one"]
    assert (master.adjustments, master.allocated_out, master.allocated_in, master.spent) == (
        500,
        -100,
        10,
        2,
    )
    assert (one.allocated_in, one.allocated_out, one.spent, one.refunded) == (100, -10, 3, 1)
    for row in report.rows:
        ledger_sum = await run_sql(
            "SELECT COALESCE(SUM(delta), 0) AS s FROM credit_ledger WHERE account_id = {}",
            row.account_id,
        )
        assert row.net == int(ledger_sum[0]["s"]) == (await get_account(row.account_id)).balance
    totals = report.totals
    sums = await run_sql("SELECT kind, SUM(delta) AS s FROM credit_ledger GROUP BY kind")
    by_kind = {r["kind"]: int(r["s"]) for r in sums}
    assert totals.spent == -by_kind["spend"] and totals.refunded == by_kind["refund"]
    assert totals.allocated_in + totals.allocated_out == 0  # transfers inside the subtree
    assert totals.net == sum(by_kind.values())
    # a period that ends before today holds nothing
    before = await spend.spend_report(
        alpha, usage.Period(today - timedelta(days=9), today - timedelta(days=1))
    )
    assert before.totals.net == 0


async def test_usage_page_table_chart_and_csv_without_any_inline_script(client, world):
    await seed(world)
    await login(client, world.users["Owner"])
    page = await client.get("/reports", params={"period": "week", "group_by": "status"})
    assert page.status_code == 200
    html = page.text
    assert 'id="usage-chart"' in html and "<rect" in html and 'id="usage-table"' in html
    assert 'id="daily-chart"' in html and 'id="daily-table"' in html
    assert 'style="' not in html and not INLINE_SCRIPT.search(html)
    assert "Private text" not in html and "+6140000001" not in html
    assert '<th class="num" id="usage-total-messages">5</th>' in html
    by_account = await client.get("/reports", params={"group_by": "account"})
    assert "Alpha One" in by_account.text and "Alpha Master" in by_account.text
    download = await client.get(
        "/reports/usage.csv", params={"period": "day", "group_by": "status"}
    )
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["status"]] = totals.get(r["status"], 0) + int(r["messages"])
    assert totals == {"delivered": 2, "enqueued": 2, "rejected": 1}
    spend_csv = await client.get("/reports/spend.csv", params={"period": "month"})
    spend_rows = list(csv.DictReader(io.StringIO(spend_csv.text)))
    assert spend_rows[-1]["account"] == "Total"
    assert int(spend_rows[-1]["spent"]) == 5 and int(spend_rows[-1]["refunded"]) == 1


async def test_bad_periods_are_422_naming_the_field(client, world):
    await login(client, world.users["Owner"])
    for params, field in (
        ({"period": "custom", "from": "nope", "to": "2026-03-01"}, "from"),
        ({"period": "custom", "from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"period": "year"}, "period"),
        ({"group_by": "region"}, "group_by"),
    ):
        page = await client.get("/reports", params=params)
        assert page.status_code == 422, params
        assert f'id="report-{field}-error"' in page.text, params
    assert (await client.get("/reports/usage.csv", params={"period": "year"})).status_code == 422


async def test_who_sees_the_reports(client, world):
    for role, usage_status, spend_status in (
        ("Finance", 200, 200),
        ("Viewer", 200, 200),
        ("Support", 403, 403),
    ):
        await login(client, world.users[role])
        assert (await client.get("/reports")).status_code == usage_status, role
        assert (await client.get("/reports/spend")).status_code == spend_status, role


async def test_the_dashboard_shows_activity_and_counts_the_sub_accounts_it_lists(client, world):
    await seed(world)
    grandchild = await create_sub_account(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        parent_id=world.accounts["alpha-one"],
        name="Alpha One Shop",
        slug="alpha-one-shop",
    )
    await login(client, world.users["Owner"])
    page = (await client.get("/")).text
    # one child listed in the table, one more below it: no "2 above a table of 1"
    assert re.search(r'id="sub-account-count">1<', page)
    assert "and 1 below them" in page
    assert 'id="activity-chart"' in page and 'id="activity-table"' in page
    # the master's own: 2 sent, 1 delivered of 1 finished
    assert re.search(r'id="message-count">2<', page)
    assert re.search(r'id="delivery-rate">100.0%<', page)
    assert re.search(r'id="credits-spent">2<', page)
    # the subtree rolled up by account, counts only
    assert 'id="subtree-usage"' in page and grandchild.name in page
    assert "Private text" not in page and "+61400000011" not in page
    assert 'style="' not in page and not INLINE_SCRIPT.search(page)
    # the branch user sees its own activity: 3 messages, 1 delivered of 2 finished
    await login(client, "sender@alpha-one.test")
    branch = (await client.get("/")).text
    assert re.search(r'id="message-count">3<', branch)
    assert re.search(r'id="delivery-rate">50.0%<', branch)
    assert re.search(r'id="credits-spent">2<', branch)
    # Support holds no reports.view: the dashboard without activity
    await login(client, world.users["Support"])
    support = (await client.get("/")).text
    assert 'id="activity"' not in support and 'id="balance"' in support


async def test_usage_page_and_csv_by_country_and_by_sender(client, world):
    await seed(world)
    await login(client, world.users["Owner"])
    page = await client.get("/reports", params={"period": "week", "group_by": "country"})
    assert page.status_code == 200
    assert '<option value="country" selected>' in page.text
    assert "<td>AU</td>" in page.text
    assert '<th class="num" id="usage-total-messages">5</th>' in page.text
    download = await client.get(
        "/reports/usage.csv", params={"period": "week", "group_by": "country"}
    )
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {r["country"] for r in rows} == {"AU"}
    assert sum(int(r["messages"]) for r in rows) == 5
    # the master may not read the sub-account's data: its senders are summed, not named
    by_sender = await client.get("/reports", params={"period": "week", "group_by": "sender"})
    assert by_sender.status_code == 200
    assert "sub-accounts&#39; senders" in by_sender.text
    assert '<th class="num" id="usage-total-messages">5</th>' in by_sender.text


async def test_usage_page_lists_the_short_link_clicks_per_day(client, world):
    from tenants.clock import now
    from tenants.links.tables import LinkClick

    for account, bot in ((world.accounts["alpha-one"], False), (world.accounts["alpha"], True)):
        await LinkClick.insert(
            LinkClick(link_id=1, account_id=account, message_id=1, batch_id=1, bot=bot, at=now())
        )
    await login(client, world.users["Owner"])
    page = await client.get("/reports", params={"period": "week"})
    assert page.status_code == 200
    assert 'id="clicks-table"' in page.text
    assert '<th class="num" id="clicks-total">1</th>' in page.text
    assert '<th class="num" id="clicks-bot-total">1</th>' in page.text
    assert page.text.count("<tr><td>20") >= 7  # a row per day of the week, clicks or none
