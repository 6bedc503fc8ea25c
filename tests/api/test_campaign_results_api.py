"""GET /api/v1/campaigns/{id}/results.csv: the campaign results export of the page, behind
`messages.export`, for the key's own account only."""

from __future__ import annotations

import csv
import io

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tests.conftest import login
from tests.pages.test_campaign_results_export import campaign


async def test_the_api_streams_the_same_rows(client, world, make_key):
    await ledger.adjust(world.accounts["alpha"], 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    first = await campaign(client, csrf, "+61400000001\n+61400000002", "Api sale", "Api")
    page_rows = list(
        csv.DictReader(io.StringIO((await client.get(f"/campaigns/{first}/results.csv")).text))
    )
    client.cookies.clear()
    url = f"/api/v1/campaigns/{first}/results.csv"
    answer = await client.get(url, headers=await make_key("alpha", "Sender"))
    assert answer.status_code == 200, answer.text
    assert list(csv.DictReader(io.StringIO(answer.text))) == page_rows
    assert (await client.get(url, headers=await make_key("alpha", "Viewer"))).status_code == 403
    assert (await client.get(url, headers=await make_key("beta", "Owner"))).status_code == 404
    assert (await client.get(url)).status_code == 401
    bad = await client.get("/api/v1/campaigns/0/results.csv", headers=await make_key())
    assert bad.status_code == 404, bad.text  # no campaign has id 0
