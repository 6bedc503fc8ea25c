"""/keywords: claim with inline 422 and 409 reasons, actions per keyword, and the way to the
account's webhooks (set on /webhooks, the one webhook mechanism)."""

from __future__ import annotations

import re

from tenants.audit.record import SYSTEM
from tenants.numbers import keywords, numbers
from tenants.webhooks.tables import WebhookSubscription
from tests.conftest import login
from tests.factories import HX, make_user


async def shared_id() -> int:
    number = await numbers.find_number("+61480000000")
    assert number is not None
    return number.id


async def sydney_admin(client, demo) -> str:
    await make_user("admin@sydney.test", demo["sydney"], "Admin")
    return await login(client, "admin@sydney.test")


async def test_keywords_page_lists_the_demo_join(client, demo):
    await login(client, "owner@northwind.test")
    page = await client.get("/keywords")
    assert page.status_code == 200
    assert "JOIN" in page.text and "for Sydney Branch" in page.text
    assert "JOIN subscribers" in page.text  # the add-to-list action names its list
    assert 'href="/keywords"' in page.text  # navigation links the page


async def test_sydney_user_cannot_claim_stop(client, demo):
    token = await sydney_admin(client, demo)
    r = await client.post(
        "/keywords",
        data={"_csrf_token": token, "number_id": str(await shared_id()), "word": "Stop"},
        headers=HX,
    )
    assert r.status_code == 409
    assert "STOP is a compliance keyword (opt-out) and cannot be claimed" in r.text
    assert "<html" not in r.text


async def test_sydney_user_cannot_claim_a_word_melbourne_holds(client, demo):
    await keywords.claim_keyword(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        number_id=await shared_id(),
        word="EVENTS",
        account_id=demo["melbourne"],
    )
    token = await sydney_admin(client, demo)
    r = await client.post(
        "/keywords",
        data={
            "_csrf_token": token,
            "number_id": str(await shared_id()),
            "word": "events",
            "account_id": str(demo["sydney"]),
        },
        headers=HX,
    )
    assert r.status_code == 409
    assert "EVENTS on +61480000000 is already taken by another account." in r.text
    assert "Melbourne" not in r.text
    kw = await keywords.keyword_on(await shared_id(), "EVENTS")
    assert kw is not None and kw.account_id == demo["melbourne"]


async def test_master_sees_who_holds_the_word(client, demo):
    token = await login(client, "owner@northwind.test")
    r = await client.post(
        "/keywords",
        data={
            "_csrf_token": token,
            "number_id": str(await shared_id()),
            "word": "join",
            "account_id": str(demo["melbourne"]),
        },
        headers=HX,
    )
    assert r.status_code == 409 and "already held by Sydney Branch" in r.text


async def test_claim_then_add_actions_inline(client, demo):
    token = await sydney_admin(client, demo)
    r = await client.post(
        "/keywords",
        data={"_csrf_token": token, "number_id": str(await shared_id()), "word": "Deals"},
        headers=HX,
    )
    assert r.status_code == 201 and r.headers["hx-trigger"] == "keywords-changed"
    assert "DEALS on +61480000000 now goes to Sydney Branch" in r.text
    kw = await keywords.keyword_on(await shared_id(), "deals")
    assert kw is not None
    r = await client.post(
        f"/keywords/{kw.id}/actions",
        data={"_csrf_token": token, "kind": "auto_reply", "reply_text": ""},
        headers=HX,
    )
    assert r.status_code == 422 and "Write the reply." in r.text
    r = await client.post(
        f"/keywords/{kw.id}/actions",
        data={"_csrf_token": token, "kind": "auto_reply", "reply_text": "Hi {{first_name|there}}!"},
        headers=HX,
    )
    assert r.status_code == 201 and "Hi {{first_name|there}}!" in r.text
    assert f'id="keyword-{kw.id}"' in r.text
    r = await client.post(f"/keywords/{kw.id}/release", data={"_csrf_token": token}, headers=HX)
    assert r.status_code == 200
    assert await keywords.keyword_on(await shared_id(), "deals") is None


async def test_invalid_word_is_a_field_error(client, demo):
    token = await login(client, "owner@northwind.test")
    r = await client.post(
        "/keywords",
        data={"_csrf_token": token, "number_id": str(await shared_id()), "word": "two words"},
        headers=HX,
    )
    assert r.status_code == 422 and 'id="kw-word-error"' in r.text


async def test_sender_role_cannot_manage_keywords(client, demo):
    token = await login(client, "sender@sydney.test")
    assert (await client.get("/keywords")).status_code == 403
    r = await client.post(
        "/keywords",
        data={"_csrf_token": token, "number_id": str(await shared_id()), "word": "x"},
        headers=HX,
    )
    assert r.status_code == 403


async def test_webhook_secret_is_shown_once_and_sealed(client, demo, settings_env):
    settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1")
    token = await login(client, "owner@northwind.test")
    page = await client.get("/keywords")
    assert 'href="/webhooks"' in page.text and 'action="/keywords/webhook"' not in page.text
    assert (
        await client.post("/keywords/webhook", data={"_csrf_token": token, "url": "https://x.test"})
    ).status_code in (404, 405)
    r = await client.post("/webhooks", data={"_csrf_token": token, "url": "ftp://x"}, headers=HX)
    assert r.status_code == 422 and "http:// or https://" in r.text
    r = await client.post(
        "/webhooks",
        data={"_csrf_token": token, "url": "https://hooks.example.test/in", "event_inbound": "on"},
        headers=HX,
    )
    assert r.status_code == 201 and "shown once" in r.text
    secret = re.search(r'value="(whsec_[^"]+)"', r.text).group(1)
    page = await client.get("/webhooks")
    assert secret not in page.text and "https://hooks.example.test/in" in page.text
    stored = await WebhookSubscription.select(WebhookSubscription.secret_sealed)
    assert secret not in stored[0]["secret_sealed"]
