"""The live composer counter: the htmx fragment the editor and the send page swap in."""

from __future__ import annotations

import html
import re

import pytest

from tests.conftest import csrf_token, login
from tests.factories import HX


def stat(fragment: str, name: str, kind: str = "stat") -> str:
    match = re.search(rf'<dd data-{kind}="{name}">([^<]*)', fragment)
    assert match, f"no {kind} {name} in the fragment"
    return match.group(1).strip()


async def count(client, token: str, text: str, **extra: str):
    data = {"_csrf_token": token, "composer_field": "body", "composer_id": "tpl-body", "body": text}
    return await client.post("/composer/count", data={**data, **extra}, headers=HX)


@pytest.mark.parametrize(
    ("text", "characters", "encoding", "segments", "remaining"),
    [
        ("", "0", "GSM-7", "0", "160"),
        ("Hello", "5", "GSM-7", "1", "155"),
        ("a" * 160, "160", "GSM-7", "1", "0"),
        ("a" * 161, "161", "GSM-7", "2", "145"),
        ("a" * 152 + "€", "153", "GSM-7", "1", "6"),
        ("Hi 😀", "4", "UCS-2", "1", "65"),
        ("ж" * 71, "71", "UCS-2", "2", "63"),
    ],
)
async def test_counter_fragment_reports_exact_figures(
    client, world, text, characters, encoding, segments, remaining
):
    token = await login(client, world.users["Sender"])
    response = await count(client, token, text)
    assert response.status_code == 200
    fragment = response.text
    assert "<html" not in fragment and "<nav" not in fragment
    assert stat(fragment, "characters") == characters
    assert stat(fragment, "encoding") == encoding
    assert stat(fragment, "segments") == segments
    assert stat(fragment, "remaining") == remaining
    assert stat(fragment, "cost") == segments  # 1 credit per segment
    assert "credits (SMS to AU at 1 per segment)" in fragment


async def test_ucs2_characters_are_highlighted_with_a_one_click_replacement(client, world):
    token = await login(client, world.users["Sender"])
    text = "It’s ready — come by"
    fragment = (await count(client, token, text)).text
    assert stat(fragment, "encoding") == "UCS-2"
    assert '<mark class="ucs2" title="RIGHT SINGLE QUOTATION MARK">’</mark>' in fragment
    assert '<mark class="ucs2" title="EM DASH">—</mark>' in fragment
    assert '"composer_replace": "\\u2019"' in fragment  # the button for ’
    assert "Replace every look-alike" in fragment
    assert 'hx-swap-oob="true"' not in fragment

    replaced = (await count(client, token, text, composer_replace="’")).text
    assert '<textarea id="tpl-body" name="body"' in replaced and 'hx-swap-oob="true"' in replaced
    textarea = re.search(r"<textarea[^>]*>\n(.*?)</textarea>", replaced, re.S)
    assert textarea and html.unescape(textarea.group(1)) == "It's ready — come by"
    assert stat(replaced, "encoding") == "UCS-2"  # the dash still forces it

    everything = (await count(client, token, text, composer_replace="all")).text
    textarea = re.search(r"<textarea[^>]*>\n(.*?)</textarea>", everything, re.S)
    assert textarea and html.unescape(textarea.group(1)) == "It's ready - come by"
    assert stat(everything, "encoding") == "GSM-7" and "composer-ucs2" not in everything


async def test_a_character_without_look_alike_offers_no_replacement(client, world):
    token = await login(client, world.users["Sender"])
    fragment = (await count(client, token, "Party 🎉", composer_replace="🎉")).text
    assert "no GSM-7 look-alike" in fragment
    assert 'hx-swap-oob="true"' not in fragment  # nothing was replaced


async def test_unknown_merge_fields_are_flagged_and_known_ones_are_not(client, world):
    token = await login(client, world.users["Sender"])
    fragment = (await count(client, token, "Hi {{first_name}}, code {{coupon}}")).text
    flagged = re.search(r'<p class="alert warn composer-unknown">(.*?)</p>', fragment, re.S)
    assert flagged and "{{coupon}}" in flagged.group(1)
    assert "{{first_name}}" not in flagged.group(1)
    assert "Contact fields: <code>first_name</code>" in flagged.group(1)
    clean = (await count(client, token, "Hi {{first_name}} {{last_name}} {{phone}}")).text
    assert "composer-unknown" not in clean


async def test_merge_fields_give_an_estimate_and_an_exact_sample(client, world):
    token = await login(client, world.users["Sender"])
    text = "Hi {{first_name|there}}, see you at {{time}}."
    fragment = (await count(client, token, text, sample_first_name="Zoë", sample_time="10am")).text
    assert "Estimate: merge fields counted at typical lengths" in fragment
    assert stat(fragment, "encoding") == "GSM-7"
    sample = re.search(r'<pre class="composer-rendered" data-sample="text">(.*?)</pre>', fragment)
    assert sample and html.unescape(sample.group(1)) == "Hi Zoë, see you at 10am."
    # ë is not in the GSM-7 alphabet: this recipient's message is UCS-2.
    assert stat(fragment, "encoding", "sample") == "UCS-2"
    assert stat(fragment, "characters", "sample") == "24"
    assert "These values change the encoding to UCS-2" in fragment
    assert 'id="tpl-body-sample-first_name" name="sample_first_name" value="Zoë"' in fragment

    defaulted = (await count(client, token, text, sample_first_name="")).text
    sample = re.search(r'data-sample="text">(.*?)</pre>', defaulted)
    assert sample and html.unescape(sample.group(1)) == "Hi there, see you at ."


async def test_the_composer_page_works_without_javascript(client, world):
    token = await login(client, world.users["Support"])
    page = await client.get("/composer")
    assert page.status_code == 200 and 'id="body-counter"' in page.text
    posted = await client.post(
        "/composer/count",
        data={
            "_csrf_token": token,
            "composer_field": "body",
            "composer_id": "body",
            "body": "a" * 200,
        },
    )
    assert posted.status_code == 200 and "<html" in posted.text
    assert stat(posted.text, "segments") == "2"


async def test_composer_ids_are_not_echoed_unchecked(client, world):
    token = await login(client, world.users["Sender"])
    response = await client.post(
        "/composer/count",
        data={
            "_csrf_token": token,
            "composer_field": "body",
            "composer_id": '"><script>alert(1)</script>',
            "body": "It’s",
            "composer_replace": "’",
        },
        headers=HX,
    )
    assert response.status_code == 200
    assert "<script>" not in response.text and 'id="body"' in response.text


async def test_the_counter_needs_a_signed_in_user(client, world):
    token = await csrf_token(client, "/login")
    response = await client.post(
        "/composer/count", data={"_csrf_token": token, "body": "Hi"}, headers=HX
    )
    assert response.status_code == 401 and response.headers["hx-redirect"] == "/login"
    assert "data-stat" not in response.text


async def test_custom_contact_fields_are_known_merge_fields(client, world):
    from tenants.audit.record import SYSTEM
    from tenants.contacts import contacts

    await contacts.create_contact(
        actor=SYSTEM,
        account_id=world.accounts["alpha"],
        phone="+61412000101",
        first_name="Olivia",
        fields={"store_id": "S-12"},
    )
    # Another account's custom fields are not this account's.
    await contacts.create_contact(
        actor=SYSTEM,
        account_id=world.accounts["beta"],
        phone="+61412000102",
        fields={"loyalty_tier": "gold"},
    )
    token = await login(client, world.users["Sender"])
    editor = await client.get("/templates/new")
    assert 'name="composer_known" value="first_name,last_name,phone,store_id"' in editor.text

    text = "Your store {{store_id}}, tier {{loyalty_tier}}"
    looked_up = (await count(client, token, text)).text
    flagged = re.search(r'<p class="alert warn composer-unknown">(.*?)</p>', looked_up, re.S)
    assert flagged and "{{loyalty_tier}}" in flagged.group(1)
    assert "{{store_id}}" not in flagged.group(1)
    # While typing, the list the page was rendered with is posted back and used as is.
    posted = (await count(client, token, text, composer_known="store_id,loyalty_tier")).text
    assert "composer-unknown" not in posted


async def test_cost_follows_the_accounts_sms_price(client, world):
    from tenants.audit.record import SYSTEM
    from tenants.credits import pricing

    await pricing.set_price(
        actor=SYSTEM,
        account_id=world.accounts["alpha"],
        channel="sms",
        country="AU",
        credits=3,
        is_operator=True,
        within_account_id=world.accounts["platform"],
    )
    token = await login(client, world.users["Sender"])
    fragment = (await count(client, token, "a" * 200)).text
    assert stat(fragment, "segments") == "2" and stat(fragment, "cost") == "6"
    assert "credits (SMS to AU at 3 per segment)" in fragment
    sample = (
        await count(client, token, "{{first_name}} " + "a" * 150, sample_first_name="Al")
    ).text
    assert stat(sample, "cost", "sample") == "3"
