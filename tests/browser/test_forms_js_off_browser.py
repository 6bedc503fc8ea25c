"""In Chromium with JavaScript off, as the demo users: each main form of the console posts
without htmx. Bad input re-renders the page with the field's error and changes nothing; good
input redirects (or re-renders with the result) and the change is visible on the page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import LiveServer, post_inbound, sign_in

pytestmark = pytest.mark.browser

OWNER = "owner@northwind.test"
SENDER = "sender@sydney.test"
SUPPORT = "support@sydney.test"
ADMIN = "admin@melbourne.test"
OPERATOR = "operator@portal.test"
# Unique per run: the live server is shared by every browser test module.
RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def as_user(browser: Browser, live_server: LiveServer) -> Iterator[Callable[[str], Page]]:
    """A signed-in page per user, each in its own context with JavaScript off."""
    pages: dict[str, Page] = {}

    def open_as(email: str) -> Page:
        if email not in pages:
            ctx = browser.new_context(base_url=live_server.url, java_script_enabled=False)
            ctx.set_default_timeout(15_000)
            pages[email] = ctx.new_page()
            sign_in(pages[email], email)
        return pages[email]

    yield open_as
    for page in pages.values():
        page.context.close()


def submit(page: Page, button: str) -> Response:
    """Press a submit button and wait for the browser's own navigation (no htmx)."""
    with page.expect_navigation() as navigation:
        page.click(button)
    response = navigation.value
    assert response is not None
    return response


def refused(page: Page, button: str, error: str, text: str) -> None:
    """Bad input: a 4xx answer re-renders the page with the field's error in it."""
    response = submit(page, button)
    assert 400 <= response.status < 500, (page.url, response.status)
    expect(page.locator(error)).to_contain_text(text)
    expect(page.locator("#nav-menu")).to_be_attached()


def done(page: Page, button: str) -> Response:
    response = submit(page, button)
    assert response.status == 200 and response.request.redirected_from is not None, (
        page.url,
        response.status,
    )
    return response


def test_sign_in_refuses_a_wrong_password_then_signs_in(browser: Browser, live_server: LiveServer):
    ctx = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = ctx.new_page()
    try:
        page.goto("/login")
        page.fill("#email", OWNER)
        page.fill("#password", "not-the-password")
        response = submit(page, "#login-form button[type=submit]")
        assert response.status in (400, 401, 422)
        expect(page.locator("#login-form .alert.error")).to_be_visible()
        page.fill("#password", DEMO_PASSWORD)
        done(page, "#login-form button[type=submit]")
        assert page.url.rstrip("/") == live_server.url
    finally:
        ctx.close()


def test_send_to_numbers_and_a_list(as_user: Callable[[str], Page]):
    page = as_user(SENDER)
    page.goto("/send")
    page.fill("#numbers", "not-a-number")
    page.check("input[name=mode][value=template]")
    page.select_option("#template_id", index=1)
    refused(page, "#send-form button[value=send]", "#numbers-error", "")
    expect(page.locator("#numbers")).to_have_value("not-a-number")
    expect(page.locator("#send-result")).to_have_count(0)

    page.fill("#numbers", "+61400005501, +61400005502")
    page.check("input[name=mode][value=template]")
    page.select_option("#template_id", index=1)
    assert submit(page, "#send-form button[value=send]").status == 201
    expect(page.locator("#send-result")).to_contain_text("2 accepted")
    page.click("#send-result a")
    expect(page.locator("#message-rows")).to_contain_text("+61400005501")


def test_templates_create_and_edit(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/templates/new")
    page.fill("#tpl-body", "Body without a name")
    refused(page, "#template-editor button[type=submit]", "#tpl-name-error", "required")
    expect(page.locator("#tpl-body")).to_have_value("Body without a name")
    page.fill("#tpl-name", f"JS off {RUN}")
    done(page, "#template-editor button[type=submit]")
    expect(page.locator("main")).to_contain_text(f"JS off {RUN}")
    editor = page.url
    page.fill("#tpl-name", "")
    refused(page, "#template-editor button[type=submit]", "#tpl-name-error", "required")
    page.goto(editor)
    expect(page.locator("#tpl-name")).to_have_value(f"JS off {RUN}")
    page.fill("#tpl-body", "Edited with JavaScript off")
    done(page, "#template-editor button[type=submit]")
    expect(page.locator("main")).to_contain_text("Edited with JavaScript off")


def test_contacts_create_edit_and_lists(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/contacts")
    page.fill("#c-phone", "not a phone")
    page.fill("#c-first_name", f"Jsoff{RUN}")
    refused(page, "#create-contact-form button[type=submit]", "#c-phone-error", "valid phone")
    page.goto(f"/contacts?q=Jsoff{RUN}")
    expect(page.locator("#results")).to_contain_text("0 contacts")
    page.fill("#c-phone", "+61400006601")
    page.fill("#c-first_name", f"Jsoff{RUN}")
    submit(page, "#create-contact-form button[type=submit]")
    page.goto(f"/contacts?q=Jsoff{RUN}")
    page.click(f"#results a:text('Jsoff{RUN}')")
    page.fill("#e-email", "not-an-email")
    record = page.url
    refused(page, "#edit-contact-form button[type=submit]", "#edit-contact-form .field-error", "")
    page.goto(record)
    expect(page.locator("#e-email")).to_have_value("")
    page.fill("#e-email", f"jsoff{RUN}@example.test")
    done(page, "#edit-contact-form button[type=submit]")
    expect(page.locator("#e-email")).to_have_value(f"jsoff{RUN}@example.test")

    page.goto("/contacts")
    refused(page, "form[action='/contacts/lists'] button", "#list-name-error", "")
    page.fill("#list-name", f"List {RUN}")
    done(page, "form[action='/contacts/lists'] button")
    expect(page.locator("main")).to_contain_text(f"List {RUN}")
    page.goto(f"/contacts?q=Jsoff{RUN}")
    page.click(f"#results a:text('Jsoff{RUN}')")
    page.select_option("#add-list", label=f"List {RUN}")
    done(page, "form[action$='/lists'] button")
    expect(page.locator("main li", has_text=f"List {RUN}")).to_have_count(1)


def test_send_to_a_list(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/send")
    page.locator("#list_ids label", has_text=f"List {RUN}").locator("input").check()
    page.fill("#body", "To the list, JavaScript off")
    assert submit(page, "#send-form button[value=send]").status == 201
    expect(page.locator("#send-result")).to_contain_text("1 accepted, 0 skipped")


def test_contacts_import(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/contacts/import")
    refused(page, "#upload-form button[type=submit]", "#upload-form .field-error", "")
    csv = f"phone,first_name\n+61400006611,Imp{RUN}\nnot-a-phone,Bad{RUN}\n".encode()
    page.set_input_files("#file", {"name": "people.csv", "mimeType": "text/csv", "buffer": csv})
    done(page, "#upload-form button[type=submit]")
    page.check("#import-form input[value=all_or_nothing]")
    submit(page, "#import-form button[value=import]")
    expect(page.locator("#import-result")).to_contain_text("Nothing was imported")
    page.goto(f"/contacts?q=Imp{RUN}")
    expect(page.locator("#results")).to_contain_text("0 contacts")
    page.go_back()
    page.check("#import-form input[value=good_rows]")
    submit(page, "#import-form button[value=import]")
    expect(page.locator("#import-result")).to_contain_text("1 new")
    page.goto(f"/contacts?q=Imp{RUN}")
    expect(page.locator("#results")).to_contain_text("1 contact")


def test_keywords_claim(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/keywords")
    page.fill("#kw-word", "STOP")
    refused(page, "#claim-form button[type=submit]", "#claim-conflict", "cannot be claimed")
    expect(page.locator("#keywords-list")).not_to_contain_text("STOP on")
    word = f"JS{RUN}".upper()[:8]
    page.fill("#kw-word", word)
    done(page, "#claim-form button[type=submit]")
    expect(page.locator("#keywords-list")).to_contain_text(word)


def test_branding_save_and_clear(as_user: Callable[[str], Page]):
    page = as_user(ADMIN)
    page.goto("/branding")
    before = page.locator("#brand-primary_color").input_value()
    page.fill("#brand-primary_color", "#12345z")
    refused(page, "#branding-form button.primary", "#brand-primary_color-error", "")
    page.goto("/branding")
    expect(page.locator("#brand-primary_color")).to_have_value(before)
    page.fill("#brand-support_phone", "+61 3 9000 0000")
    done(page, "#branding-form button.primary")
    expect(page.locator("#field-support_phone .source")).to_have_text("set here")
    done(page, "#field-support_phone button[formaction='/branding/clear']")
    expect(page.locator("#field-support_phone .source")).not_to_have_text("set here")


def test_invite_and_roles(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/users")
    page.fill("#invite-email", "not-an-email")
    refused(page, "#invite-form button[type=submit]", "#invite-email-error", "valid email")
    page.fill("#invite-email", f"invitee{RUN}@northwind.test")
    submit(page, "#invite-form button[type=submit]")
    page.goto("/users")
    expect(page.locator("main")).to_contain_text(f"invitee{RUN}@northwind.test")

    page.goto("/roles")
    page.fill("#role-name", "9 starts with a digit")
    refused(page, "#role-form button[type=submit]", "#role-name-error", "start with a letter")
    page.fill("#role-name", f"Role {RUN}")
    page.locator("#role-form input[name=permissions]").first.check()
    done(page, "#role-form button[type=submit]")
    expect(page.locator("#roles-table")).to_contain_text(f"Role {RUN}")


def _balance(page: Page, slug: str) -> str:
    page.goto("/credits")
    return page.locator(f"#credit-row-{slug} .credit-balance").inner_text()


def test_credits_buy_and_allocate(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/credits")
    page.fill("#buy-amount", "-5")
    refused(page, "#buy-form button[type=submit]", "#buy-amount-error", "at least 1")
    page.fill("#buy-amount", "25")
    submit(page, "#buy-form button[type=submit]")
    expect(page.locator("#my-orders")).to_contain_text("25")

    row = page.locator("#credit-accounts tr[data-slug=melbourne]")
    before = row.locator(".credit-balance").inner_text()
    row.locator("input[name=amount]").fill("abc")
    refused(
        page,
        "#credit-accounts tr[data-slug=melbourne] button[value=allocate]",
        "main p.alert.error[role=alert]",
        "",
    )
    expect(row.locator(".credit-balance")).to_have_text(before)
    row.locator("input[name=amount]").fill("7")
    done(page, "#credit-accounts tr[data-slug=melbourne] button[value=allocate]")
    after = int(row.locator(".credit-balance").inner_text().replace(",", ""))
    assert after == int(before.replace(",", "")) + 7


def test_webhooks_and_api_keys(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/webhooks")
    page.fill("#wh-url", "ftp://example.com/x")
    refused(page, "#webhook-form button[type=submit]", "#wh-url-error", "https://")
    page.fill("#wh-url", f"https://example.com/hooks/{RUN}")
    assert submit(page, "#webhook-form button[type=submit]").status == 201  # the secret, once
    expect(page.locator("main")).to_contain_text(f"https://example.com/hooks/{RUN}")

    page.goto("/api-keys")
    refused(page, "#key-form button[type=submit]", "#key-name-error", "")
    page.fill("#key-name", f"Key {RUN}")
    submit(page, "#key-form button[type=submit]")
    expect(page.locator("main")).to_contain_text(f"Key {RUN}")


def test_quiet_hours_and_recurring(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/settings/quiet-hours")
    page.check("#quiet-form input[name=enabled]")
    page.fill("#q-start", "")
    refused(page, "#quiet-form button[value=save]", "#start-error", "HH:MM")
    page.goto("/settings/quiet-hours")
    page.check("#quiet-form input[name=enabled]")
    page.fill("#q-start", "08:30")
    page.fill("#q-end", "21:00")
    submit(page, "#quiet-form button[value=save]")
    page.goto("/settings/quiet-hours")
    expect(page.locator("#q-start")).to_have_value("08:30")
    submit(page, "#quiet-form button[value=inherit]")

    page.goto("/recurring")
    page.fill("#r-name", f"Weekly {RUN}")
    refused(page, "#schedule-form button[type=submit]", "#schedule-form #body-error", "")
    page.fill("#r-body", "Weekly hello")
    page.fill("#r-numbers", "+61400006621")
    page.select_option("#r-frequency", "daily")
    page.fill("#r-time", "10:00")
    submit(page, "#schedule-form button[type=submit]")
    page.goto("/recurring")
    expect(page.locator("#schedules")).to_contain_text(f"Weekly {RUN}")


def test_numbers_and_sender_ids(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/numbers")
    page.fill("#sid-value", "bad value with spaces!")
    refused(page, "#sender-id-form button[type=submit]", "#sid-value-error", "")
    value = f"Jso{RUN}"[:11]
    page.fill("#sid-value", value)
    done(page, "#sender-id-form button[type=submit]")
    expect(page.locator("#sender-ids-table")).to_contain_text(value)

    operator = as_user(OPERATOR)
    operator.goto("/numbers")
    operator.fill("#num-number", "12")
    refused(operator, "#add-number-form button[type=submit]", "#num-number-error", "")
    number = f"+614800{int(RUN, 16) % 100000:05d}"
    operator.fill("#num-number", number)
    operator.select_option("#num-owner", label="Northwind Messaging")
    done(operator, "#add-number-form button[type=submit]")
    expect(operator.locator("#numbers-table")).to_contain_text(number)


def test_consent_opt_out_and_in(as_user: Callable[[str], Page]):
    page = as_user(OWNER)
    page.goto("/contacts")
    page.fill("#c-phone", "+61400006641")
    page.fill("#c-first_name", f"Consent{RUN}")
    done(page, "#create-contact-form button[type=submit]")  # to the contact's page
    # An opt-in needs a note saying how the person consented again.
    refused(page, "#consent-form button[value=opt_in]", "#consent-note-error", "consent again")
    sms = page.locator("#consent [data-status]").first
    expect(sms).not_to_have_attribute("data-status", "opted_in")
    done(page, "#consent-form button[value=opt_out]")
    expect(sms).to_have_attribute("data-status", "opted_out")
    page.fill("#consent-note", "Asked again at the front desk")
    done(page, "#consent-form button[value=opt_in]")
    expect(sms).to_have_attribute("data-status", "opted_in")
    # The contact's timeline names both changes.
    expect(page.locator("#consent")).to_contain_text("opt-out")


def test_inbox_template_reply(as_user: Callable[[str], Page], live_server: LiveServer):
    sender = as_user(SENDER)
    sender.goto("/send")
    sender.fill("#numbers", "+61400006631")
    sender.check("input[name=mode][value=template]")
    sender.select_option("#template_id", index=1)
    submit(sender, "#send-form button[value=send]")
    post_inbound(live_server, "+61400006631", "+61480000000", f"Reply {RUN}")
    page = as_user(SUPPORT)
    page.goto("/inbox")
    page.click("#conversations a:has-text('+61400006631')")
    refused(page, "#reply-form button[type=submit]", "#reply-template-error", "")
    page.select_option("#reply-template", index=1)
    done(page, "#reply-form button[type=submit]")
    expect(page.locator("#thread-messages")).to_contain_text("see you at")
    # The reply to Sydney's send from the shared number is Sydney's, not the master's.
    owner = as_user(OWNER)
    owner.goto("/inbox")
    expect(owner.locator("#conversations")).not_to_contain_text("+61400006631")
