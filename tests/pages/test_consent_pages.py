"""Consent pages: consent_mode with a preview then save, keywords and replies per master,
the opt-out report (no numbers), the operator's global suppression list."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.consent import keywords as consent_keywords
from tenants.consent import scopes as consent_scopes
from tenants.consent.filter import filter_recipients
from tenants.contacts import contacts
from tests.conftest import login
from tests.factories import HX


async def test_consent_mode_preview_then_save(client, world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    await consent_events.record_opt_out(alpha, "+61412345678", "sms", source="keyword")
    token = await login(client, world.users["Owner"])
    page = await client.get("/settings")
    assert page.status_code == 200 and f'id="mode-{sub}"' in page.text
    r = await client.post(
        f"/settings/consent-mode/{sub}",
        data={"_csrf_token": token, "consent_mode": "isolated", "step": "preview"},
        headers=HX,
    )
    assert r.status_code == 200
    assert '<strong class="stops">1</strong> stop applying' in r.text
    assert (await consent_scopes.resolve_consent_scope(sub)) == alpha  # a preview changes nothing
    r = await client.post(
        f"/settings/consent-mode/{sub}",
        data={"_csrf_token": token, "consent_mode": "isolated", "step": "save"},
        headers=HX,
    )
    assert r.status_code == 200 and "is now isolated" in r.text
    allowed, _ = await filter_recipients(sub, ["+61412345678"], "sms")
    assert allowed == ["+61412345678"]
    r = await client.post(
        f"/settings/consent-mode/{alpha}",
        data={"_csrf_token": token, "consent_mode": "isolated", "step": "save"},
        headers=HX,
    )
    assert r.status_code == 403


async def test_settings_need_settings_manage(client, world):
    await login(client, world.users["Sender"])
    assert (await client.get("/settings")).status_code == 403


async def test_master_keywords_and_replies(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/consent/keywords",
        data={
            "_csrf_token": token,
            "words_opt_out": "basta, halt",
            "words_opt_in": "",
            "words_help": "",
            "reply_opt_out": "Alpha: you will get no more messages.",
            "reply_opt_in": "",
            "reply_help": "",
        },
        headers=HX,
    )
    assert r.status_code == 200 and "Saved." in r.text
    assert (
        await consent_keywords.classify_keyword(world.accounts["alpha-one"], "Basta!") == "opt_out"
    )
    assert (
        await consent_keywords.confirmation_reply(world.accounts["alpha-one"], "opt_out")
        == "Alpha: you will get no more messages."
    )
    r = await client.post(
        "/consent/keywords",
        data={"_csrf_token": token, "words_opt_in": "stop", "words_opt_out": "basta"},
        headers=HX,
    )
    assert r.status_code == 422 and "Already a keyword of another kind" in r.text


async def test_opt_out_report_counts_without_numbers(client, world):
    alpha = world.accounts["alpha"]
    contact = await contacts.create_contact(
        actor=SYSTEM, account_id=alpha, phone="+61412345678", first_name="Zed"
    )
    await consent_events.record_opt_out(alpha, "+61412345678", "sms", source="keyword")
    await consent_events.record_opt_out(
        world.accounts["alpha-one"], "+61412345679", "sms", source="api"
    )
    await login(client, world.users["Owner"])
    r = await client.get("/consent/report?period=day")
    assert r.status_code == 200
    assert f"#{contact.id}" in r.text and "2 opt-outs received" in r.text
    assert "Alpha One" in r.text
    assert "412345678" not in r.text and "Zed" not in r.text


async def test_global_suppression_is_for_the_operator(client, world):
    await login(client, world.users["Owner"])
    assert (await client.get("/platform/suppression")).status_code == 403
    client.cookies.clear()
    token = await login(client, "operator@platform.test")
    r = await client.post(
        "/platform/suppression",
        data={"_csrf_token": token, "phone": "0412", "reason": ""},
        headers=HX,
    )
    assert r.status_code == 422 and "international form" in r.text
    r = await client.post(
        "/platform/suppression",
        data={"_csrf_token": token, "phone": "+61 412 345 678", "reason": "court order"},
        headers=HX,
    )
    assert r.status_code == 200 and "Suppressed +61412345678" in r.text
    _, skipped = await filter_recipients(world.accounts["beta"], ["+61412345678"], "sms")
    assert skipped == [("+61412345678", "globally_suppressed")]
