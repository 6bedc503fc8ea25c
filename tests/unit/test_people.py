"""Teams, custom roles and per-user overrides: what decide() answers and why, who may change
what, and the audit row each change leaves."""

from __future__ import annotations

import pytest

from tenants.access import members as people
from tenants.access.decide import CATALOGUE, Principal, decide, evaluate
from tenants.access.tables import PermissionOverride
from tenants.accounts.tree import get_account
from tenants.audit.tables import AuditEvent
from tenants.errors import Conflict, PermissionDenied, ValidationFailed
from tests.factories import make_user


def person(world, email: str) -> Principal:
    return Principal(kind="user", label=email, user_id=world.user_ids[email])


async def grants_of(world, email: str, slug: str = "alpha"):
    return await evaluate(person(world, email), world.accounts[slug])


def actor(world, email: str):
    return person(world, email).actor("203.0.113.9")


async def test_team_role_adds_to_membership_role_and_says_which_team(world):
    owner = world.users["Owner"]
    viewer = world.users["Viewer"]
    g = await grants_of(world, owner)
    team = await people.create_team(actor(world, owner), g, name="Support", role="Sender")
    await people.add_team_member(actor(world, owner), g, team.id, world.user_ids[viewer])
    decision = await decide(person(world, viewer), world.accounts["alpha"], "messages.send")
    assert decision.allowed
    assert decision.reason == "role Sender via team Support"
    # What the membership role already gives is still explained by the membership.
    view = await decide(person(world, viewer), world.accounts["alpha"], "messages.view")
    assert view.reason.startswith("role Viewer (membership in Alpha Master)")
    # A user can be in several teams; the union applies.
    finance_team = await people.create_team(actor(world, owner), g, name="Billing", role="Finance")
    await people.add_team_member(actor(world, owner), g, finance_team.id, world.user_ids[viewer])
    assert (await decide(person(world, viewer), world.accounts["alpha"], "credits.buy")).allowed
    actions = [r["action"] for r in await AuditEvent.select(AuditEvent.action)]
    assert actions.count("team.create") == 2 and actions.count("team.member_add") == 2


async def test_deny_override_beats_role_and_team_and_reason_names_who_and_when(world):
    owner = world.users["Owner"]
    sender = world.users["Sender"]
    g = await grants_of(world, owner)
    team = await people.create_team(actor(world, owner), g, name="Sales", role="Sender")
    await people.add_team_member(actor(world, owner), g, team.id, world.user_ids[sender])
    await people.set_override(
        actor(world, owner), g, world.user_ids[sender], "contacts.export", "deny"
    )
    decision = await decide(person(world, sender), world.accounts["alpha"], "contacts.export")
    assert not decision.allowed
    assert decision.reason.startswith(f"denied by user override set by {owner} on 20")
    # Granting it back replaces the deny; the role is not touched.
    await people.set_override(
        actor(world, owner), g, world.user_ids[sender], "contacts.export", "clear"
    )
    back = await decide(person(world, sender), world.accounts["alpha"], "contacts.export")
    assert back.allowed and "role Sender" in back.reason
    member = await people.get_member(world.accounts["alpha"], world.user_ids[sender])
    assert member.role == "Sender"
    events = (
        await AuditEvent.select(AuditEvent.action, AuditEvent.before, AuditEvent.after)
        .where(AuditEvent.action.like("override.%"))
        .order_by(AuditEvent.id)
    )
    assert [e["action"] for e in events] == ["override.deny", "override.clear"]
    assert '"effect": "deny"' in events[1]["before"] and events[1]["after"] == ""


async def test_grant_override_beats_missing_role_permission(world):
    owner = world.users["Owner"]
    support = world.users["Support"]
    g = await grants_of(world, owner)
    assert not (await decide(person(world, support), world.accounts["alpha"], "templates.manage"))
    await people.set_override(
        actor(world, owner), g, world.user_ids[support], "templates.manage", "grant"
    )
    decision = await decide(person(world, support), world.accounts["alpha"], "templates.manage")
    assert decision.allowed
    assert decision.reason.startswith(f"granted by override set by {owner} on ")


def test_deny_beats_grant_among_overrides():
    from datetime import UTC, datetime

    from tenants.access.decide import Grants, Override, RoleSource
    from tenants.accounts.tree import AccountView

    account = AccountView(1, "A", "a", "master", None, "/1/", 0, "active", "inherit", 0)
    at = datetime(2026, 11, 22, tzinfo=UTC)
    grants = Grants(
        account=account,
        role="Viewer",
        where="membership in A",
        home_id=1,
        sources=(RoleSource("Viewer", frozenset({"account.view"}), "membership in A"),),
        overrides=(
            Override("account.view", "grant", "x@a.test", at),
            Override("account.view", "deny", "y@a.test", at),
        ),
    )
    decision = grants.decide("account.view")
    assert not decision.allowed
    assert decision.reason == "denied by user override set by y@a.test on 2026-11-22"


async def test_deny_override_on_management_power_also_applies_below(world):
    owner = world.users["Owner"]
    admin = world.users["Admin"]
    g = await grants_of(world, owner)
    await people.set_override(
        actor(world, owner), g, world.user_ids[admin], "accounts.manage", "deny"
    )
    below = await decide(person(world, admin), world.accounts["alpha-one"], "accounts.manage")
    assert not below.allowed and "denied by user override" in below.reason


async def test_grant_override_of_read_data_opens_sub_accounts_data(world):
    owner = world.users["Owner"]
    g = await grants_of(world, owner)
    # The Owner cannot hand out what the Owner does not hold.
    with pytest.raises(PermissionDenied):
        await people.set_override(
            actor(world, owner),
            g,
            world.user_ids[world.users["Admin"]],
            "subaccounts.read_data",
            "grant",
        )
    assert not (
        await decide(person(world, owner), world.accounts["alpha-one"], "messages.view")
    ).allowed


async def test_custom_role_defined_by_master_is_usable_below_and_built_ins_are_fixed(world):
    owner = world.users["Owner"]
    g = await grants_of(world, owner)
    role = await people.create_custom_role(
        actor(world, owner),
        g,
        name="Sales",
        permissions={"account.view", "messages.send", "contacts.view", "contacts.manage"},
    )
    assert role.permissions == {"account.view", "messages.send", "contacts.view", "contacts.manage"}
    # A sub-account member can hold the master's custom role.
    sub_g = await grants_of(world, owner, "alpha-one")
    await people.change_member_role(
        actor(world, owner), sub_g, world.user_ids["sender@alpha-one.test"], "Sales"
    )
    sales = person(world, "sender@alpha-one.test")
    ok = await decide(sales, world.accounts["alpha-one"], "messages.send")
    assert ok.allowed and ok.reason == "role Sales (membership in Alpha One)"
    assert not (await decide(sales, world.accounts["alpha-one"], "contacts.export")).allowed
    # Editing the role changes every holder at once.
    await people.update_custom_role(
        actor(world, owner), g, role.id, permissions={"account.view", "contacts.export"}
    )
    assert (await decide(sales, world.accounts["alpha-one"], "contacts.export")).allowed
    assert not (await decide(sales, world.accounts["alpha-one"], "messages.send")).allowed
    # Built-in names cannot be reused, nor can one name exist twice in a tree.
    with pytest.raises(ValidationFailed) as exc:
        await people.create_custom_role(
            actor(world, owner), g, name="admin", permissions={"account.view"}
        )
    assert "built-in" in exc.value.errors["name"]
    with pytest.raises(ValidationFailed) as exc:
        await people.create_custom_role(
            actor(world, owner), sub_g, name="Sales", permissions={"account.view"}
        )
    assert "already exists" in exc.value.errors["name"]
    # A role in use cannot be deleted.
    with pytest.raises(Conflict):
        await people.delete_custom_role(actor(world, owner), g, role.id)
    # Another master does not see it.
    other = await people.roles_for_account(await get_account(world.accounts["beta"]))
    assert "Sales" not in [r.name for r in other]


async def test_nobody_hands_out_powers_they_lack(world):
    admin = world.users["Admin"]  # Admin lacks credits.buy
    g = await grants_of(world, admin)
    with pytest.raises(ValidationFailed) as exc:
        await people.change_member_role(
            actor(world, admin), g, world.user_ids[world.users["Viewer"]], "Owner"
        )
    assert "credits.buy" in exc.value.errors["role"]
    with pytest.raises(ValidationFailed) as exc:
        await people.create_custom_role(
            actor(world, admin), g, name="Buyer", permissions={"credits.buy"}
        )
    assert "credits.buy" in exc.value.errors["permissions"]
    with pytest.raises(PermissionDenied):
        await people.set_override(
            actor(world, admin), g, world.user_ids[world.users["Viewer"]], "credits.buy", "grant"
        )
    # ... and cannot demote someone more powerful than themselves.
    with pytest.raises(PermissionDenied):
        await people.change_member_role(
            actor(world, admin), g, world.user_ids[world.users["Owner"]], "Viewer"
        )
    assert await PermissionOverride.count() == 0


async def test_master_keeps_an_owner(world):
    owner = world.users["Owner"]
    g = await grants_of(world, owner)
    with pytest.raises(Conflict) as exc:
        await people.change_member_role(actor(world, owner), g, world.user_ids[owner], "Admin")
    assert exc.value.code == "last_owner"


async def test_removing_a_member_takes_teams_and_overrides_with_it(world):
    owner = world.users["Owner"]
    sender = world.users["Sender"]
    g = await grants_of(world, owner)
    team = await people.create_team(actor(world, owner), g, name="Sales", role="Sender")
    await people.add_team_member(actor(world, owner), g, team.id, world.user_ids[sender])
    await people.set_override(
        actor(world, owner), g, world.user_ids[sender], "credits.buy", "grant"
    )
    await people.remove_member(actor(world, owner), g, world.user_ids[sender])
    decision = await decide(person(world, sender), world.accounts["alpha"], "account.view")
    assert not decision.allowed and "not a member" in decision.reason
    assert await PermissionOverride.count() == 0
    assert (await people.list_teams(world.accounts["alpha"]))[0].members == ()


async def test_matrix_lists_every_permission_with_a_reason(world):
    owner = world.users["Owner"]
    g = await grants_of(world, owner)
    finance = world.user_ids[world.users["Finance"]]
    await people.set_override(actor(world, owner), g, finance, "messages.send", "deny")
    rows = await people.permission_matrix(world.accounts["alpha"], finance)
    assert [r.permission for r in rows] == list(CATALOGUE)
    by = {r.permission: r for r in rows}
    assert (
        by["credits.buy"].allowed
        and by["credits.buy"].reason == "role Finance (membership in Alpha Master)"
    )
    assert not by["messages.send"].allowed and by["messages.send"].override == "deny"
    assert "does not include messages.send_template" in by["messages.send_template"].reason


async def test_team_in_another_account_or_tenant_is_not_found(world):
    from tenants.errors import NotFound

    owner = world.users["Owner"]
    beta_owner = "owner@beta.test"
    g = await grants_of(world, owner)
    team = await people.create_team(actor(world, owner), g, name="Sales", role="Sender")
    beta_g = await grants_of(world, beta_owner, "beta")
    with pytest.raises(NotFound):
        await people.delete_team(actor(world, beta_owner), beta_g, team.id)
    # Only members of the account can join its teams.
    outsider = await make_user("outsider@alpha-one.test", world.accounts["alpha-one"], "Viewer")
    with pytest.raises(ValidationFailed):
        await people.add_team_member(actor(world, owner), g, team.id, outsider)


async def test_evaluate_stays_a_few_queries(world):
    """The guard calls evaluate on every request: count the statements it runs."""
    from tenants.db import DB

    owner = world.users["Owner"]
    sender = world.users["Sender"]
    g = await grants_of(world, owner)
    await people.create_custom_role(
        actor(world, owner), g, name="Sales", permissions={"account.view"}
    )
    team = await people.create_team(actor(world, owner), g, name="Sales team", role="Sales")
    await people.add_team_member(actor(world, owner), g, team.id, world.user_ids[sender])
    await people.set_override(
        actor(world, owner), g, world.user_ids[sender], "contacts.export", "deny"
    )
    calls = 0
    original = DB.run_querystring

    async def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    DB.run_querystring = counting  # type: ignore[method-assign]
    try:
        grants = await evaluate(person(world, sender), world.accounts["alpha"])
    finally:
        DB.run_querystring = original  # type: ignore[method-assign]
    assert grants.decide("account.view").allowed
    # The account with its ancestors; memberships, teams and overrides; the custom role.
    assert calls <= 3, calls
