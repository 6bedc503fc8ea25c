"""Tracked links on the pages, with plain form posts (JavaScript off): the send page's
option, the composer counting short links, the campaign's click figures and CSV, the
message page, and the branding link domain refused with the field named."""

from __future__ import annotations

import csv
import io
import re

from tenants.audit.record import SYSTEM
from tenants.branding.tables import AccountBranding
from tenants.credits import ledger
from tenants.links.tables import LinkClick, ShortLink
from tenants.messaging.tables import Message
from tenants.templates import templates
from tests.conftest import login

HX = {"HX-Request": "true"}
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
LONG = "https://shop.example.com/campaigns/2026/summer?utm_source=sms&utm_campaign=summer-sale"


def send_form(csrf: str, **values: str) -> dict[str, str]:
    base = {
        "_csrf_token": csrf,
        "numbers": "+61400000001\n+61400000002\n+61400000003",
        "mode": "text",
        "body": f"Summer sale: {LONG}. Reply STOP to opt out",
        "channel": "sms",
        "when": "now",
        "action": "send",
        "campaign_name": "Summer",
        "track_links": "1",
    }
    return {**base, **values}


async def test_campaign_figures_and_csv_after_clicks(client, world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    page = await client.get("/send")
    assert 'name="track_links"' in page.text
    r = await client.post("/send", data=send_form(csrf))  # a plain post, no HX
    assert r.status_code == 201, r.text
    campaign_id = int(re.search(r"/campaigns/(\d+)", r.text).group(1))
    links = await ShortLink.select().order_by(ShortLink.id)
    assert len(links) == 3 and {link["url"] for link in links} == {LONG}
    # Two recipients click, one of them twice; a preview bot fetches the third link.
    for code, agent in ((links[0]["code"], ANDROID), (links[0]["code"], ANDROID),
                        (links[1]["code"], ANDROID), (links[2]["code"], "facebookexternalhit/1.1")):  # fmt: skip
        assert (
            await client.get(f"/l/{code}", headers={"User-Agent": agent}, follow_redirects=False)
        ).status_code == 302
    page = await client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200
    stats = dict(re.findall(r'data-stat="([a-z-]+)">([^<]+)<', page.text))
    assert stats["messages-with-links"] == "3"
    assert stats["clicks"] == "3"
    assert stats["unique-clicks"] == "2"
    assert stats["click-rate"] == "66.7%"
    assert stats["bot-clicks"] == "1"
    assert LONG.replace("&", "&amp;") in page.text
    export = await client.get(f"/campaigns/{campaign_id}/clicks.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 4
    assert [r["agent"] for r in rows] == ["Android Chrome"] * 3 + ["bot"]
    assert {r["url"] for r in rows} == {LONG} and rows[-1]["bot"] == "yes"


async def test_the_message_page_shows_its_links_and_clicks(client, world):
    await ledger.adjust(world.accounts["alpha"], 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    assert (await client.post("/send", data=send_form(csrf, campaign_name=""))).status_code == 201
    link = await ShortLink.select().first()
    await client.get(f"/l/{link['code']}", headers={"User-Agent": ANDROID}, follow_redirects=False)
    page = await client.get(f"/messages/{link['message_id']}")
    assert page.status_code == 200
    assert 'id="message-links"' in page.text and link["code"] in page.text
    assert re.search(r'data-stat="link-clicks">1<', page.text)


async def test_the_composer_and_the_summary_count_the_short_link(client, world, settings_env):
    settings_env(LINK_BASE_URL="https://go.example.com")
    await ledger.adjust(world.accounts["alpha"], 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    body = f"Sale {LONG} {LONG}/more ok"  # 2 segments as typed, 1 with short links
    plain = await client.post(
        "/composer/count", data={"_csrf_token": csrf, "body": body}, headers=HX
    )
    tracked = await client.post(
        "/composer/count", data={"_csrf_token": csrf, "body": body, "track_links": "1"}, headers=HX
    )
    assert re.search(r'data-stat="segments">2<', plain.text)
    assert re.search(r'data-stat="segments">1<', tracked.text)
    assert "2 links counted as short links of 37 characters each" in tracked.text
    preview = await client.post(
        "/send", data=send_form(csrf, body=body, action="preview", campaign_name="")
    )
    assert preview.status_code == 200
    assert "3 recipients accepted, 0 skipped, 3 segments" in " ".join(preview.text.split())
    assert "checked" in re.search(
        r'<input type="checkbox" id="body-track-links"[^>]*>', preview.text
    ).group(0)
    untracked = await client.post(
        "/send", data=send_form(csrf, body=body, action="preview", track_links="")
    )
    assert "3 recipients accepted, 0 skipped, 6 segments" in " ".join(untracked.text.split())
    assert await Message.count() == 0 and await ShortLink.count() == 0


async def test_a_bad_link_domain_is_422_naming_the_field_and_saves_nothing(client, world):
    csrf = await login(client, world.users["Owner"])
    r = await client.post(
        "/branding",
        data={"_csrf_token": csrf, "product_name": "Alpha", "link_domain": "https://go.alpha/x"},
        headers=HX,
    )
    assert r.status_code == 422
    assert 'id="brand-link_domain-error"' in r.text and "host name" in r.text
    assert await AccountBranding.count() == 0
    ok = await client.post(
        "/branding", data={"_csrf_token": csrf, "link_domain": "go.alpha.example"}, headers=HX
    )
    assert ok.status_code in (200, 204, 303), ok.text
    row = await AccountBranding.select(AccountBranding.link_domain).first()
    assert row == {"link_domain": "go.alpha.example"}


async def test_clicks_csv_needs_the_export_permission_and_the_account(client, world):
    await ledger.adjust(world.accounts["alpha"], 1000, reason="test credits", actor=SYSTEM)
    csrf = await login(client, world.users["Sender"])
    r = await client.post("/send", data=send_form(csrf))
    campaign_id = int(re.search(r"/campaigns/(\d+)", r.text).group(1))
    await login(client, world.users["Viewer"])
    assert (await client.get(f"/campaigns/{campaign_id}/clicks.csv")).status_code == 403
    await login(client, "sender@beta.test")
    assert (await client.get(f"/campaigns/{campaign_id}/clicks.csv")).status_code == 404
    assert await LinkClick.count() == 0


async def test_a_template_only_sender_can_track_the_links_of_a_template(client, world):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 1000, reason="test credits", actor=SYSTEM)
    template = await templates.ensure_approved_template(
        actor=SYSTEM, account_id=account, name="Offer", body="Offer: https://shop.example/o.",
        shared_down=False,
    )  # fmt: skip
    csrf = await login(client, world.users["Support"])
    page = await client.get("/send")
    assert 'id="track-links"' in page.text
    r = await client.post(
        "/send",
        data=send_form(csrf, mode="template", template_id=str(template.id), body="",
                       campaign_name=""),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    message = await Message.select(Message.body).first()
    assert re.fullmatch(r"Offer: http://\S+/l/[A-Za-z0-9]{12}\.", message["body"])
    assert await ShortLink.count() == 3
