"""Send page (summary, dry run, send, template-only users), messages log and timeline,
campaign progress with pause / resume / cancel."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging import messages
from tenants.messaging.tables import Batch, Message
from tenants.templates import templates
from tests.conftest import login

HX = {"HX-Request": "true"}
NUMBERS = "+61400000001\n+61400000002, 0400 000 003"


async def fund(account_id: int, amount: int = 1000) -> None:
    await ledger.adjust(account_id, amount, reason="test credits", actor=SYSTEM)


def form(csrf: str, **values: str) -> dict[str, str]:
    base = {
        "_csrf_token": csrf,
        "numbers": NUMBERS,
        "mode": "text",
        "body": "Hello there",
        "channel": "sms",
        "when": "now",
        "action": "preview",
    }
    return {**base, **values}


async def test_preview_shows_the_summary_and_writes_nothing(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    page = await client.get("/send")
    assert page.status_code == 200 and 'name="body"' in page.text
    r = await client.post("/send", data=form(csrf, numbers=NUMBERS + "\nnot-a-number"), headers=HX)
    assert r.status_code == 200, r.text
    assert "3 recipients accepted, 1 skipped" in r.text
    assert "invalid number: 1" in r.text
    assert "total cost 3 credits" in r.text
    assert await Message.count() == 0
    assert await ledger.balance(world.accounts["alpha"]) == 1000


async def test_send_writes_the_outbox_and_reserves_the_cost(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    r = await client.post("/send", data=form(csrf, action="send"), headers=HX)
    assert r.status_code == 201, r.text
    assert "3 accepted, 0 skipped" in r.text
    assert await Message.count() == 3
    assert await ledger.balance(world.accounts["alpha"]) == 997


async def test_validation_errors_are_inline_422(client, world):
    csrf = await login(client, world.users["Sender"])
    r = await client.post("/send", data=form(csrf, numbers="", body=""), headers=HX)
    assert r.status_code == 422
    assert "Add at least one recipient" in r.text
    assert 'class="field-error"' in r.text


async def test_support_sends_templates_only(client, world):
    account = world.accounts["alpha"]
    await fund(account)
    template = await templates.ensure_approved_template(
        actor=SYSTEM,
        account_id=account,
        name="Reminder",
        body="Hi {{first_name|there}}, see you at {{time}}.",
        shared_down=False,
    )
    csrf = await login(client, world.users["Support"])
    page = await client.get("/send")
    assert page.status_code == 200
    assert 'name="body"' not in page.text and "Reminder" in page.text
    denied = await client.post("/send", data=form(csrf, action="send"), headers=HX)
    assert denied.status_code == 403
    assert await Message.count() == 0
    ok = await client.post(
        "/send",
        data=form(
            csrf, mode="template", template_id=str(template.id), variables="time=3pm", action="send"
        ),
        headers=HX,
    )
    assert ok.status_code == 201, ok.text
    bodies = {r["body"] for r in await Message.select(Message.body)}
    assert bodies == {"Hi there, see you at 3pm."}


async def test_messages_log_and_timeline_explain_errors(client, world):
    account = world.accounts["alpha"]
    await fund(account)
    csrf = await login(client, world.users["Sender"])
    await client.post("/send", data=form(csrf, action="send"), headers=HX)
    ids = sorted(r["id"] for r in await Message.select(Message.id))
    await messages.ingest_status_reports(
        [messages.StatusReport(ids[0], "failed", datetime.now(UTC), "HANDSET_FULL", "p1", "e1")]
    )
    log = await client.get("/messages?status=failed")
    assert log.status_code == 200
    assert f'id="message-{ids[0]}"' in log.text and f'id="message-{ids[1]}"' not in log.text
    detail = await client.get(f"/messages/{ids[0]}")
    assert "message memory is full" in detail.text
    await login(client, "sender@beta.test")
    assert (await client.get(f"/messages/{ids[0]}")).status_code == 404


async def test_campaign_progress_pause_resume_cancel_refunds(client, world):
    account = world.accounts["alpha"]
    await fund(account)
    csrf = await login(client, world.users["Sender"])
    r = await client.post(
        "/send", data=form(csrf, action="send", campaign_name="Spring sale"), headers=HX
    )
    assert r.status_code == 201
    campaign_id = int(re.search(r"/campaigns/(\d+)", r.text).group(1))
    page = await client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200 and "Spring sale" in page.text
    assert 'hx-trigger="every 2s"' in page.text
    paused = await client.post(
        f"/campaigns/{campaign_id}/pause", data={"_csrf_token": csrf}, headers=HX
    )
    assert paused.status_code == 200 and ">paused<" in paused.text
    resumed = await client.post(
        f"/campaigns/{campaign_id}/resume", data={"_csrf_token": csrf}, headers=HX
    )
    assert ">active<" in resumed.text
    assert await ledger.balance(account) == 997
    cancelled = await client.post(
        f"/campaigns/{campaign_id}/cancel", data={"_csrf_token": csrf}, headers=HX
    )
    assert ">cancelled<" in cancelled.text
    assert await ledger.balance(account) == 1000
    statuses = {r["status"] for r in await Message.select(Message.status)}
    assert statuses == {"enqueued_failed"}
    listing = await client.get("/campaigns")
    assert "Spring sale" in listing.text


async def test_scheduled_send_waits_and_can_be_cancelled(client, world):
    account = world.accounts["alpha"]
    await fund(account)
    csrf = await login(client, world.users["Sender"])
    day = (date.today() + timedelta(days=30)).isoformat()
    r = await client.post(
        "/send", data=form(csrf, action="send", when="later", send_at=f"{day}T09:00"), headers=HX
    )
    assert r.status_code == 201, r.text
    assert f"Scheduled for {day} 09:00" in r.text
    batch = await Batch.select().first()
    assert batch["state"] == "scheduled"
    listing = await client.get("/campaigns")
    assert f'id="batch-{batch["id"]}"' in listing.text
    await client.post(f"/campaigns/batches/{batch['id']}/cancel", data={"_csrf_token": csrf})
    assert await ledger.balance(account) == 1000


async def test_scheduled_sends_are_listed_soonest_first(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    later, sooner = (date.today() + timedelta(days=d) for d in (30, 10))
    for day, body in ((later, "Later one"), (sooner, "Sooner one")):
        r = await client.post(
            "/send",
            data=form(csrf, action="send", when="later", send_at=f"{day}T09:00", body=body),
            headers=HX,
        )
        assert r.status_code == 201, r.text
    listing = (await client.get("/campaigns")).text
    assert listing.index("Sooner one") < listing.index("Later one")


async def test_viewer_cannot_send_or_manage_campaigns(client, world):
    await login(client, world.users["Viewer"])
    assert (await client.get("/send")).status_code == 403
    assert (await client.get("/campaigns")).status_code == 403
    assert (await client.get("/messages")).status_code == 200


async def test_a_double_submitted_form_sends_once(client, world):
    account = world.accounts["alpha"]
    await fund(account)
    csrf = await login(client, world.users["Sender"])
    page = await client.get("/send")
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.text).group(1)
    for _ in range(2):
        r = await client.post(
            "/send", data=form(csrf, action="send", idempotency_key=key), headers=HX
        )
        assert r.status_code == 201
    assert await Message.count() == 3
    assert await ledger.balance(account) == 997


async def test_log_and_message_poll_until_every_status_shown_is_final(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    await client.post("/send", data=form(csrf, action="send"), headers=HX)
    ids = sorted(r["id"] for r in await Message.select(Message.id))
    polling = 'hx-trigger="every 2s"'

    log = await client.get("/messages")
    assert polling in log.text.split('id="results"')[1].split(">")[0]
    fragment = await client.get("/messages", headers=HX)
    assert fragment.text.lstrip().startswith('<section class="card" id="results"')
    assert polling in fragment.text and "<html" not in fragment.text
    detail = await client.get(f"/messages/{ids[0]}", headers=HX)
    assert polling in detail.text and "<html" not in detail.text
    assert 'id="message-status"' in detail.text

    at = datetime.now(UTC)
    await messages.ingest_status_reports(
        [
            messages.StatusReport(i, status, at, code, f"p{i}", f"e{i}")
            for i, status, code in zip(
                ids, ("delivered", "failed", "delivered"), (None, "HANDSET_FULL", None), strict=True
            )
        ]
    )
    # All final: the answer carries no trigger, so htmx stops asking.
    done = await client.get("/messages", headers=HX)
    assert polling not in done.text and f'id="message-{ids[0]}"' in done.text
    assert "status-delivered" in done.text and "status-failed" in done.text
    assert polling not in (await client.get(f"/messages/{ids[1]}", headers=HX)).text
    assert polling not in (await client.get(f"/messages/{ids[1]}")).text


async def test_skipped_numbers_are_listed_after_the_send_and_on_the_campaign(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    numbers = NUMBERS + "\nnot-a-number\n=HYPERLINK(1)"
    preview = await client.post("/send", data=form(csrf, numbers=numbers), headers=HX)
    assert 'id="skipped-list"' in preview.text and "not-a-number" in preview.text
    r = await client.post(
        "/send",
        data=form(csrf, numbers=numbers, action="send", campaign_name="Skips"),
        headers=HX,
    )
    assert r.status_code == 201, r.text
    listed = r.text.split('id="skipped-list"')[1].split("</details>")[0]
    assert "2 skipped recipients" in listed
    assert "<td>not-a-number</td><td>invalid number</td>" in listed
    batch_id = int(re.search(r"/messages/batches/(\d+)/skipped\.csv", listed).group(1))
    campaign_id = int(re.search(r"/campaigns/(\d+)", r.text).group(1))
    page = await client.get(f"/campaigns/{campaign_id}")
    assert "<td>not-a-number</td><td>invalid number</td>" in page.text
    assert f"/messages/batches/{batch_id}/skipped.csv" in page.text

    got = await client.get(f"/messages/batches/{batch_id}/skipped.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    # Each row is the number as given and why; a formula is defused.
    assert got.text.splitlines() == [
        "number,reason",
        "not-a-number,invalid_number",
        "'=HYPERLINK(1),invalid_number",
    ]
    await login(client, "sender@beta.test")
    assert (await client.get(f"/messages/batches/{batch_id}/skipped.csv")).status_code == 404


async def test_campaign_list_and_page_agree_on_finished(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    r = await client.post(
        "/send", data=form(csrf, action="send", campaign_name="Done soon"), headers=HX
    )
    campaign_id = int(re.search(r"/campaigns/(\d+)", r.text).group(1))
    row = (await client.get("/campaigns")).text.split(f'id="campaign-{campaign_id}"')[1]
    assert '<span class="badge state-active">active</span>' in row.split("</tr>")[0]
    page = await client.get(f"/campaigns/{campaign_id}")
    assert 'class="progress-bar"' in page.text and 'value="0"' in page.text
    at = datetime.now(UTC)
    ids = [r["id"] for r in await Message.select(Message.id)]
    await messages.ingest_status_reports(
        [messages.StatusReport(i, "delivered", at, None, f"p{i}", f"e{i}") for i in ids]
    )
    page = await client.get(f"/campaigns/{campaign_id}")
    assert '<span class="badge state-finished" id="campaign-state">finished</span>' in page.text
    assert 'value="100"' in page.text and 'hx-trigger="every 2s"' not in page.text
    row = (await client.get("/campaigns")).text.split(f'id="campaign-{campaign_id}"')[1]
    assert '<span class="badge state-finished">finished</span>' in row.split("</tr>")[0]


async def test_a_past_at_time_is_refused_with_the_field_and_nothing_is_sent(client, world):
    await fund(world.accounts["alpha"])
    csrf = await login(client, world.users["Sender"])
    r = await client.post(
        "/send",
        data=form(csrf, action="send", when="later", send_at="2020-01-01T09:00"),
        headers=HX,
    )
    assert r.status_code == 422, r.text
    assert "That time has passed" in r.text and 'name="send_at"' in r.text
    assert await Message.count() == 0 and await Batch.count() == 0
    assert await ledger.balance(world.accounts["alpha"]) == 1000
    # Without JavaScript the whole page comes back with the same message.
    plain = await client.post(
        "/send", data=form(csrf, action="send", when="later", send_at="2020-01-01T09:00")
    )
    assert plain.status_code == 422 and "<html" in plain.text
    assert "That time has passed" in plain.text
