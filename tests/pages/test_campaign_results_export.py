"""Campaign results as CSV, streamed like the messages export and behind `messages.export`
on the page and in the API: one row per recipient, only the campaign's, only the account's."""

from __future__ import annotations

import csv
import io
import re

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging import messages
from tests.conftest import login


def send_form(csrf: str, numbers: str, body: str, name: str) -> dict[str, str]:
    return {
        "_csrf_token": csrf,
        "numbers": numbers,
        "mode": "text",
        "body": body,
        "channel": "sms",
        "when": "now",
        "action": "send",
        "campaign_name": name,
    }


async def campaign(client, csrf: str, numbers: str, body: str, name: str) -> int:  # type: ignore[no-untyped-def]
    r = await client.post("/send", data=send_form(csrf, numbers, body, name))
    assert r.status_code == 201, r.text
    return int(re.search(r"/campaigns/(\d+)", r.text).group(1))  # type: ignore[union-attr]


async def test_results_csv_has_one_row_per_recipient_of_this_campaign(client, world):
    await ledger.adjust(world.accounts["alpha"], 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    first = await campaign(
        client, csrf, "+61400000001\n+61400000002\n+61400000003", "Sale one", "One"
    )
    await campaign(client, csrf, "+61400000009", "Other campaign", "Two")
    page = await client.get(f"/campaigns/{first}")
    assert f'href="/campaigns/{first}/results.csv"' in page.text
    export = await client.get(f"/campaigns/{first}/results.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert f"campaign-{first}-results.csv" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["to"] for r in rows) == ["+61400000001", "+61400000002", "+61400000003"]
    assert {r["body"] for r in rows} == {"Sale one"}
    assert "Other campaign" not in export.text
    view = await messages.get_campaign(world.accounts["alpha"], first)
    progress = await messages.batch_progress(world.accounts["alpha"], view.batch_id or 0)
    assert len(rows) == progress.accepted == sum(progress.by_status.values())
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert by_status == {k: v for k, v in progress.by_status.items() if v}
    assert sum(int(r["cost"]) for r in rows) == progress.spent - progress.refunded


async def test_results_need_the_permission_and_the_account(client, world):
    for slug in ("alpha", "alpha-one"):
        await ledger.adjust(world.accounts[slug], 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, "sender@alpha-one.test")
    sub = await campaign(client, csrf, "+61400000011", "Sub-account secret", "Sub")
    csrf = await login(client, world.users["Sender"])
    own = await campaign(client, csrf, "+61400000001", "Mine", "Mine")
    await login(client, world.users["Viewer"])
    assert (await client.get(f"/campaigns/{own}/results.csv")).status_code == 403
    # the master does not export its sub-account's numbers and texts; another tenant, 404
    await login(client, world.users["Owner"])
    answer = await client.get(f"/campaigns/{sub}/results.csv")
    assert answer.status_code == 404 and "Sub-account secret" not in answer.text
    await login(client, "sender@beta.test")
    assert (await client.get(f"/campaigns/{own}/results.csv")).status_code == 404
