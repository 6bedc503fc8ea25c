"""Bulk actions on contacts chosen by id or by a search ("all matching"): tag, remove a
tag, add to or remove from a list, delete. Each is one transaction and one audit row; a
contact id of another account refuses the whole action (404) and touches nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tenants.audit import record as audit
from tenants.contacts.contacts import add_to_list, clean_tags, contacts_matching, get_list
from tenants.contacts.tables import Contact, ContactListMember, ContactTag
from tenants.db import chunked, transaction
from tenants.errors import FieldErrors, NotFound

ACTIONS = {
    "tag": "Add a tag",
    "untag": "Remove a tag",
    "add_to_list": "Add to a list",
    "remove_from_list": "Remove from a list",
    "delete": "Delete",
}
# Past tense for the notice after an action: "3 contacts tagged".
DONE = {
    "tag": "tagged",
    "untag": "untagged",
    "add_to_list": "added to the list",
    "remove_from_list": "removed from the list",
    "delete": "deleted",
}
LIST_ACTIONS = ("add_to_list", "remove_from_list")
ID_CHUNK = 5000  # ids per statement: bounded argument lists on SQLite and PostgreSQL


@dataclass(frozen=True)
class Selection:
    """Which contacts: these ids, or (`all_matching`) every contact the search finds."""

    ids: Sequence[int] = ()
    all_matching: bool = False
    q: str = ""
    tag: str = ""
    list_id: int | None = None


@dataclass(frozen=True)
class BulkRequest:
    action: str
    selection: Selection
    tag: str = ""
    list_id: int | None = None


@dataclass(frozen=True)
class BulkResult:
    action: str
    selected: int  # contacts the action applied to
    changed: int  # of those, how many it changed (already tagged ones are not)


def check_request(req: BulkRequest) -> str:
    """The clean tag for the tag actions; ValidationFailed naming every bad field."""
    errors = FieldErrors()
    if req.action not in ACTIONS:
        errors.add("action", "Choose an action: " + ", ".join(ACTIONS) + ".")
    if not req.selection.all_matching and not req.selection.ids:
        errors.add("ids", "Choose at least one contact.")
    tag = ""
    if req.action in ("tag", "untag"):
        good, bad = clean_tags([req.tag])
        if bad or not good:
            errors.add("tag", "A tag is up to 40 letters, digits, spaces, '-' or '_'.")
        tag = good[0] if good else ""
    if req.action in LIST_ACTIONS and req.list_id is None:
        errors.add("list_id", "Choose a list.")
    errors.raise_if_any()
    return tag


async def selected_ids(account_id: int, selection: Selection) -> list[int]:
    """The account's contact ids the selection names; NotFound when an id is not one of
    its contacts (another account's contact is never acted on, nor its existence told)."""
    if selection.all_matching:
        where = await contacts_matching(
            account_id, q=selection.q, tag=selection.tag, list_id=selection.list_id
        )
        return sorted(r["id"] for r in await Contact.select(Contact.id).where(where))
    wanted = sorted(set(selection.ids))
    own: list[int] = []
    for part in chunked(wanted, ID_CHUNK):
        rows = await Contact.select(Contact.id).where(
            (Contact.account_id == account_id) & Contact.id.is_in(part)
        )
        own.extend(r["id"] for r in rows)
    if len(own) != len(wanted):
        raise NotFound("contact not found")
    return sorted(own)


async def count_selected(account_id: int, selection: Selection) -> int:
    return len(await selected_ids(account_id, selection))


async def _tag(account_id: int, ids: list[int], tag: str) -> int:
    have: set[int] = set()
    for part in chunked(ids, ID_CHUNK):
        rows = await ContactTag.select(ContactTag.contact_id).where(
            (ContactTag.tag == tag) & ContactTag.contact_id.is_in(part)
        )
        have |= {r["contact_id"] for r in rows}
    new = [i for i in ids if i not in have]
    for part in chunked(new, ID_CHUNK):
        await ContactTag.insert(
            *[ContactTag(account_id=account_id, contact_id=i, tag=tag) for i in part]
        )
    return len(new)


async def _untag(ids: list[int], tag: str) -> int:
    removed = 0
    for part in chunked(ids, ID_CHUNK):
        rows = (
            await ContactTag.delete()
            .where((ContactTag.tag == tag) & ContactTag.contact_id.is_in(part))
            .returning(ContactTag.id)
        )
        removed += len(rows)
    return removed


async def _add_to_list(account_id: int, ids: list[int], list_id: int) -> int:
    added = 0
    for part in chunked(ids, ID_CHUNK):
        added += await add_to_list(
            actor=None, account_id=account_id, list_id=list_id, contact_ids=part
        )
    return added


async def _remove_from_list(ids: list[int], list_id: int) -> int:
    removed = 0
    for part in chunked(ids, ID_CHUNK):
        rows = (
            await ContactListMember.delete()
            .where(
                (ContactListMember.list_id == list_id) & ContactListMember.contact_id.is_in(part)
            )
            .returning(ContactListMember.id)
        )
        removed += len(rows)
    return removed


async def _delete(account_id: int, ids: list[int]) -> int:
    """Contacts, their tags and list memberships go; consent events and states stay, as
    they belong to the number (an opted-out number re-added is still opted out)."""
    for part in chunked(ids, ID_CHUNK):
        await ContactTag.delete().where(ContactTag.contact_id.is_in(part))
        await ContactListMember.delete().where(ContactListMember.contact_id.is_in(part))
        await Contact.delete().where((Contact.account_id == account_id) & Contact.id.is_in(part))
    return len(ids)


async def _apply(account_id: int, req: BulkRequest, ids: list[int], tag: str) -> int:
    if req.action == "tag":
        return await _tag(account_id, ids, tag)
    if req.action == "untag":
        return await _untag(ids, tag)
    if req.action == "add_to_list":
        return await _add_to_list(account_id, ids, req.list_id or 0)
    if req.action == "remove_from_list":
        return await _remove_from_list(ids, req.list_id or 0)
    return await _delete(account_id, ids)


async def apply_bulk_action(
    *, actor: audit.Actor, account_id: int, request: BulkRequest
) -> BulkResult:
    """Apply one action to the selected contacts, all of them or none, and audit it (the
    audit row names the contact ids, never numbers or names)."""
    tag = check_request(request)
    async with transaction():
        if request.action in LIST_ACTIONS:
            await get_list(account_id, request.list_id or 0)
        ids = await selected_ids(account_id, request.selection)
        changed = await _apply(account_id, request, ids, tag) if ids else 0
        await audit.record(
            actor,
            account_id=account_id,
            action=f"contact.bulk_{request.action}",
            target_type="contact",
            after={
                "contact_ids": ids,
                "changed": changed,
                **({"tag": tag} if tag else {}),
                **({"list_id": request.list_id} if request.action in LIST_ACTIONS else {}),
            },
        )
    return BulkResult(request.action, len(ids), changed)
