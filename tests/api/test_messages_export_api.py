"""GET /api/v1/messages/export.csv and the list's search: `messages.export`, the key's
account only, the filters of the list."""

from __future__ import annotations

import csv
import io

from tests.pages.test_messages_export import HEADER, seed


async def test_export_needs_messages_export_and_keeps_to_the_account(client, world, make_key):
    ids = await seed(world.accounts["alpha"])
    await seed(world.accounts["beta"])
    viewer = await make_key("alpha", "Viewer")
    assert (await client.get("/api/v1/messages/export.csv", headers=viewer)).status_code == 403
    sender = await make_key("alpha", "Sender")
    r = await client.get("/api/v1/messages/export.csv", headers=sender)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["id"]) for row in rows] == sorted(ids.values(), reverse=True)
    r = await client.get("/api/v1/messages/export.csv?number=0413000006", headers=sender)
    assert [int(row["id"]) for row in csv.DictReader(io.StringIO(r.text))] == [ids["kind"]]
    bad = await client.get("/api/v1/messages/export.csv?status=bogus", headers=sender)
    assert bad.status_code == 422 and "status" in bad.json()["errors"]


async def test_list_searches_text_and_national_numbers_with_a_total(client, world, make_key):
    ids = await seed(world.accounts["alpha"])
    headers = await make_key("alpha", "Viewer")
    r = await client.get("/api/v1/messages?number=0413000006", headers=headers)
    assert r.status_code == 200 and [m["id"] for m in r.json()] == [ids["kind"]]
    assert r.headers["x-total-count"] == "1"
    r = await client.get("/api/v1/messages?q=lunch&limit=1", headers=headers)
    assert [m["id"] for m in r.json()] == [ids["other"]]
    r = await client.get("/api/v1/messages?limit=1", headers=headers)
    assert r.headers["x-total-count"] == "3" and "x-next-before-id" in r.headers
