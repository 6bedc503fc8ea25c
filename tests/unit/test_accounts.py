"""Account tree services: paths, subtree queries, validation, suspension cascade."""

from __future__ import annotations

import pytest

from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tenants.errors import NotFound, ValidationFailed


async def test_materialized_path_and_subtree(world):
    a = world.accounts["alpha"]
    child = await accounts.create_sub_account(
        actor=SYSTEM,
        within_account_id=a,
        parent_id=world.accounts["alpha-one"],
        name="Deep",
        slug="deep",
    )
    assert child.path == f"/{a}/{world.accounts['alpha-one']}/{child.id}/"
    assert child.depth == 2
    slugs = [x.slug for x in await accounts.subtree(a)]
    assert slugs == ["alpha", "alpha-one", "deep"]
    assert "beta" not in slugs


@pytest.mark.parametrize(
    ("name", "slug", "field"),
    [
        ("", "ok-slug", "name"),
        ("Name", "Bad Slug!", "slug"),
        ("Name", "-lead", "slug"),
        ("Name", "", "slug"),
        ("Name", "alpha", "slug"),  # taken
    ],
)
async def test_create_sub_account_rejects_bad_input_and_writes_nothing(world, name, slug, field):
    before = len(await accounts.subtree(world.accounts["alpha"]))
    with pytest.raises(ValidationFailed) as exc:
        await accounts.create_sub_account(
            actor=SYSTEM,
            within_account_id=world.accounts["alpha"],
            parent_id=world.accounts["alpha"],
            name=name,
            slug=slug,
        )
    assert field in exc.value.errors
    assert len(await accounts.subtree(world.accounts["alpha"])) == before


async def test_cannot_create_under_another_tenant(world):
    with pytest.raises(NotFound):
        await accounts.create_sub_account(
            actor=SYSTEM,
            within_account_id=world.accounts["alpha"],
            parent_id=world.accounts["beta"],
            name="Sneaky",
            slug="sneaky",
        )
    with pytest.raises(NotFound):
        await accounts.get_account_by_slug("sneaky")


async def test_suspension_cascades_and_reactivation_restores(world):
    a = world.accounts["alpha"]
    one = world.accounts["alpha-one"]
    deep = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=a, parent_id=one, name="Deep", slug="deep"
    )
    await accounts.set_status(actor=SYSTEM, within_account_id=a, account_id=one, status="suspended")
    blocked = await accounts.suspended_ancestor(await accounts.get_account(deep.id))
    assert blocked is not None and blocked.id == one
    await accounts.set_status(actor=SYSTEM, within_account_id=a, account_id=one, status="active")
    assert await accounts.suspended_ancestor(await accounts.get_account(deep.id)) is None
    actions = [r["action"] for r in await AuditEvent.select(AuditEvent.action)]
    assert "account.suspend" in actions and "account.reactivate" in actions


async def test_an_account_cannot_suspend_itself(world):
    from tenants.errors import Conflict

    with pytest.raises(Conflict):
        await accounts.set_status(
            actor=SYSTEM,
            within_account_id=world.accounts["alpha-one"],
            account_id=world.accounts["alpha-one"],
            status="suspended",
        )
