"""/users, invitations, the permission matrix with its htmx override buttons, /teams and
/roles, as an admin uses them."""

from __future__ import annotations

import re

from tenants.access import members as people
from tenants.access.decide import CATALOGUE, Principal, decide
from tenants.access.tables import Invitation, Membership, PermissionOverride, User
from tenants.audit.tables import AuditEvent
from tenants.clock import now
from tests.conftest import PASSWORD, another_client, csrf_token, login
from tests.factories import HX

LINK_RE = re.compile(r'id="invite-link" readonly value="([^"]+)"')


def person(world, email: str) -> Principal:
    return Principal(kind="user", label=email, user_id=world.user_ids[email])


async def invite(client, token, email, role="Sender", teams=()):
    return await client.post(
        "/users/invitations",
        data={"_csrf_token": token, "email": email, "role": role, "teams": [str(t) for t in teams]},
        headers=HX,
    )


async def test_users_page_lists_members_with_roles_and_teams(client, world):
    await login(client, world.users["Owner"])
    page = await client.get("/users")
    assert page.status_code == 200
    for email in world.users.values():
        assert f'data-email="{email}"' in page.text
    assert 'href="/users"' in page.text  # the side navigation now links here


async def test_invitation_link_lets_a_new_person_join_with_the_role(client, world):
    token = await login(client, world.users["Owner"])
    owner_g = await people.member_grants(
        world.accounts["alpha"], world.user_ids[world.users["Owner"]]
    )
    team = await people.create_team(
        person(world, world.users["Owner"]).actor(), owner_g, name="Support desk", role="Support"
    )
    r = await invite(client, token, "New.Person@Example.test", role="Finance", teams=[team.id])
    assert r.status_code == 201
    link = LINK_RE.search(r.text).group(1)
    assert link.startswith("http://testserver.local/invite/")
    path = link.removeprefix("http://testserver.local")
    # Only the token's hash is stored.
    row = await Invitation.select().first()
    assert path.rsplit("/", 1)[1] not in str(row)
    async with another_client() as guest:
        page = await guest.get(path)
        assert page.status_code == 200 and "as <strong>Finance</strong>" in page.text
        csrf = await csrf_token(guest, path)
        short = await guest.post(
            path, data={"_csrf_token": csrf, "password": "short", "password_confirm": "short"}
        )
        assert short.status_code == 422 and "at least 10 characters" in short.text
        assert await User.count().where(User.email == "new.person@example.test") == 0
        done = await guest.post(
            path,
            data={
                "_csrf_token": csrf,
                "name": "New Person",
                "password": "a-good-password",
                "password_confirm": "a-good-password",
            },
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == "/"
        home = await guest.get("/")
        assert home.status_code == 200 and "Alpha Master" in home.text
        # Single use: the same link cannot be used again.
        again = await guest.get(path)
        assert again.status_code == 410 and "already used" in again.text
    user = await User.select(User.id).where(User.email == "new.person@example.test").first()
    buy = await decide(
        Principal(kind="user", label="x", user_id=user["id"]),
        world.accounts["alpha"],
        "messages.send_template",
    )
    assert buy.allowed and buy.reason == "role Support via team Support desk"
    actions = [e["action"] for e in await AuditEvent.select(AuditEvent.action)]
    assert "invitation.create" in actions and "invitation.accept" in actions


async def test_existing_user_invited_elsewhere_gets_a_second_membership(client, world):
    token = await login(client, "owner@beta.test")
    email = world.users["Viewer"]  # a member of alpha
    r = await invite(client, token, email, role="Sender")
    path = LINK_RE.search(r.text).group(1).removeprefix("http://testserver.local")
    async with another_client() as guest:
        page = await guest.get(path)
        assert "enter your password" in page.text
        csrf = await csrf_token(guest, path)
        wrong = await guest.post(path, data={"_csrf_token": csrf, "password": "not-my-password"})
        assert wrong.status_code == 422 and "not the password" in wrong.text
        ok = await guest.post(
            path, data={"_csrf_token": csrf, "password": PASSWORD}, follow_redirects=False
        )
        assert ok.status_code == 303
    rows = await Membership.select(Membership.account).where(
        Membership.user == world.user_ids[email]
    )
    assert sorted(r["account"] for r in rows) == sorted(
        [world.accounts["alpha"], world.accounts["beta"]]
    )


async def test_expired_and_withdrawn_invitations_are_refused(client, world):
    token = await login(client, world.users["Admin"])
    r = await invite(client, token, "late@example.test")
    path = LINK_RE.search(r.text).group(1).removeprefix("http://testserver.local")
    await Invitation.update({Invitation.expires_at: now()}).where(
        Invitation.email == "late@example.test"
    )
    assert (await client.get(path)).status_code == 410
    # A new link revives it; the old one stays dead.
    inv = await Invitation.select(Invitation.id).first()
    renewed = await client.post(
        f"/users/invitations/{inv['id']}/renew", data={"_csrf_token": token}, headers=HX
    )
    new_path = LINK_RE.search(renewed.text).group(1).removeprefix("http://testserver.local")
    assert (await client.get(path)).status_code == 404
    assert (await client.get(new_path)).status_code == 200
    await client.post(
        f"/users/invitations/{inv['id']}/revoke", data={"_csrf_token": token}, headers=HX
    )
    withdrawn = await client.get(new_path)
    assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.text
    assert (await client.get("/invite/not-a-token")).status_code == 404


async def test_invite_validation_names_the_field_and_writes_nothing(client, world):
    token = await login(client, world.users["Admin"])
    r = await invite(client, token, "not-an-email")
    assert r.status_code == 422 and "Enter a valid email address" in r.text
    r = await invite(client, token, "x@example.test", role="Owner")  # Admin lacks credits.buy
    assert r.status_code == 422 and "credits.buy" in r.text
    r = await invite(client, token, world.users["Sender"])
    assert r.status_code == 422 and "already a member" in r.text
    assert await Invitation.count() == 0


async def test_matrix_shows_why_and_override_buttons_swap_one_row(client, world):
    token = await login(client, world.users["Owner"])
    sender_id = world.user_ids[world.users["Sender"]]
    page = await client.get(f"/users/{sender_id}/permissions")
    assert page.status_code == 200
    assert page.text.count('data-permission="') == len(CATALOGUE)  # one row per permission
    assert "role Sender (membership in Alpha Master)" in page.text
    r = await client.post(
        f"/users/{sender_id}/overrides",
        data={"_csrf_token": token, "permission": "contacts.export", "effect": "deny"},
        headers=HX,
    )
    assert r.status_code == 200
    assert r.text.strip().startswith('<tr id="perm-contacts-export"')
    assert "<html" not in r.text and 'data-allowed="no"' in r.text
    assert f"denied by user override set by {world.users['Owner']} on " in r.text
    r = await client.post(
        f"/users/{sender_id}/overrides",
        data={"_csrf_token": token, "permission": "contacts.export", "effect": "clear"},
        headers=HX,
    )
    assert 'data-allowed="yes"' in r.text and "role Sender" in r.text
    assert await PermissionOverride.count() == 0


async def test_matrix_of_someone_in_another_tenant_is_404(client, world):
    await login(client, world.users["Owner"])
    r = await client.get(f"/users/{world.user_ids['owner@beta.test']}/permissions")
    assert r.status_code == 404


async def test_role_change_by_htmx_and_refusal_shows_next_to_the_row(client, world):
    token = await login(client, world.users["Admin"])
    viewer_id = world.user_ids[world.users["Viewer"]]
    r = await client.post(
        f"/users/{viewer_id}/role", data={"_csrf_token": token, "role": "Sender"}, headers=HX
    )
    assert r.status_code == 200 and f'id="member-{viewer_id}"' in r.text
    assert (await people.get_member(world.accounts["alpha"], viewer_id)).role == "Sender"
    owner_id = world.user_ids[world.users["Owner"]]
    r = await client.post(
        f"/users/{owner_id}/role", data={"_csrf_token": token, "role": "Viewer"}, headers=HX
    )
    assert r.status_code == 403 and "credits.buy" in r.text
    assert (await people.get_member(world.accounts["alpha"], owner_id)).role == "Owner"


async def test_teams_page_create_join_and_leave(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/teams", data={"_csrf_token": token, "name": "Front desk", "role": "Support"}, headers=HX
    )
    assert r.status_code == 200 and 'data-team="Front desk"' in r.text
    team = (await people.list_teams(world.accounts["alpha"]))[0]
    viewer_id = world.user_ids[world.users["Viewer"]]
    r = await client.post(
        f"/teams/{team.id}/members",
        data={"_csrf_token": token, "user_id": str(viewer_id)},
        headers=HX,
    )
    assert r.status_code == 200 and world.users["Viewer"] in r.text
    decision = await decide(
        person(world, world.users["Viewer"]), world.accounts["alpha"], "messages.send_template"
    )
    assert decision.reason == "role Support via team Front desk"
    dup = await client.post(
        "/teams", data={"_csrf_token": token, "name": "Front desk", "role": "Support"}, headers=HX
    )
    assert dup.status_code == 422 and "already exists" in dup.text
    await client.post(
        f"/teams/{team.id}/members/{viewer_id}/remove", data={"_csrf_token": token}, headers=HX
    )
    assert not (
        await decide(
            person(world, world.users["Viewer"]), world.accounts["alpha"], "messages.send_template"
        )
    )


async def test_roles_page_defines_a_custom_role_and_builtins_are_read_only(client, world):
    token = await login(client, world.users["Owner"])
    page = await client.get("/roles")
    assert page.status_code == 200 and 'data-role="Owner"' in page.text
    assert 'href="/roles/' not in page.text  # nothing editable yet: built-ins only
    r = await client.post(
        "/roles",
        data={
            "_csrf_token": token,
            "name": "Sales",
            "description": "Sends, no exports",
            "permissions": ["account.view", "messages.send", "contacts.view"],
        },
        headers=HX,
    )
    assert r.status_code == 200 and 'data-role="Sales"' in r.text
    role = (await people.roles_for_account(await _account(world, "alpha")))[-1]
    assert role.name == "Sales" and not role.builtin
    edit = await client.get(f"/roles/{role.id}")
    assert edit.status_code == 200
    r = await client.post(
        f"/roles/{role.id}",
        data={"_csrf_token": token, "description": "", "permissions": ["account.view"]},
        headers=HX,
    )
    assert r.status_code == 200 and "Saved" in r.text
    bad = await client.post(
        "/roles",
        data={"_csrf_token": token, "name": "Owner", "permissions": ["account.view"]},
        headers=HX,
    )
    assert bad.status_code == 422 and "built-in" in bad.text
    # A Finance user has no roles.manage.
    assert (await client.get("/roles")).status_code == 200
    await client.post("/logout", data={"_csrf_token": token})
    await login(client, world.users["Finance"])
    assert (await client.get("/roles")).status_code == 403


async def _account(world, slug):
    from tenants.accounts.tree import get_account

    return await get_account(world.accounts[slug])
