"""decide(): built-in roles, reach down the subtree, data kept from above, suspension."""

from __future__ import annotations

import pytest

from tenants.access.decide import BUILTIN_ROLES, CATALOGUE, Principal, decide
from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM


def person(world, email: str) -> Principal:
    return Principal(kind="user", label=email, user_id=world.user_ids[email])


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("Finance", "credits.buy", True),
        ("Finance", "messages.send", False),
        ("Finance", "users.manage", False),
        ("Support", "messages.send_template", True),
        ("Support", "messages.send", False),
        ("Sender", "contacts.export", True),
        ("Sender", "accounts.manage", False),
        ("Viewer", "messages.send_template", False),
        ("Admin", "credits.buy", False),
        ("Owner", "credits.buy", True),
        ("Owner", "platform.operate", False),
    ],
)
async def test_builtin_roles_in_own_account(world, role, permission, allowed):
    decision = await decide(person(world, world.users[role]), world.accounts["alpha"], permission)
    assert decision.allowed is allowed
    assert role in decision.reason or "platform" in decision.reason


async def test_management_reaches_down_but_data_does_not(world):
    owner = person(world, world.users["Owner"])
    sub = world.accounts["alpha-one"]
    assert (await decide(owner, sub, "accounts.manage")).allowed
    data = await decide(owner, sub, "messages.view")
    assert not data.allowed
    assert "not readable from above" in data.reason


async def test_no_reach_upward_or_sideways(world):
    sub_sender = person(world, "sender@alpha-one.test")
    assert not (await decide(sub_sender, world.accounts["alpha"], "account.view")).allowed
    assert not (await decide(sub_sender, world.accounts["beta-one"], "account.view")).allowed
    assert not (
        await decide(person(world, world.users["Owner"]), world.accounts["beta"], "account.view")
    ).allowed


async def test_suspended_account_blocks_its_users_but_not_the_master(world):
    await accounts.set_status(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        account_id=world.accounts["alpha-one"],
        status="suspended",
    )
    sender = person(world, "sender@alpha-one.test")
    send = await decide(sender, world.accounts["alpha-one"], "messages.send")
    assert not send.allowed and "suspended" in send.reason
    assert not (await decide(sender, world.accounts["alpha-one"], "account.view")).allowed
    owner = person(world, world.users["Owner"])
    assert (await decide(owner, world.accounts["alpha-one"], "account.view")).allowed
    assert (await decide(owner, world.accounts["alpha-one"], "accounts.manage")).allowed
    assert not (await decide(owner, world.accounts["alpha-one"], "templates.manage")).allowed


async def test_operator_is_allowed_everywhere(world):
    op = Principal(
        kind="user", label="op", user_id=world.user_ids["operator@platform.test"], is_operator=True
    )
    for name in CATALOGUE:
        assert (await decide(op, world.accounts["beta-one"], name)).allowed


def test_catalogue_covers_roles():
    for perms in BUILTIN_ROLES.values():
        assert perms <= set(CATALOGUE)
