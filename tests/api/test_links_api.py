"""Tracked short links over HTTP: `track_links` on POST /messages, the redirect served by
the portal (one hop, no session, 404 for unknown or expired codes), each request counted
once with no address kept, the links of a message in GET /messages/{id}."""

from __future__ import annotations

import re
from datetime import timedelta

from tenants.audit.record import SYSTEM
from tenants.clock import now
from tenants.credits import ledger
from tenants.links.tables import LinkClick, ShortLink
from tenants.messaging.tables import Message

NUMBERS = ["+61400000001", "+61400000002"]
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
CODE = re.compile(r"/l/([A-Za-z0-9]{12})")


async def send_tracked(client, headers, body: str = "Sale: https://shop.example/sale?x=1.") -> dict:
    r = await client.post(
        "/api/v1/messages",
        json={"to": NUMBERS, "body": body, "track_links": True},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    return r.json()


async def test_a_tracked_send_redirects_in_one_hop_and_counts_each_request(client, world, make_key):
    account = world.accounts["alpha"]
    await ledger.adjust(account, 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    sent = await send_tracked(client, headers)
    message_id = sent["accepted"][0]["message_id"]
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=headers)).json()
    code = CODE.search(detail["body"]).group(1)
    assert detail["body"].endswith(code + ".")  # the full stop stays outside the link
    assert detail["links"] == [
        {"code": code, "url": "https://shop.example/sale?x=1", "clicks": 0, "bot_clicks": 0,
         "last_click_at": None}
    ]  # fmt: skip

    for _ in range(2):
        r = await client.get(f"/l/{code}", headers={"User-Agent": IPHONE}, follow_redirects=False)
        assert r.status_code == 302
        assert r.headers["location"] == "https://shop.example/sale?x=1"
        assert r.headers["cache-control"] == "no-store"
        assert "set-cookie" not in r.headers  # no session, no CSRF cookie
    preview = await client.get(
        f"/l/{code}", headers={"User-Agent": "WhatsApp/2.23.20.0 A"}, follow_redirects=False
    )
    assert preview.status_code == 302
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=headers)).json()
    assert detail["links"][0]["clicks"] == 2 and detail["links"][0]["bot_clicks"] == 1
    clicks = await LinkClick.select().order_by(LinkClick.id)
    assert [c["agent"] for c in clicks] == ["iPhone Safari", "iPhone Safari", "bot"]
    # No address is kept: nothing in a click row is the caller's address or agent string.
    for row in clicks:
        for value in row.values():
            assert "testclient" not in str(value) and "127.0.0.1" not in str(value)
            assert "Mozilla" not in str(value)
    assert not any("ip" in column or "addr" in column for column in clicks[0])


async def test_unknown_malformed_and_expired_codes_are_404_and_count_nothing(
    client, world, make_key
):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    await send_tracked(client, headers)
    for path in ("/l/AAAAAAAAAAAA", "/l/short", "/l/" + "x" * 300, "/l/%00%0d%0a"):
        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 404, path
        assert "location" not in r.headers
    link = await ShortLink.select().first()
    await ShortLink.update({ShortLink.expires_at: now() - timedelta(minutes=1)}).where(
        ShortLink.id == link["id"]
    )
    r = await client.get(f"/l/{link['code']}", follow_redirects=False)
    assert r.status_code == 404
    assert await LinkClick.count() == 0


async def test_expiry_is_configurable_and_zero_never_expires(client, world, make_key, settings_env):
    settings_env(LINK_EXPIRY_DAYS="0")
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    await send_tracked(client, headers)
    assert {r["expires_at"] for r in await ShortLink.select(ShortLink.expires_at)} == {None}


async def test_an_iri_is_redirected_with_a_valid_location(client, world, make_key):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    await send_tracked(client, headers, body="Menü: https://café.example/speisekarte/ä")
    link = await ShortLink.select().first()
    r = await client.get(f"/l/{link['code']}", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://caf%C3%A9.example/speisekarte/%C3%A4"


async def test_bad_track_links_is_422_naming_the_field_and_sends_nothing(client, world, make_key):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/messages",
        json={"to": NUMBERS, "body": "https://x.example", "track_links": "yes"},
        headers=headers,
    )
    assert r.status_code == 422
    assert "track_links" in r.text
    assert await Message.count() == 0 and await ShortLink.count() == 0


async def test_the_same_idempotency_key_with_and_without_tracking_conflicts(
    client, world, make_key
):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = {**(await make_key("alpha", "Sender")), "Idempotency-Key": "links-1"}
    body = {"to": NUMBERS, "body": "https://x.example"}
    first = await client.post("/api/v1/messages", json=body, headers=headers)
    assert first.status_code == 202
    again = await client.post(
        "/api/v1/messages", json={**body, "track_links": True}, headers=headers
    )
    assert again.status_code == 409 and again.json()["code"] == "idempotency_key_reused"
    assert await ShortLink.count() == 0


async def test_the_usage_report_counts_the_period_clicks(client, world, make_key):
    await ledger.adjust(world.accounts["alpha-one"], 100, reason="test credits", actor=SYSTEM)
    sub_key = await make_key("alpha-one", "Sender")
    await send_tracked(client, sub_key)
    link = await ShortLink.select().first()
    await client.get(f"/l/{link['code']}", headers={"User-Agent": IPHONE}, follow_redirects=False)
    await client.get(
        f"/l/{link['code']}", headers={"User-Agent": "Slackbot 1.0"}, follow_redirects=False
    )
    today = now().date().isoformat()
    owner = await make_key("alpha", "Owner")
    r = await client.get(f"/api/v1/reports/clicks?from={today}&to={today}", headers=owner)
    assert r.status_code == 200, r.text
    assert r.json() == {"from": today, "to": today, "clicks": 1, "bot_clicks": 1}
    other = await make_key("beta", "Owner")
    r = await client.get(f"/api/v1/reports/clicks?from={today}&to={today}", headers=other)
    assert (r.json()["clicks"], r.json()["bot_clicks"]) == (0, 0)
    r = await client.get(f"/api/v1/reports/clicks?from={today}&to=nope", headers=owner)
    assert r.status_code == 422 and r.json()["field"] == "to"


async def test_a_head_request_answers_like_the_link_and_is_not_a_click(client, world, make_key):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    headers = await make_key("alpha", "Sender")
    await send_tracked(client, headers)
    link = await ShortLink.select().first()
    r = await client.head(f"/l/{link['code']}", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example/sale?x=1"
    assert r.content == b""
    assert (await client.head("/l/AAAAAAAAAAAA", follow_redirects=False)).status_code == 404
    assert await LinkClick.count() == 0
