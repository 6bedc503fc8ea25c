"""Message templates: versions with approval (draft -> approved -> archived), maker-checker,
and sharing down the account tree.

A template belongs to one account. Its text lives in versions: creating a template or
changing its text writes a new draft version, and only a holder of `templates.approve`
(checked by the caller) turns a draft into the approved one. The approved version stays
the one that is sent until a newer draft is approved, so editing never interrupts sending.
A template marked `shared_down` is usable, read-only, by every account below its owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.table import Table

from tenants import clock
from tenants.accounts.tables import Account
from tenants.accounts.tree import get_account, get_accounts
from tenants.audit import record as audit
from tenants.db import first_or_404, flag, is_sqlite, transaction, view_of
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.templates.tables import (
    APPROVED,
    ARCHIVED,
    DRAFT,
    NAME_MAX,
    Template,
    TemplatePolicy,
    TemplateVersion,
)

STATUSES = (DRAFT, APPROVED, ARCHIVED)
# Ten concatenated GSM-7 segments hold 1530 septets; a template longer than this is a
# letter, not a text message, and would be refused by most providers anyway.
BODY_MAX = 1600


@dataclass(frozen=True)
class TemplateView:
    """A template as a sender sees it: `body` is the approved text (for a template never
    approved yet, its latest draft)."""

    id: int
    name: str
    body: str
    status: str
    account_id: int
    shared_down: bool = False
    version_id: int | None = None
    quiet_exempt: bool = False  # transactional: not held by quiet hours


@dataclass(frozen=True)
class VersionView:
    id: int
    number: int
    body: str
    status: str
    author_user_id: int | None
    author_api_key_id: int | None
    author_label: str
    approver_label: str
    created_at: datetime
    approved_at: datetime | None


@dataclass(frozen=True)
class TemplateDetail:
    """Everything the template page shows about one template seen from one account."""

    template: TemplateView
    owner_name: str
    own: bool  # owned by the account looking at it (else shared down from an ancestor)
    approved: VersionView | None
    pending: VersionView | None  # the draft awaiting approval, if any
    versions: list[VersionView]  # newest first
    maker_checker: bool


_TEMPLATE_COLUMNS = (
    Template.id,
    Template.account,
    Template.name,
    Template.shared_down,
    Template.status,
    Template.approved_version_id,
    Template.quiet_exempt,
)


def _version_view(row: dict[str, Any]) -> VersionView:
    return view_of(
        VersionView,
        row,
    )


async def _latest_bodies(template_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Latest version (id, body) per template: the text to show for never-approved ones."""
    if not template_ids:
        return {}
    rows = (
        await TemplateVersion.select(
            TemplateVersion.id, TemplateVersion.template, TemplateVersion.body
        )
        .where(TemplateVersion.template.is_in(template_ids))
        .order_by(TemplateVersion.id)
    )
    return {r["template_id"]: (r["id"], r["body"]) for r in rows}


async def _views(rows: list[dict[str, Any]]) -> list[TemplateView]:
    approved_ids = [r["approved_version_id"] for r in rows if r["approved_version_id"]]
    bodies: dict[int, str] = {}
    if approved_ids:
        found = await TemplateVersion.select(TemplateVersion.id, TemplateVersion.body).where(
            TemplateVersion.id.is_in(approved_ids)
        )
        bodies = {r["id"]: r["body"] for r in found}
    unapproved = [r["id"] for r in rows if not r["approved_version_id"]]
    latest = await _latest_bodies(unapproved)
    views = []
    for r in rows:
        version_id = r["approved_version_id"]
        if version_id:
            body = bodies.get(version_id, "")
        else:
            version_id, body = latest.get(r["id"], (None, ""))
        views.append(
            view_of(
                TemplateView,
                r,
                body=body,
                version_id=version_id,
            )
        )
    return views


def _usable_where(account_id: int, ancestor_ids: list[int]) -> Any:
    """Own templates, and approved ones an ancestor shares down."""
    own = Template.account == account_id
    if not ancestor_ids:
        return own
    shared = (
        Template.account.is_in(ancestor_ids)
        & (Template.shared_down == True)  # noqa: E712 (a Piccolo expression, not a bool)
        & (Template.status == APPROVED)
    )
    return own | shared


async def usable_templates(
    account_id: int, *, status: str | None = "approved"
) -> list[TemplateView]:
    """Templates the account may use: its own and those shared down from its ancestors.

    `status` filters by template status ("approved" = sendable); None lists every own
    template whatever its status. Ancestors' templates appear only while approved: their
    drafts and archived ones are their owner's business.
    """
    if status is not None and status not in STATUSES:
        raise ValidationFailed({"status": "Status must be draft, approved or archived."})
    account = await get_account(account_id)
    ancestors = account.ancestor_ids[:-1]
    query = Template.select(*_TEMPLATE_COLUMNS).where(_usable_where(account_id, ancestors))
    if status is not None:
        query = query.where(Template.status == status)
    rows = await query.order_by(Template.name).order_by(Template.id)
    return await _views(rows)


async def get_usable_template(account_id: int, template_id: int) -> TemplateView:
    """An approved template the account may send (own or shared down); else NotFound."""
    account = await get_account(account_id)
    row = await first_or_404(
        Template.select(*_TEMPLATE_COLUMNS).where(
            (Template.id == template_id)
            & (Template.status == APPROVED)
            & _usable_where(account_id, account.ancestor_ids[:-1])
        ),
        f"template {template_id} not found",
    )
    return (await _views([row]))[0]


async def _visible_row(account_id: int, template_id: int) -> dict[str, Any]:
    """The template row if the account may see it (own, or shared down and approved)."""
    account = await get_account(account_id)
    row = await first_or_404(
        Template.select(*_TEMPLATE_COLUMNS).where(
            (Template.id == template_id) & _usable_where(account_id, account.ancestor_ids[:-1])
        ),
        f"template {template_id} not found",
    )
    return row


async def _owned_row(account_id: int, template_id: int) -> dict[str, Any]:
    """The template row for a change; a template shared from above is read-only here."""
    row = await _visible_row(account_id, template_id)
    if row["account_id"] != account_id:
        owner = await get_account(row["account_id"])
        raise PermissionDenied(
            f"This template is shared by {owner.name}; only {owner.name} can change it."
        )
    return row


async def maker_checker_enabled(account_id: int) -> bool:
    return await flag(TemplatePolicy.maker_checker, TemplatePolicy.account == account_id)


async def template_detail(
    account_id: int, template_id: int, *, include_drafts: bool = True
) -> TemplateDetail:
    """One template with its versions, as the account sees it (NotFound if it cannot).

    Without `include_drafts` (people who neither write nor approve templates) only an
    approved template is visible, and only its approved version.
    """
    row = await _visible_row(account_id, template_id)
    if not include_drafts and row["status"] != APPROVED:
        raise NotFound(f"template {template_id} not found")
    view = (await _views([row]))[0]
    own = row["account_id"] == account_id
    query = TemplateVersion.select().where(TemplateVersion.template == template_id)
    if not own or not include_drafts:
        # A sub-account sees the text it may send, not its owner's drafts and history.
        query = query.where(TemplateVersion.status == APPROVED)
    versions = [
        _version_view(r) for r in await query.order_by(TemplateVersion.number, ascending=False)
    ]
    owner = await get_account(row["account_id"])
    return TemplateDetail(
        template=view,
        owner_name=owner.name,
        own=own,
        approved=next((v for v in versions if v.status == APPROVED), None),
        pending=next((v for v in versions if v.status == DRAFT), None),
        versions=versions,
        maker_checker=await maker_checker_enabled(row["account_id"]),
    )


async def with_pending_draft(template_ids: list[int]) -> set[int]:
    """Which of these templates have a draft version awaiting approval."""
    if not template_ids:
        return set()
    rows = await TemplateVersion.select(TemplateVersion.template).where(
        TemplateVersion.template.is_in(template_ids) & (TemplateVersion.status == DRAFT)
    )
    return {r["template_id"] for r in rows}


async def owner_names(templates: list[TemplateView]) -> dict[int, str]:
    """Names of the accounts owning these templates (for "shared by ..." labels)."""
    ids = sorted({t.account_id for t in templates})
    return {a.id: a.name for a in await get_accounts(ids)}


# --- changes --------------------------------------------------------------------------


async def _lock(table: type[Table], row_id: int) -> None:
    """Serialize changes to one row's dependants for the rest of the transaction.

    On PostgreSQL this is SELECT ... FOR UPDATE (two edits would otherwise both read the
    same last version number, or both find a name free); SQLite's IMMEDIATE transactions
    already admit one writer at a time.
    """
    if not is_sqlite():
        await (
            table.select(table._meta.primary_key)
            .where(table._meta.primary_key == row_id)
            .lock_rows()
        )


def _clean(name: str | None, body: str | None) -> tuple[str | None, str | None]:
    errors: dict[str, str] = {}
    clean_name = name.strip() if name is not None else None
    if clean_name is not None:
        if not clean_name:
            errors["name"] = "Name is required."
        elif len(clean_name) > NAME_MAX:
            errors["name"] = f"Name must be at most {NAME_MAX} characters."
    # Browsers submit textarea line breaks as CRLF; a line break is one character on a phone.
    clean_body = body.replace("\r\n", "\n") if body is not None else None
    if clean_body is not None:
        if not clean_body.strip():
            errors["body"] = "Message text is required."
        elif len(clean_body) > BODY_MAX:
            errors["body"] = f"Message text must be at most {BODY_MAX} characters."
    if errors:
        raise ValidationFailed(errors)
    return clean_name, clean_body


async def _check_name_free(account_id: int, name: str, *, except_id: int | None = None) -> None:
    rows = await Template.select(Template.id, Template.name).where(
        (Template.account == account_id) & (Template.status != ARCHIVED)
    )
    if any(r["name"].casefold() == name.casefold() and r["id"] != except_id for r in rows):
        raise ValidationFailed({"name": f"A template named {name!r} already exists."})


async def _add_version(template_id: int, body: str, actor: audit.Actor) -> int:
    """A new draft; it supersedes any draft still awaiting approval."""
    existing = await TemplateVersion.select(TemplateVersion.number).where(
        TemplateVersion.template == template_id
    )
    number = max((r["number"] for r in existing), default=0) + 1
    await TemplateVersion.update({TemplateVersion.status: ARCHIVED}).where(
        (TemplateVersion.template == template_id) & (TemplateVersion.status == DRAFT)
    )
    rows = await TemplateVersion.insert(
        TemplateVersion(
            template=template_id,
            number=number,
            body=body,
            status=DRAFT,
            author_user_id=actor.user_id,
            author_api_key_id=actor.api_key_id,
            author_label=actor.label,
        )
    ).returning(TemplateVersion.id)
    return int(rows[0]["id"])


async def create_template(
    *, actor: audit.Actor, account_id: int, name: str, body: str, shared_down: bool = False
) -> TemplateView:
    """A new template whose first version is a draft awaiting approval."""
    clean_name, clean_body = _clean(name, body)
    assert clean_name is not None and clean_body is not None
    async with transaction():
        await get_account(account_id)
        await _lock(Account, account_id)
        await _check_name_free(account_id, clean_name)
        rows = await Template.insert(
            Template(account=account_id, name=clean_name, shared_down=shared_down, status=DRAFT)
        ).returning(Template.id)
        template_id = int(rows[0]["id"])
        version_id = await _add_version(template_id, clean_body, actor)
        await audit.record(
            actor,
            account_id=account_id,
            action="template.create",
            target_type="template",
            target_id=template_id,
            after={
                "name": clean_name,
                "body": clean_body,
                "shared_down": shared_down,
                "version_id": version_id,
            },
        )
        return await _get_own(account_id, template_id)


async def _get_own(account_id: int, template_id: int) -> TemplateView:
    row = await _owned_row(account_id, template_id)
    return (await _views([row]))[0]


async def edit_template(
    *,
    actor: audit.Actor,
    account_id: int,
    template_id: int,
    name: str | None = None,
    body: str | None = None,
    shared_down: bool | None = None,
) -> TemplateDetail:
    """Rename, share or unshare, and change the text of an own template.

    New text becomes a new draft version; the approved version stays the one in use until
    the draft is approved. Text equal to the latest version's writes no version.
    """
    clean_name, clean_body = _clean(name, body)
    async with transaction():
        if clean_name is not None:
            await _lock(Account, account_id)
        await _lock(Template, template_id)
        row = await _owned_row(account_id, template_id)
        if row["status"] == ARCHIVED:
            raise Conflict("An archived template cannot be changed.", code="template_archived")
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        values: dict[Any, Any] = {}
        if clean_name is not None and clean_name != row["name"]:
            await _check_name_free(account_id, clean_name, except_id=template_id)
            values[Template.name] = clean_name
            before["name"], after["name"] = row["name"], clean_name
        if shared_down is not None and shared_down != row["shared_down"]:
            values[Template.shared_down] = shared_down
            before["shared_down"], after["shared_down"] = row["shared_down"], shared_down
        if clean_body is not None:
            latest = (await _latest_bodies([template_id])).get(template_id)
            if latest is None or latest[1] != clean_body:
                before["body"] = latest[1] if latest else None
                after["body"] = clean_body
                after["version_id"] = await _add_version(template_id, clean_body, actor)
        if values or after:
            values[Template.updated_at] = clock.now()
            await Template.update(values).where(Template.id == template_id)
            await audit.record(
                actor,
                account_id=account_id,
                action="template.edit",
                target_type="template",
                target_id=template_id,
                before=before,
                after=after,
            )
        return await template_detail(account_id, template_id)


def _same_person(version: dict[str, Any], actor: audit.Actor) -> bool:
    if actor.user_id is not None and version["author_user_id"] == actor.user_id:
        return True
    return actor.api_key_id is not None and version["author_api_key_id"] == actor.api_key_id


async def approve_version(
    *, actor: audit.Actor, account_id: int, template_id: int, version_id: int
) -> TemplateDetail:
    """Make a draft version the approved one; the previous approved version is archived.

    The caller has checked `templates.approve`. With maker-checker on in the owning
    account, the author of the draft cannot approve it.
    """
    async with transaction():
        await _lock(Template, template_id)
        row = await _owned_row(account_id, template_id)
        if row["status"] == ARCHIVED:
            raise Conflict("An archived template cannot be approved.", code="template_archived")
        version = await _draft_version(template_id, version_id)
        if await maker_checker_enabled(account_id) and _same_person(version, actor):
            raise PermissionDenied(
                "Maker-checker is on: the author of a version cannot approve it; "
                "another approver must."
            )
        await _make_approved(actor, template_id, version_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="template.approve",
            target_type="template",
            target_id=template_id,
            before={"status": row["status"], "version_id": row["approved_version_id"]},
            after={"status": APPROVED, "version_id": version_id, "body": version["body"]},
        )
        return await template_detail(account_id, template_id)


async def _draft_version(template_id: int, version_id: int) -> dict[str, Any]:
    version = (
        await TemplateVersion.select()
        .where((TemplateVersion.id == version_id) & (TemplateVersion.template == template_id))
        .first()
    )
    if version is None:
        raise NotFound(f"version {version_id} not found")
    if version["status"] != DRAFT:
        raise Conflict(
            f"Version {version['number']} is {version['status']}, not awaiting approval.",
            code="not_a_draft",
        )
    return version


async def _make_approved(actor: audit.Actor, template_id: int, version_id: int) -> None:
    """The draft becomes the approved version; the one approved before is archived."""
    now = clock.now()
    # Conditional: of two approvers racing for the same draft exactly one wins.
    won = (
        await TemplateVersion.update(
            {
                TemplateVersion.status: APPROVED,
                TemplateVersion.approver_user_id: actor.user_id,
                TemplateVersion.approver_label: actor.label,
                TemplateVersion.approved_at: now,
            }
        )
        .where((TemplateVersion.id == version_id) & (TemplateVersion.status == DRAFT))
        .returning(TemplateVersion.id)
    )
    if not won:
        raise Conflict("This version was approved or replaced meanwhile.", code="not_a_draft")
    await TemplateVersion.update({TemplateVersion.status: ARCHIVED}).where(
        (TemplateVersion.template == template_id)
        & (TemplateVersion.status == APPROVED)
        & (TemplateVersion.id != version_id)
    )
    await Template.update(
        {
            Template.status: APPROVED,
            Template.approved_version_id: version_id,
            Template.updated_at: now,
        }
    ).where(Template.id == template_id)


async def archive_template(
    *, actor: audit.Actor, account_id: int, template_id: int
) -> TemplateDetail:
    """Retire a template: it can no longer be sent, here or in the subtree it was shared to."""
    async with transaction():
        await _lock(Template, template_id)
        row = await _owned_row(account_id, template_id)
        if row["status"] != ARCHIVED:
            await TemplateVersion.update({TemplateVersion.status: ARCHIVED}).where(
                (TemplateVersion.template == template_id) & (TemplateVersion.status != ARCHIVED)
            )
            await Template.update(
                {
                    Template.status: ARCHIVED,
                    Template.approved_version_id: None,
                    Template.updated_at: clock.now(),
                }
            ).where(Template.id == template_id)
            await audit.record(
                actor,
                account_id=account_id,
                action="template.archive",
                target_type="template",
                target_id=template_id,
                before={"status": row["status"]},
                after={"status": ARCHIVED},
            )
        return await template_detail(account_id, template_id)


async def set_maker_checker(*, actor: audit.Actor, account_id: int, enabled: bool) -> bool:
    """Turn maker-checker on or off for the account's templates (caller checked the power)."""
    async with transaction():
        await get_account(account_id)
        before = await maker_checker_enabled(account_id)
        if before != enabled:
            updated = (
                await TemplatePolicy.update({TemplatePolicy.maker_checker: enabled})
                .where(TemplatePolicy.account == account_id)
                .returning(TemplatePolicy.id)
            )
            if not updated:
                await TemplatePolicy.insert(
                    TemplatePolicy(account=account_id, maker_checker=enabled)
                )
            await audit.record(
                actor,
                account_id=account_id,
                action="template.settings",
                target_type="account",
                target_id=account_id,
                before={"maker_checker": before},
                after={"maker_checker": enabled},
            )
        return enabled


async def ensure_approved_template(
    *, actor: audit.Actor, account_id: int, name: str, body: str, shared_down: bool
) -> TemplateView:
    """The named template, approved; created and approved if missing (demo seeding)."""
    rows = await Template.select(Template.id, Template.status).where(
        (Template.account == account_id) & (Template.name == name)
    )
    live = [r for r in rows if r["status"] != ARCHIVED]
    if live:
        return await _get_own(account_id, live[0]["id"])
    created = await create_template(
        actor=actor, account_id=account_id, name=name, body=body, shared_down=shared_down
    )
    assert created.version_id is not None
    await approve_version(
        actor=actor, account_id=account_id, template_id=created.id, version_id=created.version_id
    )
    return await _get_own(account_id, created.id)


async def is_quiet_exempt(template_id: int) -> bool:
    """A transactional template goes out through quiet hours."""
    return await flag(Template.quiet_exempt, Template.id == template_id)


async def set_quiet_exempt(
    *, actor: audit.Actor, account_id: int, template_id: int, exempt: bool
) -> bool:
    """Mark one of the account's own templates transactional (exempt from quiet hours)."""
    async with transaction():
        await _get_own(account_id, template_id)
        await Template.update({Template.quiet_exempt: exempt}).where(Template.id == template_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="template.quiet_exempt",
            target_type="template",
            target_id=template_id,
            after={"quiet_exempt": exempt},
        )
    return exempt
