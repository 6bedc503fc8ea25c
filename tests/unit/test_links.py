"""Tracked short links in the domain: finding URLs (punctuation, brackets, merge fields),
one code per recipient per URL, the short link's base (branding link domain or the
platform's), segments counted on the short link, expiry, and the agent classes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tenants.audit.record import SYSTEM
from tenants.branding import branding
from tenants.clock import now
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.errors import ValidationFailed
from tenants.links import links
from tenants.links.agents import classify_agent
from tenants.links.tables import CODE_LENGTH, LinkClick, ShortLink
from tenants.messaging import accept as sending
from tenants.messaging.accept import PLATFORM_SEND, SendRequest
from tenants.messaging.tables import Message
from tenants.templates.composer import compose
from tenants.templates.segments import count_segments

BASE = "https://go.example.com/l/"
SHORT = re.compile(r"https://go\.example\.com/l/([A-Za-z0-9]{12})")


async def fund(account_id: int, amount: int = 1000) -> None:
    await ledger.adjust(account_id, amount, reason="test credits", actor=SYSTEM)


def urls_in(text: str) -> list[str]:
    return [text[a:b] for a, b in links.url_spans(text)]


def test_urls_end_before_the_punctuation_of_the_sentence():
    text = (
        "See https://shop.example/sale. Or http://a.example/x?y=1&z=2, "
        "(details: https://b.example/p_(1)) and https://c.example/end!"
    )
    assert urls_in(text) == [
        "https://shop.example/sale",
        "http://a.example/x?y=1&z=2",
        "https://b.example/p_(1)",
        "https://c.example/end",
    ]


def test_no_url_no_change_and_a_bare_scheme_is_not_a_url():
    assert urls_in("Hello, no links here. www is not one; nor https:// alone") == []
    tracked = links.track_urls("Hello there.", BASE)
    assert tracked.body == "Hello there." and tracked.links == ()


def test_several_urls_each_get_a_code_and_a_repeated_url_keeps_its_code():
    text = "A https://a.example/1, B https://b.example/2 and again https://a.example/1."
    tracked = links.track_urls(text, BASE)
    codes = SHORT.findall(tracked.body)
    assert len(codes) == 3 and codes[0] == codes[2] != codes[1]
    assert dict(tracked.links) == {codes[0]: "https://a.example/1", codes[1]: "https://b.example/2"}
    # The text around the links, the commas and the full stop stay as written.
    assert SHORT.sub("<L>", tracked.body) == "A <L>, B <L> and again <L>."
    assert all(len(code) == CODE_LENGTH for code in codes)


def test_codes_are_random_url_safe_and_do_not_repeat():
    codes = {links.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{12}", c) for c in codes)


def test_agent_classes_are_coarse_and_bots_apart():
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    android = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36"
    )
    samsung = android.replace("Chrome/120.0.0.0", "SamsungBrowser/23.0 Chrome/115.0.0.0")
    assert classify_agent(iphone).label == "iPhone Safari"
    assert classify_agent(android).label == "Android Chrome"
    assert classify_agent(samsung).label == "Android Samsung Internet"
    for bot in ("WhatsApp/2.23.20.0 A", "facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0",
                "TelegramBot (like TwitterBot)", "curl/8.4.0", ""):  # fmt: skip
        assert classify_agent(bot).bot and classify_agent(bot).label == "bot"
    assert not classify_agent(iphone).bot


def test_the_composer_counts_the_short_link_not_the_original():
    long_url = "https://shop.example.com/campaigns/2026/summer-sale?utm_source=sms&utm_medium=x"
    text = f"Sale today: {long_url} Reply STOP to opt out"
    plain = compose(text)
    tracked = compose(text, link_base=BASE)
    short_text = f"Sale today: {BASE}{'0' * CODE_LENGTH} Reply STOP to opt out"
    assert tracked.count == count_segments(short_text)
    assert tracked.count.characters < plain.count.characters
    assert tracked.tracked_links == 1 and tracked.short_link_length == len(BASE) + CODE_LENGTH
    # With merge fields the estimate and the sample count the short link too.
    merged = compose("Hi {{first_name}} " + long_url, link_base=BASE)
    assert merged.sample_count == count_segments(f"Hi Alex {BASE}{'0' * CODE_LENGTH}")


async def test_one_code_per_recipient_per_url_kept_with_the_message(world, settings_env):
    settings_env(LINK_BASE_URL="https://go.example.com")
    account = world.accounts["alpha"]
    await fund(account)
    numbers = ["+61400000001", "+61400000002", "+61400000003"]
    body = "Sale: https://shop.example/a, more at https://shop.example/b."
    result = await sending.accept_send(
        SendRequest(account, numbers=numbers, body=body, permissions=PLATFORM_SEND,
                    track_links=True),
        actor=SYSTEM,
    )  # fmt: skip
    assert len(result.accepted) == 3
    rows = await ShortLink.select().order_by(ShortLink.id)
    assert len(rows) == 6 and len({r["code"] for r in rows}) == 6
    for message in await Message.select(Message.id, Message.body, Message.segments):
        codes = SHORT.findall(message["body"])
        mine = {r["code"]: r["url"] for r in rows if r["message_id"] == message["id"]}
        assert [mine[c] for c in codes] == ["https://shop.example/a", "https://shop.example/b"]
        assert message["segments"] == count_segments(message["body"]).segments
    assert {r["batch_id"] for r in rows} == {result.batch_id}
    expires = rows[0]["expires_at"]
    assert timedelta(days=89) < expires - now() <= timedelta(days=90)


async def test_merge_fields_render_before_links_are_tracked(world, settings_env):
    settings_env(LINK_BASE_URL="https://go.example.com")
    account = world.accounts["alpha"]
    await fund(account)
    await contacts.create_contact(
        actor=SYSTEM, account_id=account, phone="+61400000001", first_name="Ann",
        fields={"ref": "A7"},
    )  # fmt: skip
    await sending.accept_send(
        SendRequest(account, numbers=["+61400000001"], permissions=PLATFORM_SEND,
                    body="Hi {{first_name}}, your order: https://shop.example/o/{{ref}}.",
                    track_links=True),
        actor=SYSTEM,
    )  # fmt: skip
    message = await Message.select(Message.body).first()
    assert message is not None and message["body"].startswith("Hi Ann, your order: https://go.")
    assert message["body"].endswith(".")
    link = await ShortLink.select(ShortLink.url).first()
    assert link is not None and link["url"] == "https://shop.example/o/A7"


async def test_the_account_link_domain_is_inherited_and_validated(world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    await branding.update_branding(
        actor=SYSTEM, within_account_id=alpha, account_id=alpha,
        values={"link_domain": "Go.Alpha.Example"},
    )  # fmt: skip
    assert await links.short_link_base(sub) == "https://go.alpha.example/l/"
    for bad in ("https://go.example", "go.example/path", "localhost", "go.example:8443", "1.2.3.4"):
        with pytest.raises(ValidationFailed) as refused:
            await branding.update_branding(
                actor=SYSTEM, within_account_id=alpha, account_id=sub,
                values={"link_domain": bad},
            )  # fmt: skip
        assert set(refused.value.errors) == {"link_domain"}
    assert await links.short_link_base(sub) == "https://go.alpha.example/l/"


async def test_without_tracking_nothing_changes_and_dry_run_writes_no_link(world):
    account = world.accounts["alpha"]
    await fund(account)
    body = "See https://shop.example/a"
    dry = await sending.accept_send(
        SendRequest(account, numbers=["+61400000001"], body=body, permissions=PLATFORM_SEND,
                    track_links=True),
        actor=SYSTEM, dry_run=True,
    )  # fmt: skip
    assert dry.dry_run and await ShortLink.count() == 0
    await sending.accept_send(
        SendRequest(account, numbers=["+61400000001"], body=body, permissions=PLATFORM_SEND),
        actor=SYSTEM,
    )
    message = await Message.select(Message.body).first()
    assert message is not None and message["body"] == body
    assert await ShortLink.count() == 0


async def test_consent_and_credits_are_unchanged_by_tracking(world, settings_env):
    settings_env(LINK_BASE_URL="https://go.example.com")
    account = world.accounts["alpha"]
    await fund(account)
    await consent_events.record_opt_out(account, "+61400000002", "sms", source="manual")
    before = await ledger.balance(account)
    result = await sending.accept_send(
        SendRequest(account, numbers=["+61400000001", "+61400000002"], permissions=PLATFORM_SEND,
                    body="Hi https://shop.example/a", track_links=True),
        actor=SYSTEM,
    )  # fmt: skip
    assert [a.to for a in result.accepted] == ["+61400000001"]
    assert result.skipped == [("+61400000002", "opted_out")]
    assert await ledger.balance(account) == before - result.total_cost
    assert {r["message_id"] for r in await ShortLink.select(ShortLink.message_id)} == {
        result.accepted[0].message_id
    }


async def test_follow_counts_once_per_request_and_refuses_unknown_and_expired(world, settings_env):
    settings_env(LINK_BASE_URL="https://go.example.com")
    account = world.accounts["alpha"]
    await fund(account)
    await sending.accept_send(
        SendRequest(account, numbers=["+61400000001"], body="https://shop.example/a",
                    permissions=PLATFORM_SEND, track_links=True),
        actor=SYSTEM,
    )  # fmt: skip
    link = await ShortLink.select().first()
    assert link is not None
    assert await links.follow(link["code"], "Mozilla/5.0 (iPhone) Safari/604.1") == link["url"]
    assert await links.follow(link["code"], "WhatsApp/2.23") == link["url"]
    assert await LinkClick.count() == 2
    assert await links.follow("A" * CODE_LENGTH, "x") is None
    assert await links.follow("short", "x") is None
    await ShortLink.update({ShortLink.expires_at: now() - timedelta(seconds=1)}).where(
        ShortLink.id == link["id"]
    )
    assert await links.follow(link["code"], "Mozilla/5.0 (iPhone) Safari/604.1") is None
    assert await LinkClick.count() == 2
    figures = await links.batch_figures(account, link["batch_id"])
    assert (figures.messages, figures.clicks, figures.unique_clicks, figures.bot_clicks) == (
        1, 1, 1, 1,
    )  # fmt: skip
    assert figures.click_rate == 100.0
