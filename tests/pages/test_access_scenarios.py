"""The seed scenarios of access control, at decide() level and on every route of the app
that needs the permission in question (pages with a session, /api with a key):
support staff cannot send free text, finance can buy but cannot send, and a Sender with a
deny override on contacts.export is refused on every export path until it is lifted."""

from __future__ import annotations

from tenants.access import apikeys
from tenants.access import members as people
from tenants.access.decide import Principal, decide
from tenants.audit.record import SYSTEM
from tests.api.conftest import basic
from tests.conftest import login
from tests.pages.test_role_route_matrix import ROUTES, RouteCase


def person(world, role: str) -> Principal:
    email = world.users[role]
    return Principal(kind="user", label=email, user_id=world.user_ids[email])


def routes_needing(permission: str) -> list[RouteCase]:
    return [c for c in ROUTES if c.permission == permission]


async def statuses(client, world, role: str, cases: list[RouteCase]) -> dict[str, int]:
    """The status of each route for a role: pages signed in, /api with a key of the role."""
    token = await login(client, world.users[role])
    key = await apikeys.create_api_key(
        actor=SYSTEM, account_id=world.accounts["alpha"], name=f"{role}-key", role=role
    )
    out = {}
    for case in cases:
        is_api = case.template.startswith("/api/")
        headers = basic(key.key_id, key.secret) if is_api else {"x-csrftoken": token}
        # An empty body: a refused request stops at the guard, an allowed one at validation.
        response = await client.request(
            case.method, case.url, headers=headers, follow_redirects=False
        )
        out[f"{case.method} {case.url}"] = response.status_code
    return out


async def test_support_cannot_send_free_text_anywhere(client, world):
    support = person(world, "Support")
    alpha = world.accounts["alpha"]
    free_text = await decide(support, alpha, "messages.send")
    assert not free_text.allowed
    assert (
        free_text.reason
        == "role Support (membership in Alpha Master) does not include messages.send"
    )
    assert (await decide(support, alpha, "messages.send_template")).allowed
    found = await statuses(client, world, "Support", routes_needing("messages.send"))
    assert all(status == 403 for status in found.values()), found


async def test_finance_can_buy_credits_but_cannot_send(client, world):
    finance = person(world, "Finance")
    alpha = world.accounts["alpha"]
    assert (await decide(finance, alpha, "credits.buy")).allowed
    for permission in ("messages.send", "messages.send_template", "campaigns.manage"):
        decision = await decide(finance, alpha, permission)
        assert not decision.allowed and "Finance" in decision.reason
    sending = routes_needing("messages.send") + routes_needing("messages.send_template")
    found = await statuses(client, world, "Finance", sending)
    assert all(status == 403 for status in found.values()), found
    buying = [c for c in routes_needing("credits.buy") if c.method == "GET"]
    found = await statuses(client, world, "Finance", buying)
    assert all(status != 403 for status in found.values()), found


async def test_sender_with_export_denied_is_refused_on_every_export_path_until_lifted(
    client, world
):
    owner = person(world, "Owner")
    sender = person(world, "Sender")
    alpha = world.accounts["alpha"]
    grants = await people.member_grants(alpha, owner.user_id)
    await people.set_override(owner.actor(), grants, sender.user_id, "contacts.export", "deny")

    refused = await decide(sender, alpha, "contacts.export")
    assert not refused.allowed
    assert refused.reason.startswith(f"denied by user override set by {owner.label} on ")
    # Everything else the Sender role gives still works.
    assert (await decide(sender, alpha, "contacts.view")).allowed
    # Pages and CSV links (a person's session); /api acts with a key's role, tested below.
    exports = [c for c in routes_needing("contacts.export") if not c.template.startswith("/api/")]
    found = await statuses(client, world, "Sender", exports)
    assert "GET /contacts/export.csv" in found
    assert all(status == 403 for status in found.values()), found

    # Granting it back is an override change only: the role stays Sender.
    await people.set_override(owner.actor(), grants, sender.user_id, "contacts.export", "grant")
    back = await decide(sender, alpha, "contacts.export")
    assert back.allowed and back.reason.startswith("granted by override set by")
    assert (await people.get_member(alpha, sender.user_id)).role == "Sender"
    reads = [c for c in exports if c.method == "GET"]
    found = await statuses(client, world, "Sender", reads)
    assert all(status != 403 for status in found.values()), found


async def test_api_key_of_a_sender_follows_its_role_not_any_person(client, world):
    """A key's role decides for the key: a person's override does not leak into it."""
    owner = person(world, "Owner")
    grants = await people.member_grants(world.accounts["alpha"], owner.user_id)
    await people.set_override(
        owner.actor(), grants, person(world, "Sender").user_id, "contacts.export", "deny"
    )
    key = await apikeys.create_api_key(
        actor=SYSTEM, account_id=world.accounts["alpha"], name="sender-key", role="Sender"
    )
    principal = await apikeys.authenticate_key(key.key_id, key.secret)
    assert principal is not None
    decision = await decide(principal, world.accounts["alpha"], "contacts.export")
    assert decision.allowed and "API key sender-key" in decision.reason


async def test_free_text_send_follows_overrides_on_the_send_page(client, world):
    """The send page asks decide() for messages.send: a deny override on a Sender stops free
    text (403, nothing written), a grant override lets Support type it."""
    from tenants.messaging.tables import Message
    from tests.pages.test_sending_pages import HX, form, fund

    owner = person(world, "Owner")
    alpha = world.accounts["alpha"]
    await fund(alpha)
    grants = await people.member_grants(alpha, owner.user_id)
    await people.set_override(
        owner.actor(), grants, person(world, "Sender").user_id, "messages.send", "deny"
    )
    await people.set_override(
        owner.actor(), grants, person(world, "Support").user_id, "messages.send", "grant"
    )
    csrf = await login(client, world.users["Sender"])
    refused = await client.post("/send", data=form(csrf, action="send"), headers=HX)
    assert refused.status_code == 403
    assert await Message.count() == 0
    csrf = await login(client, world.users["Support"])
    assert 'name="body"' in (await client.get("/send")).text
    sent = await client.post("/send", data=form(csrf, action="send"), headers=HX)
    assert sent.status_code == 201, sent.text
    assert await Message.count() == 3
