"""Template pages: who may see, write and approve; versioning; maker-checker; sharing."""

from __future__ import annotations

import re

import pytest

from tenants.audit.record import Actor
from tenants.templates import templates
from tests.conftest import login
from tests.factories import HX, make_user

AUTHOR = Actor(user_id=None, label="setup")


async def _template(account_id: int, name: str, body: str, *, approve: bool, shared=True) -> int:
    created = await templates.create_template(
        actor=AUTHOR, account_id=account_id, name=name, body=body, shared_down=shared
    )
    if approve:
        assert created.version_id is not None
        await templates.approve_version(
            actor=AUTHOR,
            account_id=account_id,
            template_id=created.id,
            version_id=created.version_id,
        )
    return created.id


def _pending_version_id(html: str) -> str:
    match = re.search(r'name="version_id" value="(\d+)"', html)
    assert match, "no approve form on the page"
    return match.group(1)


async def test_support_sees_approved_templates_only_and_cannot_write_or_approve(client, world):
    alpha = world.accounts["alpha"]
    approved = await _template(alpha, "Reminder", "See you soon", approve=True)
    draft = await _template(alpha, "Unreleased", "Not yet", approve=False)
    token = await login(client, world.users["Support"])

    page = await client.get("/templates")
    assert page.status_code == 200
    assert "Reminder" in page.text and "Unreleased" not in page.text
    assert 'href="/templates/new"' not in page.text
    assert 'href="/templates"' in page.text  # the navigation links the page
    assert (await client.get(f"/templates/{draft}")).status_code == 404
    detail = await client.get(f"/templates/{approved}")
    assert detail.status_code == 200 and "See you soon" in detail.text
    assert 'id="template-editor"' not in detail.text and "Archive template" not in detail.text

    assert (await client.get("/templates/new")).status_code == 403
    created = await client.post(
        "/templates", data={"_csrf_token": token, "name": "Mine", "body": "Hi"}, headers=HX
    )
    assert created.status_code == 403
    edit = await client.post(
        f"/templates/{approved}", data={"_csrf_token": token, "name": "X", "body": "Changed"}
    )
    assert edit.status_code == 403
    approve = await client.post(
        f"/templates/{draft}/approve", data={"_csrf_token": token, "version_id": "1"}
    )
    assert approve.status_code == 403
    assert [t.name for t in await templates.usable_templates(alpha, status=None)] == [
        "Reminder",
        "Unreleased",
    ]
    assert (await templates.get_usable_template(alpha, approved)).body == "See you soon"


async def test_finance_has_no_templates_page(client, world):
    await login(client, world.users["Finance"])
    page = await client.get("/")
    assert 'href="/templates"' not in page.text
    assert (await client.get("/templates")).status_code == 403


async def test_template_shared_from_the_master_is_usable_in_the_sub_and_read_only(client, world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    shared = await _template(alpha, "Appointment reminder", "Hi {{first_name|there}}", approve=True)
    await make_user("support@alpha-one.test", sub, "Support")

    # Support in the sub sees and may send it.
    await login(client, "support@alpha-one.test")
    page = await client.get("/templates")
    assert "Appointment reminder" in page.text and "shared by Alpha Master" in page.text
    assert (await templates.get_usable_template(sub, shared)).account_id == alpha

    # A Sender there may write templates, but not this one.
    client.cookies.clear()
    token = await login(client, "sender@alpha-one.test")
    detail = await client.get(f"/templates/{shared}")
    assert detail.status_code == 200
    assert "only Alpha Master can change it" in detail.text
    assert 'id="template-editor"' not in detail.text
    edit = await client.post(
        f"/templates/{shared}",
        data={"_csrf_token": token, "name": "Mine now", "body": "Changed below"},
        headers=HX,
    )
    assert edit.status_code == 403
    archive = await client.post(f"/templates/{shared}/archive", data={"_csrf_token": token})
    assert archive.status_code == 403
    current = await templates.get_usable_template(sub, shared)
    assert (current.name, current.body, current.status) == (
        "Appointment reminder",
        "Hi {{first_name|there}}",
        "approved",
    )


async def test_another_tree_gets_404_for_the_template(client, world):
    shared = await _template(world.accounts["alpha"], "Alpha only", "Hello", approve=True)
    token = await login(client, "sender@beta-one.test")
    assert (await client.get(f"/templates/{shared}")).status_code == 404
    edit = await client.post(
        f"/templates/{shared}", data={"_csrf_token": token, "name": "X", "body": "Y"}
    )
    assert edit.status_code == 404
    page = await client.get("/templates")
    assert "Alpha only" not in page.text


async def test_create_with_htmx_validates_inline_then_redirects(client, world):
    token = await login(client, world.users["Sender"])
    editor = await client.get("/templates/new")
    assert 'hx-trigger="input changed delay:150ms"' in editor.text

    bad = await client.post(
        "/templates", data={"_csrf_token": token, "name": "", "body": "Hello"}, headers=HX
    )
    assert bad.status_code == 422
    assert 'id="tpl-name-error"' in bad.text and "Name is required" in bad.text
    assert "<html" not in bad.text and "Hello" in bad.text
    assert await templates.usable_templates(world.accounts["alpha"], status=None) == []

    good = await client.post(
        "/templates",
        data={"_csrf_token": token, "name": "Welcome", "body": "Welcome {{first_name}}!"},
        headers=HX,
    )
    assert good.status_code == 201
    [created] = await templates.usable_templates(world.accounts["alpha"], status=None)
    assert good.headers["hx-redirect"] == f"/templates/{created.id}"
    assert (created.name, created.status, created.shared_down) == ("Welcome", "draft", False)


async def test_create_without_javascript_redirects_to_the_template(client, world):
    token = await login(client, world.users["Sender"])
    response = await client.post(
        "/templates",
        data={"_csrf_token": token, "name": "Plain", "body": "No JS", "shared_down": "on"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    [created] = await templates.usable_templates(world.accounts["alpha"], status=None)
    assert response.headers["location"] == f"/templates/{created.id}"
    assert created.shared_down is True


async def test_edit_makes_a_draft_and_the_approved_text_stays_in_use_until_approved(client, world):
    alpha = world.accounts["alpha"]
    template_id = await _template(alpha, "Reminder", "Version one", approve=True)
    token = await login(client, world.users["Owner"])

    edit = await client.post(
        f"/templates/{template_id}",
        data={"_csrf_token": token, "name": "Reminder", "body": "Version two"},
        headers=HX,
    )
    assert edit.status_code == 200 and "<html" not in edit.text
    assert "Version 2 awaits approval" in edit.text
    assert 'id="pending-version"' in edit.text
    assert (await templates.get_usable_template(alpha, template_id)).body == "Version one"
    listing = await client.get("/templates")
    assert "new version awaiting approval" in listing.text

    approve = await client.post(
        f"/templates/{template_id}/approve",
        data={"_csrf_token": token, "version_id": _pending_version_id(edit.text)},
        headers=HX,
    )
    assert approve.status_code == 200
    assert "Version 2 approved" in approve.text and 'id="pending-version"' not in approve.text
    assert (await templates.get_usable_template(alpha, template_id)).body == "Version two"


async def test_approving_a_superseded_version_is_a_conflict_shown_inline(client, world):
    alpha = world.accounts["alpha"]
    template_id = await _template(alpha, "Reminder", "One", approve=True)
    token = await login(client, world.users["Owner"])
    first = await client.post(
        f"/templates/{template_id}",
        data={"_csrf_token": token, "name": "Reminder", "body": "Two"},
        headers=HX,
    )
    stale = _pending_version_id(first.text)
    await client.post(
        f"/templates/{template_id}",
        data={"_csrf_token": token, "name": "Reminder", "body": "Three"},
        headers=HX,
    )
    response = await client.post(
        f"/templates/{template_id}/approve",
        data={"_csrf_token": token, "version_id": stale},
        headers=HX,
    )
    assert response.status_code == 409
    assert "not awaiting approval" in response.text and "<html" not in response.text
    assert (await templates.get_usable_template(alpha, template_id)).body == "One"


async def test_edit_validation_is_inline_and_keeps_the_typed_text(client, world):
    alpha = world.accounts["alpha"]
    template_id = await _template(alpha, "Reminder", "Original", approve=True)
    token = await login(client, world.users["Owner"])
    response = await client.post(
        f"/templates/{template_id}",
        data={"_csrf_token": token, "name": "Reminder", "body": "x" * 1601},
        headers=HX,
    )
    assert response.status_code == 422
    assert 'id="tpl-body-error"' in response.text and "at most 1600" in response.text
    detail = await templates.template_detail(alpha, template_id)
    assert detail.pending is None and len(detail.versions) == 1


async def test_maker_checker_through_the_pages(client, world):
    alpha = world.accounts["alpha"]
    token = await login(client, world.users["Owner"])
    policy = await client.post(
        "/templates/settings", data={"_csrf_token": token, "maker_checker": "on"}, headers=HX
    )
    assert policy.status_code == 200
    assert "checked" in policy.text
    assert await templates.maker_checker_enabled(alpha)

    created = await client.post(
        "/templates",
        data={"_csrf_token": token, "name": "Promo", "body": "Sale today"},
        follow_redirects=False,
    )
    template_id = int(created.headers["location"].rsplit("/", 1)[1])
    detail = await client.get(f"/templates/{template_id}")
    assert 'id="approve-blocked"' in detail.text and 'name="version_id"' not in detail.text
    version_id = (await templates.template_detail(alpha, template_id)).pending.id  # type: ignore[union-attr]
    own = await client.post(
        f"/templates/{template_id}/approve",
        data={"_csrf_token": token, "version_id": str(version_id)},
    )
    assert own.status_code == 403 and "author" in own.text
    assert (await templates.template_detail(alpha, template_id)).template.status == "draft"

    client.cookies.clear()
    token = await login(client, world.users["Admin"])
    detail = await client.get(f"/templates/{template_id}")
    assert 'id="approve-blocked"' not in detail.text
    other = await client.post(
        f"/templates/{template_id}/approve",
        data={"_csrf_token": token, "version_id": str(version_id)},
        headers=HX,
    )
    assert other.status_code == 200
    assert (await templates.get_usable_template(alpha, template_id)).body == "Sale today"


@pytest.mark.parametrize("role", ["Sender", "Support", "Viewer"])
async def test_only_settings_managers_change_the_policy(client, world, role):
    token = await login(client, world.users[role])
    page = await client.get("/templates")
    assert 'action="/templates/settings"' not in page.text
    response = await client.post(
        "/templates/settings", data={"_csrf_token": token, "maker_checker": "on"}
    )
    assert response.status_code == 403
    assert not await templates.maker_checker_enabled(world.accounts["alpha"])


async def test_sender_writes_but_cannot_approve(client, world):
    alpha = world.accounts["alpha"]
    token = await login(client, world.users["Sender"])
    await client.post(
        "/templates", data={"_csrf_token": token, "name": "Mine", "body": "Hi"}, headers=HX
    )
    [created] = await templates.usable_templates(alpha, status=None)
    detail = await client.get(f"/templates/{created.id}")
    assert 'id="template-editor"' in detail.text and "Approve version" not in detail.text
    response = await client.post(
        f"/templates/{created.id}/approve",
        data={"_csrf_token": token, "version_id": str(created.version_id)},
    )
    assert response.status_code == 403
    assert (await templates.template_detail(alpha, created.id)).template.status == "draft"


async def test_archive_from_the_page_stops_sending(client, world):
    alpha, sub = world.accounts["alpha"], world.accounts["alpha-one"]
    template_id = await _template(alpha, "Old", "Bye", approve=True)
    token = await login(client, world.users["Owner"])
    response = await client.post(
        f"/templates/{template_id}/archive", data={"_csrf_token": token}, headers=HX
    )
    assert response.status_code == 200 and "can no longer be sent" in response.text
    assert 'id="template-editor"' not in response.text
    assert await templates.usable_templates(sub) == []
    archived = await client.get("/templates?status=archived")
    assert "Old" in archived.text
    active = await client.get("/templates")
    assert "Old" not in active.text
