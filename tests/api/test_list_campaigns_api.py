"""Campaigns to lists through the API and the send page: answered at once with the
campaign `accepting`, accepted by a worker a chunk at a time (tiny chunks here), sent
through the simulator, progress read from the batch's counters; a sibling gets 404."""

from __future__ import annotations

import re

import pytest

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.messaging import streamed
from tenants.messaging.tables import Batch, Message
from tests.conftest import login
from tests.factories import fund, wait_until


@pytest.fixture(autouse=True)
def _tiny_chunks(settings_env):
    settings_env(LIST_CHUNK_SIZE=3)


async def _club(account: int, count: int) -> int:
    lst = await contacts.create_list(actor=SYSTEM, account_id=account, name="Club")
    ids = [
        (
            await contacts.create_contact(
                actor=SYSTEM, account_id=account, phone=f"+614000{n:05d}", first_name=f"P{n}"
            )
        ).id
        for n in range(1, count + 1)
    ]
    await contacts.add_to_list(actor=SYSTEM, account_id=account, list_id=lst.id, contact_ids=ids)
    return lst.id


async def _delivered(campaign_id: int, headers: dict[str, str], client, count: int):  # type: ignore[no-untyped-def]
    async def done() -> dict | None:
        r = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=headers)
        body = r.json()
        return body if body["statuses"].get("delivered") == count else None

    return await wait_until(done, 30, what=f"{count} delivered messages")


async def test_the_api_answers_at_once_and_a_worker_accepts_and_sends_every_chunk(
    client, world, make_key, worker, simulator
):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _club(account, 8)
    await consent_events.record_opt_out(account, "+61400000004", "sms", source="manual")
    headers = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/messages",
        json={"list_ids": [list_id], "body": "Hi {{first_name}}", "campaign_name": "Club news"},
        headers={**headers, "Idempotency-Key": "club-1"},
    )
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["state"] == "accepting" and started["accepted"] == []
    campaign_id = started["campaign_id"]
    body = await _delivered(campaign_id, headers, client, 7)
    assert body["state"] == "finished"
    assert (body["accepted"], body["skipped"]) == (7, 1)
    assert body["skipped_by_reason"] == {"opted_out": 1}
    assert (body["total_cost"], body["spent"], body["refunded"]) == (7, 7, 0)
    assert await ledger.balance(account) == 93
    outbox = {o["to"]: o["submissions"] for o in simulator.outbox()}
    assert outbox == {f"+614000{n:05d}": 1 for n in range(1, 9) if n != 4}
    again = await client.post(
        "/api/v1/messages",
        json={"list_ids": [list_id], "body": "Hi {{first_name}}", "campaign_name": "Club news"},
        headers={**headers, "Idempotency-Key": "club-1"},
    )
    assert again.json()["campaign_id"] == campaign_id
    assert await Message.count() == 7
    sibling = await make_key("beta", "Owner")
    assert (
        await client.get(f"/api/v1/campaigns/{campaign_id}", headers=sibling)
    ).status_code == 404
    viewer = await make_key("alpha", "Viewer")
    assert (await client.get(f"/api/v1/campaigns/{campaign_id}", headers=viewer)).status_code == 403


async def test_the_api_refuses_a_siblings_list_and_keeps_the_inline_cap(client, world, make_key):
    account = world.accounts["alpha"]
    await fund(account, 100)
    theirs = await _club(world.accounts["beta"], 2)
    headers = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/messages",
        json={"list_ids": [theirs], "body": "Hi", "campaign_name": "Not mine"},
        headers=headers,
    )
    assert r.status_code == 422, r.text
    assert "list_ids" in r.text
    too_many = [f"+6140{n:07d}" for n in range(200_001)]
    r = await client.post(
        "/api/v1/messages",
        json={"to": too_many, "body": "Hi", "campaign_name": "Big"},
        headers=headers,
    )
    assert r.status_code == 422, r.text[:300]
    assert await Message.count() == 0 and await ledger.balance(account) == 100


async def test_the_send_page_redirects_to_the_campaign_which_polls_its_counters(
    client, world, worker, simulator
):
    account = world.accounts["alpha"]
    await fund(account, 2)  # the first chunk of 3 cannot be paid
    list_id = await _club(account, 5)
    csrf = await login(client, world.users["Sender"])
    form = {
        "_csrf_token": csrf, "list_ids": str(list_id), "mode": "text", "body": "Hi",
        "channel": "sms", "when": "now", "action": "send", "campaign_name": "Page club",
    }  # fmt: skip
    r = await client.post("/send", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    path = r.headers["location"]
    campaign_id = int(re.fullmatch(r"/campaigns/(\d+)", path).group(1))  # type: ignore[union-attr]

    async def stopped() -> str | None:
        page = await client.get(path)
        return page.text if 'id="stop-reason"' in page.text else None

    text = await wait_until(stopped, 30, what="the campaign to stop at the credit limit")
    assert "insufficient credits" in text
    assert 'data-stat="skipped">5<' in text and 'data-stat="accepted">0<' in text
    assert await ledger.balance(account) == 2
    csv_text = (
        await client.get(f"/messages/batches/{await _batch_of(campaign_id)}/skipped.csv")
    ).text
    assert csv_text.count("insufficient_credits") == 5
    hx = await client.post(
        "/send", data={**form, "campaign_name": "Htmx club"}, headers={"HX-Request": "true"}
    )
    assert hx.status_code == 201 and hx.headers["HX-Redirect"].startswith("/campaigns/")
    client.cookies.clear()
    await login(client, "sender@beta.test")
    assert (await client.get(path)).status_code == 404


async def _batch_of(campaign_id: int) -> int:
    from tenants.messaging.tables import Campaign

    row = await Campaign.select(Campaign.batch_id).where(Campaign.id == campaign_id).first()
    return int(row["batch_id"])


async def test_the_send_page_previews_a_campaign_to_a_list_a_chunk_at_a_time(
    client, world, monkeypatch
):
    account = world.accounts["alpha"]
    await fund(account, 100)
    list_id = await _club(account, 7)
    await consent_events.record_opt_out(account, "+61400000006", "sms", source="manual")
    csrf = await login(client, world.users["Sender"])
    form = {
        "_csrf_token": csrf, "list_ids": str(list_id), "mode": "text", "body": "Hi {{first_name}}",
        "channel": "sms", "when": "now", "action": "preview", "campaign_name": "Preview club",
    }  # fmt: skip
    r = await client.post("/send", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    assert "6 recipients accepted, 1 skipped" in r.text
    assert "total cost 6 credits" in r.text and "opted out: 1" in r.text
    assert await Message.count() == 0 and await ledger.balance(account) == 100
    assert await Batch.count() == 0  # nothing written: no campaign, no batch
    assert 'id="preview-more"' not in r.text
    monkeypatch.setattr(streamed, "PREVIEW_CONTACTS", 3)  # one chunk of 3, then stop
    r = await client.post("/send", data=form, headers={"HX-Request": "true"})
    assert "3 recipients accepted, 0 skipped" in r.text
    assert 'id="preview-more"' in r.text and "first 3 contacts" in r.text
