"""Acceptance: every GET page of `create_app().routes`, as every built-in role, renders a
whole page without htmx and a fragment with it, never a 5xx; path parameters are filled
with real ids of the demo data (plus a message, an import, a conversation, a provider
integration, a webhook delivery and an invitation made for the walk)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from litestar.handlers import HTTPRouteHandler
from piccolo.table import Table

from portal.app import create_app
from tenants.access.tables import CustomRole, Invitation, Membership, User
from tenants.accounts.tables import Account
from tenants.audit.record import SYSTEM
from tenants.branding.tables import AccountBranding
from tenants.contacts.tables import Contact, ContactImport
from tenants.credits import ledger as credits
from tenants.messaging.tables import Batch, Campaign, Conversation, Message
from tenants.providers.tables import ProviderIntegration
from tenants.templates.tables import Template
from tenants.webhooks.tables import WebhookDelivery, WebhookSubscription
from tests.conftest import login

# One demo user per built-in role, and the operator.
USERS = {
    "Owner": "owner@northwind.test",
    "Admin": "admin@melbourne.test",
    "Sender": "sender@sydney.test",
    "Support": "support@sydney.test",
    "Finance": "finance@northwind.test",
    "Viewer": "sales@sydney.test",
    "operator": "operator@portal.test",
}
HX = {"HX-Request": "true"}
# Pages a person reaches only with a secret in the path, from another site, or the API's
# own description: not portal pages, so not walked here.
# /healthz is the load balancer's probe: its 503 says the workers are not running here.
NOT_PAGES = ("/api/", "/hooks/", "/simulator/", "/static/", "/sso/callback", "/sso/{", "/healthz")

# Which table names the row a path parameter points at.
PARAM_TABLES: dict[str, type[Table]] = {
    "account_id": Account,
    "contact_id": Contact,
    "import_id": ContactImport,
    "integration_id": ProviderIntegration,
    "delivery_id": WebhookDelivery,
    "message_id": Message,
    "campaign_id": Campaign,
    "batch_id": Batch,
    "user_id": User,
    "role_id": CustomRole,
    "conversation_id": Conversation,
    "template_id": Template,
}


def get_pages() -> Iterator[str]:
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and "GET" in handler.http_methods:
                if not route.path.startswith(NOT_PAGES):
                    yield route.path


PAGES = sorted(set(get_pages()))


async def _ids(table: type[Table], account_id: int) -> list[int]:
    """The account's own row first (the page the person would open), then any other's."""
    ids: list[int] = []
    account_column = getattr(table, "account_id", None) or getattr(table, "account", None)
    if table is Account:
        ids.append(account_id)
    elif table is User:
        # A member of the account other than the person walking, if there is one.
        rows = (
            await Membership.select(Membership.user)
            .where(Membership.account == account_id)
            .order_by(Membership.id)
        )
        ids.extend(r["user"] for r in rows[-1:])
    elif account_column is not None:
        own = await table.select(table.id).where(account_column == account_id).first()
        if own:
            ids.append(own["id"])
    other = await table.select(table.id).order_by(table.id, ascending=False).first()
    if other and other["id"] not in ids:
        ids.append(other["id"])
    return ids or [987654]


async def _urls(path: str, account_id: int) -> list[str]:
    params = re.findall(r"\{(\w+)(?::\w+)?\}", path)
    if not params:
        return [path]
    urls = [path]
    for name in params:
        if name in PARAM_TABLES:
            values = [str(i) for i in await _ids(PARAM_TABLES[name], account_id)]
        elif name == "digest":
            logo = (
                await AccountBranding.select(AccountBranding.logo_digest)
                .order_by(AccountBranding.id)
                .first()
            )
            values = [logo["logo_digest"] if logo and logo["logo_digest"] else "0" * 64]
        elif name == "token":
            values = ["not-a-real-invitation-token"]
        else:
            values = ["no-such-thing"]
        pattern = re.compile(r"\{" + name + r"(?::\w+)?\}")
        urls = [pattern.sub(v, u, count=1) for u in urls for v in values]
    return urls


async def _populate(client: Any, demo: dict[str, int]) -> None:
    """Rows the demo data lacks, made the way a person would make them."""
    await credits.adjust(demo["sydney"], 100, reason="test credits", actor=SYSTEM)
    token = await login(client, "sender@sydney.test")
    sent = await client.post(
        "/send",
        data={
            "_csrf_token": token,
            "numbers": "+61400000001",
            "mode": "text",
            "body": "Hello",
            "channel": "sms",
            "when": "now",
            "action": "send",
            "campaign_name": "",
        },
    )
    assert sent.status_code < 400, sent.text
    imported = await client.post(
        "/contacts/import",
        data={"_csrf_token": token},
        files={"file": ("p.csv", b"Mobile,First Name\n0412 000 001,Ann\n", "text/csv")},
        follow_redirects=False,
    )
    assert imported.status_code == 303, imported.text
    inbound = await client.post(
        "/hooks/simulator/inbound",
        json={"id": "walk-1", "from": "+61400000009", "to": "+61480000000", "body": "Hi"},
        headers={"X-Simulator-Secret": "simulator-secret"},
    )
    assert inbound.status_code == 202, inbound.text
    token = await login(client, "owner@northwind.test")
    campaign = await client.post(
        "/send",
        data={
            "_csrf_token": token,
            "numbers": "+61400000002",
            "mode": "text",
            "body": "Hello",
            "channel": "sms",
            "when": "now",
            "action": "send",
            "campaign_name": "Walk",
        },
    )
    assert campaign.status_code < 400, campaign.text
    hooked = await client.post(
        "/webhooks",
        data={"_csrf_token": token, "url": "https://hooks.example.test/in", "event_inbound": "on"},
    )
    assert hooked.status_code < 400, hooked.text
    invited = await client.post(
        "/users/invitations",
        data={"_csrf_token": token, "email": "new@northwind.test", "role": "Viewer"},
    )
    assert invited.status_code < 400, invited.text
    token = await login(client, "operator@portal.test")
    integration = await client.post(
        "/providers",
        data={
            "_csrf_token": token,
            "kind": "twilio",
            "name": "Twilio AU",
            "account_sid": "AC" + "c" * 32,
            "auth_token": "0123456789abcdef0123456789abcdef",
            "messaging_service_sid": "",
            "default_sender": "Portal",
        },
    )
    assert integration.status_code < 400, integration.text


async def test_every_page_renders_whole_and_as_a_fragment_for_every_role(client, demo):
    await _populate(client, demo)
    assert await Message.count() and await ContactImport.count() and await Conversation.count()
    assert await WebhookSubscription.count() and await Invitation.count()
    assert await ProviderIntegration.count() and await Campaign.count()
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for role, email in USERS.items():
        await login(client, email)
        account_id = demo["platform"] if role == "operator" else (await _account_of(email))
        for path in PAGES:
            for url in await _urls(path, account_id):
                for headers in ({}, HX):
                    r = await client.get(url, headers=headers, follow_redirects=False)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code >= 500:
                        failures.append(f"{role} GET {url} {headers}: {r.status_code}")
                    elif r.status_code == 200 and not headers and _is_html(r):
                        if "<html" not in r.text:
                            failures.append(f"{role} GET {url}: 200 without a whole page")
    assert not failures, "\n".join(failures)
    # The walk saw real pages, not only refusals.
    assert statuses.get(200, 0) > len(PAGES) * 4, statuses


async def _account_of(email: str) -> int:
    row = (
        await Membership.select(Membership.account)
        .where(Membership.user.email == email)  # type: ignore[attr-defined]
        .first()
    )
    assert row is not None
    return int(row["account"])


def _is_html(response: Any) -> bool:
    return response.headers.get("content-type", "").startswith("text/html")


@dataclass(frozen=True)
class Form:
    """An HTML form as a browser without JavaScript would post it."""

    page: str
    action: str
    multipart: bool
    fields: tuple[tuple[str, str, str], ...]  # (name, type, value shown)

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        # Forms that differ only in the id in their action are one form.
        return re.sub(r"/\d+", "/N", self.action), tuple(sorted(f[0] for f in self.fields))


class _FormParser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._open = {
                "action": a.get("action") or self.page,
                "multipart": "multipart" in a.get("enctype", ""),
                "fields": [],
            }
        elif self._open is not None and tag in ("input", "select", "textarea") and a.get("name"):
            kind = a.get("type", "text") if tag == "input" else tag
            self._open["fields"].append((a["name"], kind, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._open is not None:
            o = self._open
            self.forms.append(Form(self.page, o["action"], o["multipart"], tuple(o["fields"])))
            self._open = None


def _forms_on(page: str, html: str) -> list[Form]:
    parser = _FormParser(page)
    parser.feed(html)
    return parser.forms


# Posts that end the walk's session or are refused for reasons unrelated to their input.
NOT_WALKED = ("/logout", "/switch-account", "/login")
JUNK = "zz not valid"


def _bad_inputs(form: Form) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """Every visible field blank, then every field (hidden ones too) junk. A form with
    nothing to fill in (a button: remove, revoke) only gets junk ids: blank it would act."""
    visible = [f for f in form.fields if f[1] not in ("hidden", "submit", "button")]
    for variant in ("blank", "junk") if visible else ("junk",):
        data: dict[str, str] = {}
        files: dict[str, Any] = {}
        for name, kind, value in form.fields:
            if name == "_csrf_token":
                data[name] = value
            elif kind == "file":
                files[name] = (
                    "bad.csv",
                    b"" if variant == "blank" else b"\xff\xfe junk",
                    "text/csv",
                )
            elif kind in ("submit", "button"):
                data[name] = value
            elif variant == "blank":
                data[name] = value if kind == "hidden" else ""
            else:
                data[name] = JUNK
        yield data, files


async def test_every_form_posted_with_bad_input_without_javascript_names_the_field(client, demo):
    await _populate(client, demo)
    failures: list[str] = []
    posted = 0
    invalid = 0
    for role in ("Owner", "Admin", "Sender", "operator"):
        email = USERS[role]
        await login(client, email)
        account_id = demo["platform"] if role == "operator" else (await _account_of(email))
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for path in PAGES:
            for url in await _urls(path, account_id):
                page = await client.get(url)
                if page.status_code != 200 or not _is_html(page):
                    continue
                for form in _forms_on(url, page.text):
                    if form.key in seen or form.action.startswith(NOT_WALKED):
                        continue
                    seen.add(form.key)
                    for data, files in _bad_inputs(form):
                        r = await client.post(
                            form.action, data=data, files=files or None, follow_redirects=False
                        )
                        posted += 1
                        where = f"{role} POST {form.action} (from {form.page}) {data}"
                        if r.status_code >= 500:
                            failures.append(f"{where}: {r.status_code}")
                        elif r.status_code >= 400 and not _is_html(r):
                            failures.append(f"{where}: {r.status_code} answered {r.text[:80]}")
                        elif r.status_code == 422:
                            invalid += 1
                            if "<html" not in r.text:
                                failures.append(f"{where}: 422 without the whole page")
                            elif not _names_a_field(r.text, form):
                                failures.append(f"{where}: 422 naming no field")
                        if r.status_code in (303, 401) and "/login" in r.headers.get(
                            "location", ""
                        ):
                            await login(client, email)
    assert not failures, "\n".join(failures)
    assert posted > 100 and invalid > 30, (posted, invalid)


def _names_a_field(html: str, form: Form) -> bool:
    """A message next to a field (or the form's own alert for a form-wide refusal)."""
    return 'class="field-error"' in html or 'aria-invalid="true"' in html or 'role="alert"' in html


async def test_the_pages_the_issue_named_answer_without_javascript(client, demo):
    """Issue 14's four 500s, each now the whole page with the field's message."""
    token = await login(client, "owner@northwind.test")
    children = await client.get(f"/accounts/{demo['melbourne']}/children")
    assert children.status_code == 200 and "<html" in children.text
    assert (
        "Sub-accounts of Melbourne Branch" in children.text and "Melbourne Events" in children.text
    )
    role = await client.post(
        f"/users/{await _user_id('finance@northwind.test')}/role",
        data={"_csrf_token": token, "role": "No such role"},
    )
    assert role.status_code == 422 and "<html" in role.text
    assert 'class="field-error"' in role.text

    token = await login(client, "sender@sydney.test")
    before = await Contact.count()
    created = await client.post(
        "/contacts", data={"_csrf_token": token, "phone": "12", "first_name": "Zed"}
    )
    assert created.status_code == 422 and created.headers["content-type"].startswith("text/html")
    assert "<html" in created.text and 'id="create-contact-form"' in created.text
    assert 'aria-invalid="true"' in created.text and 'value="Zed"' in created.text
    assert await Contact.count() == before
    contact = await Contact.select().where(Contact.account_id == demo["sydney"]).first()
    edited = await client.post(
        f"/contacts/{contact['id']}",
        data={"_csrf_token": token, "phone": "12", "first_name": "Zed"},
    )
    assert edited.status_code == 422 and "<html" in edited.text
    assert 'aria-invalid="true"' in edited.text and "Consent" in edited.text
    after = await Contact.select().where(Contact.id == contact["id"]).first()
    assert after["phone"] == contact["phone"] and after["first_name"] == contact["first_name"]


async def _user_id(email: str) -> int:
    user = await User.select(User.id).where(User.email == email).first()
    assert user is not None
    return int(user["id"])
