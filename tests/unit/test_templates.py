"""Template services: versions and approval, maker-checker, sharing down the tree."""

from __future__ import annotations

import asyncio

import pytest

from tenants.audit.record import Actor
from tenants.audit.tables import AuditEvent
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.templates import templates

ALICE = Actor(user_id=101, label="alice@example.test")
BOB = Actor(user_id=102, label="bob@example.test")


async def _approved(account_id: int, name: str = "Reminder", body: str = "Hi there") -> int:
    created = await templates.create_template(
        actor=ALICE, account_id=account_id, name=name, body=body, shared_down=True
    )
    assert created.version_id is not None
    await templates.approve_version(
        actor=BOB, account_id=account_id, template_id=created.id, version_id=created.version_id
    )
    return created.id


async def test_new_template_is_a_draft_that_cannot_be_sent(world):
    alpha = world.accounts["alpha"]
    created = await templates.create_template(
        actor=ALICE, account_id=alpha, name="Welcome", body="Welcome {{first_name}}"
    )
    assert created.status == "draft" and created.body == "Welcome {{first_name}}"
    assert await templates.usable_templates(alpha) == []
    assert [t.id for t in await templates.usable_templates(alpha, status=None)] == [created.id]
    with pytest.raises(NotFound):
        await templates.get_usable_template(alpha, created.id)


async def test_edit_of_approved_template_keeps_the_approved_text_until_approved(world):
    alpha = world.accounts["alpha"]
    template_id = await _approved(alpha, body="Version one")
    detail = await templates.edit_template(
        actor=ALICE, account_id=alpha, template_id=template_id, body="Version two"
    )
    assert detail.pending is not None and detail.pending.number == 2
    assert detail.approved is not None and detail.approved.body == "Version one"
    usable = await templates.get_usable_template(alpha, template_id)
    assert usable.body == "Version one" and usable.status == "approved"

    await templates.approve_version(
        actor=BOB, account_id=alpha, template_id=template_id, version_id=detail.pending.id
    )
    usable = await templates.get_usable_template(alpha, template_id)
    assert usable.body == "Version two"
    detail = await templates.template_detail(alpha, template_id)
    assert [(v.number, v.status) for v in detail.versions] == [(2, "approved"), (1, "archived")]


async def test_a_second_edit_supersedes_the_waiting_draft(world):
    alpha = world.accounts["alpha"]
    template_id = await _approved(alpha)
    first = await templates.edit_template(
        actor=ALICE, account_id=alpha, template_id=template_id, body="Draft A"
    )
    second = await templates.edit_template(
        actor=BOB, account_id=alpha, template_id=template_id, body="Draft B"
    )
    assert second.pending is not None and second.pending.body == "Draft B"
    assert first.pending is not None
    with pytest.raises(Conflict):
        await templates.approve_version(
            actor=BOB, account_id=alpha, template_id=template_id, version_id=first.pending.id
        )


async def test_unchanged_text_writes_no_version(world):
    alpha = world.accounts["alpha"]
    template_id = await _approved(alpha, body="Same")
    detail = await templates.edit_template(
        actor=ALICE, account_id=alpha, template_id=template_id, name="Renamed", body="Same"
    )
    assert detail.pending is None and detail.template.name == "Renamed"
    assert len(detail.versions) == 1


async def test_maker_checker_stops_the_author_not_another_approver(world):
    alpha = world.accounts["alpha"]
    await templates.set_maker_checker(actor=BOB, account_id=alpha, enabled=True)
    created = await templates.create_template(
        actor=ALICE, account_id=alpha, name="Promo", body="Sale today"
    )
    assert created.version_id is not None
    with pytest.raises(PermissionDenied, match="author"):
        await templates.approve_version(
            actor=ALICE, account_id=alpha, template_id=created.id, version_id=created.version_id
        )
    assert (await templates.template_detail(alpha, created.id)).template.status == "draft"
    await templates.approve_version(
        actor=BOB, account_id=alpha, template_id=created.id, version_id=created.version_id
    )
    assert (await templates.get_usable_template(alpha, created.id)).body == "Sale today"


async def test_without_maker_checker_the_author_may_approve(world):
    alpha = world.accounts["alpha"]
    created = await templates.create_template(
        actor=ALICE, account_id=alpha, name="Promo", body="Sale today"
    )
    assert created.version_id is not None
    await templates.approve_version(
        actor=ALICE, account_id=alpha, template_id=created.id, version_id=created.version_id
    )
    assert (await templates.get_usable_template(alpha, created.id)).status == "approved"


async def test_shared_template_is_usable_below_and_read_only_there(world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    template_id = await _approved(alpha, body="From the master")
    usable = await templates.get_usable_template(sub, template_id)
    assert usable.account_id == alpha and usable.body == "From the master"
    assert [t.id for t in await templates.usable_templates(sub)] == [template_id]
    with pytest.raises(PermissionDenied, match="Alpha Master"):
        await templates.edit_template(
            actor=ALICE, account_id=sub, template_id=template_id, body="Hijack"
        )
    with pytest.raises(PermissionDenied):
        await templates.archive_template(actor=ALICE, account_id=sub, template_id=template_id)
    assert (await templates.get_usable_template(alpha, template_id)).body == "From the master"


async def test_sharing_reaches_only_down_and_only_approved_versions(world):
    alpha, sub, beta = world.accounts["alpha"], world.accounts["alpha-one"], world.accounts["beta"]
    own_sub = await _approved(sub, name="Branch only")
    shared = await _approved(alpha)
    unshared = await templates.create_template(
        actor=ALICE, account_id=alpha, name="Private", body="Only alpha"
    )
    draft_shared = await templates.create_template(
        actor=ALICE, account_id=alpha, name="Draft shared", body="Not yet", shared_down=True
    )
    # The master does not use its sub-account's templates; a sibling tree sees nothing.
    with pytest.raises(NotFound):
        await templates.get_usable_template(alpha, own_sub)
    for other in (shared, unshared.id, draft_shared.id):
        with pytest.raises(NotFound):
            await templates.get_usable_template(beta, other)
    visible = {t.id for t in await templates.usable_templates(sub, status=None)}
    assert visible == {own_sub, shared}
    with pytest.raises(NotFound):
        await templates.template_detail(sub, draft_shared.id)


async def test_unsharing_and_archiving_withdraw_the_template_below(world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    template_id = await _approved(alpha)
    await templates.edit_template(
        actor=ALICE, account_id=alpha, template_id=template_id, shared_down=False
    )
    with pytest.raises(NotFound):
        await templates.get_usable_template(sub, template_id)
    await templates.edit_template(
        actor=ALICE, account_id=alpha, template_id=template_id, shared_down=True
    )
    assert await templates.get_usable_template(sub, template_id)
    detail = await templates.archive_template(
        actor=ALICE, account_id=alpha, template_id=template_id
    )
    assert detail.template.status == "archived"
    assert all(v.status == "archived" for v in detail.versions)
    for account in (alpha, sub):
        with pytest.raises(NotFound):
            await templates.get_usable_template(account, template_id)
    with pytest.raises(Conflict):
        await templates.edit_template(
            actor=ALICE, account_id=alpha, template_id=template_id, body="Back again"
        )


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("", "Hello", "name"),
        ("x" * 121, "Hello", "name"),
        ("Fine", "   ", "body"),
        ("Fine", "x" * 1601, "body"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(world, name, body, field):
    alpha = world.accounts["alpha"]
    with pytest.raises(ValidationFailed) as caught:
        await templates.create_template(actor=ALICE, account_id=alpha, name=name, body=body)
    assert field in caught.value.errors
    assert await templates.usable_templates(alpha, status=None) == []


async def test_names_are_unique_per_account_ignoring_case(world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    await templates.create_template(actor=ALICE, account_id=alpha, name="Reminder", body="A")
    with pytest.raises(ValidationFailed, match="already exists"):
        await templates.create_template(actor=ALICE, account_id=alpha, name="reminder", body="B")
    # Another account may use the same name.
    await templates.create_template(actor=ALICE, account_id=sub, name="Reminder", body="C")


async def test_browser_line_breaks_are_stored_as_one_character(world):
    alpha = world.accounts["alpha"]
    created = await templates.create_template(
        actor=ALICE, account_id=alpha, name="Lines", body="One\r\nTwo"
    )
    assert created.body == "One\nTwo"


async def test_every_change_is_audited_with_its_actor(world):
    alpha = world.accounts["alpha"]
    template_id = await _approved(alpha)
    await templates.edit_template(actor=ALICE, account_id=alpha, template_id=template_id, body="B")
    await templates.archive_template(actor=BOB, account_id=alpha, template_id=template_id)
    rows = (
        await AuditEvent.select(AuditEvent.action, AuditEvent.actor_label)
        .where((AuditEvent.target_type == "template") & (AuditEvent.target_id == str(template_id)))
        .order_by(AuditEvent.id)
    )
    assert [(r["action"], r["actor_label"]) for r in rows] == [
        ("template.create", ALICE.label),
        ("template.approve", BOB.label),
        ("template.edit", ALICE.label),
        ("template.archive", BOB.label),
    ]


async def test_two_approvers_racing_for_one_draft_approve_it_once(world):
    alpha = world.accounts["alpha"]
    created = await templates.create_template(actor=ALICE, account_id=alpha, name="Race", body="Go")
    assert created.version_id is not None
    results = await asyncio.gather(
        *(
            templates.approve_version(
                actor=actor, account_id=alpha, template_id=created.id, version_id=created.version_id
            )
            for actor in (ALICE, BOB)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    approvals = await AuditEvent.count().where(AuditEvent.action == "template.approve")
    assert approvals == 1


async def test_demo_seed_shares_the_appointment_reminder_idempotently():
    from tenants.demo import seed_demo

    ids = await seed_demo()
    await seed_demo()
    northwind = await templates.usable_templates(ids["northwind"])
    assert [(t.name, t.status, t.shared_down) for t in northwind] == [
        ("Appointment reminder", "approved", True)
    ]
    assert northwind[0].body == "Hi {{first_name|there}}, see you at {{time}}."
    for slug in ("sydney", "melbourne", "melbourne-events"):
        usable = await templates.usable_templates(ids[slug])
        assert [t.id for t in usable] == [northwind[0].id]


async def test_concurrent_edits_number_versions_once_and_leave_one_draft(world):
    alpha = world.accounts["alpha"]
    template_id = await _approved(alpha, body="Start")
    await asyncio.gather(
        *(
            templates.edit_template(
                actor=ALICE, account_id=alpha, template_id=template_id, body=f"Edit {n}"
            )
            for n in range(5)
        )
    )
    detail = await templates.template_detail(alpha, template_id)
    assert sorted(v.number for v in detail.versions) == [1, 2, 3, 4, 5, 6]
    assert [v.status for v in detail.versions].count("draft") == 1
    assert detail.approved is not None and detail.approved.body == "Start"
