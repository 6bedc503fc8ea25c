"""Contacts of an account: E.164 phone, names, custom fields, tags and lists; CSV import
(preview, column mapping, line-numbered errors, good rows or nothing) and export."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.query.functions.aggregate import Count

from tenants import clock
from tenants.accounts.tables import Account
from tenants.audit import record as audit
from tenants.consent.filter import statuses
from tenants.contacts.tables import (
    Contact,
    ContactList,
    ContactListMember,
    ContactTag,
)
from tenants.db import contains_text, first_or_404, shared_read, transaction, view_of
from tenants.errors import NotFound, ValidationFailed
from tenants.phones import normalize_phone

# ---------------------------------------------------------------------------- contacts

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9 _-]{0,39}$")
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_FIELDS = 30
MAX_FIELD_VALUE = 500
PAGE_SIZE = 50


@dataclass(frozen=True)
class ContactView:
    id: int
    account_id: int
    phone: str
    first_name: str
    last_name: str
    email: str
    fields: dict[str, str]
    tags: list[str]
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def _view(row: dict[str, Any], tags: list[str]) -> ContactView:
    return view_of(
        ContactView,
        row,
        fields=json.loads(row["fields"] or "{}"),
        tags=tags,
    )


async def _tags_of(contact_ids: list[int]) -> dict[int, list[str]]:
    if not contact_ids:
        return {}
    rows = await ContactTag.select(ContactTag.contact_id, ContactTag.tag).where(
        ContactTag.contact_id.is_in(contact_ids)
    )
    out: dict[int, list[str]] = {i: [] for i in contact_ids}
    for r in rows:
        out[r["contact_id"]].append(r["tag"])
    return {i: sorted(t) for i, t in out.items()}


def field_name(raw: str) -> str:
    """A custom field's key from a label ("Store ID" -> "store_id")."""
    return re.sub(r"[^a-z0-9]+", "_", (raw or "").strip().lower()).strip("_")[:40]


def clean_tags(raw: Iterable[str]) -> tuple[list[str], list[str]]:
    """(valid lowercase tags, rejected inputs)."""
    good: list[str] = []
    bad: list[str] = []
    for t in raw:
        tag = re.sub(r"\s+", " ", (t or "").strip().lower())
        if not tag:
            continue
        (good if TAG_RE.match(tag) else bad).append(tag)
    return sorted(set(good)), bad


def split_tags(raw: str) -> list[str]:
    return [t for t in re.split(r"[,;|]", raw or "") if t.strip()]


def _validate(
    *,
    region: str,
    phone: str | None,
    first_name: str,
    last_name: str,
    email: str,
    fields: dict[str, str],
    tags: Iterable[str],
) -> tuple[dict[str, str], str | None, list[str], dict[str, str]]:
    errors: dict[str, str] = {}
    e164 = None
    if phone is not None:
        if not phone.strip():
            errors["phone"] = "A phone number is required."
        else:
            e164 = normalize_phone(phone, region)
            if e164 is None:
                errors["phone"] = f"{phone.strip()!r} is not a valid phone number."
    for name, value in (("first_name", first_name), ("last_name", last_name)):
        if len(value) > 100:
            errors[name] = "At most 100 characters."
    if email and (len(email) > 254 or not EMAIL_RE.match(email)):
        errors["email"] = "Enter a valid email address or leave it empty."
    clean_fields: dict[str, str] = {}
    for key, value in fields.items():
        name = field_name(key)
        if not FIELD_NAME_RE.match(name):
            errors["fields"] = f"Field name {key!r} must start with a letter."
        elif not isinstance(value, str) or len(value) > MAX_FIELD_VALUE:
            errors["fields"] = (
                f"Field {key!r} must be text of at most {MAX_FIELD_VALUE} characters."
            )
        else:
            clean_fields[name] = value.strip()
    if len(clean_fields) > MAX_FIELDS:
        errors["fields"] = f"At most {MAX_FIELDS} custom fields."
    good_tags, bad_tags = clean_tags(tags)
    if bad_tags:
        errors["tags"] = "Tags are up to 40 letters, digits, spaces, '-' or '_': " + ", ".join(
            bad_tags
        )
    return errors, e164, good_tags, clean_fields


async def _region(account_id: int) -> str:
    async def load() -> str:
        row = await first_or_404(
            Account.select(Account.default_region).where(Account.id == account_id),
            "account not found",
        )
        return str(row["default_region"] or "AU")

    # Once per reads_shared() block (an inbound group's keyword senders).
    return await shared_read(("contact_region", account_id), load, settled=True)


async def get_contact(account_id: int, contact_id: int) -> ContactView:
    row = await first_or_404(
        Contact.select().where((Contact.account_id == account_id) & (Contact.id == contact_id)),
        "contact not found",
    )
    return _view(row, (await _tags_of([contact_id]))[contact_id])


async def find_contact_by_phone(account_id: int, phone: str) -> ContactView | None:
    row = await Contact.select().where(Contact.account_phone == f"{account_id}|{phone}").first()
    return _view(row, (await _tags_of([row["id"]]))[row["id"]]) if row else None


async def merge_values_by_phone(
    account_id: int, phones: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Merge-field values (custom fields, first and last name) of the account's contacts
    with these numbers, phone -> values, in one query (for previews of what was sent)."""
    if not phones:
        return {}
    rows = await Contact.select(
        Contact.phone, Contact.first_name, Contact.last_name, Contact.fields
    ).where((Contact.account_id == account_id) & Contact.phone.is_in(sorted(set(phones))))
    return {
        r["phone"]: json.loads(r["fields"] or "{}")
        | {"first_name": r["first_name"], "last_name": r["last_name"]}
        for r in rows
    }


async def _set_tags(account_id: int, contact_id: int, tags: list[str]) -> None:
    await ContactTag.delete().where(ContactTag.contact_id == contact_id)
    if tags:
        await ContactTag.insert(
            *[ContactTag(account_id=account_id, contact_id=contact_id, tag=t) for t in tags]
        )


def _snapshot(c: ContactView) -> dict[str, Any]:
    # Audit rows name the record, not the person: names and numbers stay in the contact.
    return {"fields": sorted(c.fields), "tags": c.tags}


@dataclass(frozen=True)
class _ContactInput:
    """A contact form, checked: the number in E.164, trimmed names, clean fields and tags."""

    phone: str
    first_name: str
    last_name: str
    email: str
    fields: dict[str, str]
    tags: list[str]


async def _checked_contact(
    account_id: int,
    *,
    phone: str,
    first_name: str,
    last_name: str,
    email: str,
    fields: dict[str, str],
    tags: Iterable[str],
) -> _ContactInput:
    """Create and update check a contact alike; one refusal names every bad field."""
    first_name, last_name, email = first_name.strip(), last_name.strip(), email.strip()
    errors, e164, good_tags, clean_fields = _validate(
        region=await _region(account_id),
        phone=phone,
        first_name=first_name,
        last_name=last_name,
        email=email,
        fields=fields,
        tags=tags,
    )
    if errors:
        raise ValidationFailed(errors)
    assert e164 is not None
    return _ContactInput(e164, first_name, last_name, email, clean_fields, good_tags)


async def create_contact(
    *,
    actor: audit.Actor,
    account_id: int,
    phone: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    fields: dict[str, str] | None = None,
    tags: Iterable[str] = (),
) -> ContactView:
    checked = await _checked_contact(
        account_id,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
        email=email,
        fields=fields or {},
        tags=tags,
    )
    e164 = checked.phone
    async with transaction():
        if await Contact.exists().where(Contact.account_phone == f"{account_id}|{e164}"):
            raise ValidationFailed({"phone": f"A contact with {e164} already exists."})
        now = clock.now()
        rows = await Contact.insert(
            Contact(
                account_id=account_id,
                phone=e164,
                account_phone=f"{account_id}|{e164}",
                first_name=checked.first_name,
                last_name=checked.last_name,
                email=checked.email,
                fields=json.dumps(checked.fields, sort_keys=True),
                created_at=now,
                updated_at=now,
            )
        ).returning(Contact.id)
        contact_id = rows[0]["id"]
        await _set_tags(account_id, contact_id, checked.tags)
        created = await get_contact(account_id, contact_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="contact.create",
            target_type="contact",
            target_id=contact_id,
            after=_snapshot(created),
        )
        return created


async def update_contact(
    *,
    actor: audit.Actor,
    account_id: int,
    contact_id: int,
    phone: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    fields: dict[str, str] | None = None,
    tags: Iterable[str] = (),
) -> ContactView:
    checked = await _checked_contact(
        account_id,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
        email=email,
        fields=fields or {},
        tags=tags,
    )
    e164 = checked.phone
    async with transaction():
        before = await get_contact(account_id, contact_id)
        key = f"{account_id}|{e164}"
        if e164 != before.phone and await Contact.exists().where(Contact.account_phone == key):
            raise ValidationFailed({"phone": f"A contact with {e164} already exists."})
        await Contact.update(
            {
                Contact.phone: e164,
                Contact.account_phone: key,
                Contact.first_name: checked.first_name,
                Contact.last_name: checked.last_name,
                Contact.email: checked.email,
                Contact.fields: json.dumps(checked.fields, sort_keys=True),
                Contact.updated_at: clock.now(),
            }
        ).where((Contact.id == contact_id) & (Contact.account_id == account_id))
        await _set_tags(account_id, contact_id, checked.tags)
        after = await get_contact(account_id, contact_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="contact.update",
            target_type="contact",
            target_id=contact_id,
            before=_snapshot(before) | {"phone_changed": False},
            after=_snapshot(after) | {"phone_changed": before.phone != after.phone},
        )
        return after


async def delete_contact(*, actor: audit.Actor, account_id: int, contact_id: int) -> None:
    """Delete the contact; its consent events stay (they belong to the number, not the row)."""
    async with transaction():
        before = await get_contact(account_id, contact_id)
        await ContactTag.delete().where(ContactTag.contact_id == contact_id)
        await ContactListMember.delete().where(ContactListMember.contact_id == contact_id)
        await Contact.delete().where(
            (Contact.id == contact_id) & (Contact.account_id == account_id)
        )
        await audit.record(
            actor,
            account_id=account_id,
            action="contact.delete",
            target_type="contact",
            target_id=contact_id,
            before=_snapshot(before),
        )


def phone_query_digits(q: str) -> str:
    """The digits to look for in phone numbers when a search looks like a phone number
    ("Bulk6" does not: digits inside a name match no number), without the national trunk
    0, so "0413 000 006" finds "+61413000006"; "" when it is not a number."""
    if not re.fullmatch(r"\+?[0-9][0-9 ().-]*", q):
        return ""
    digits = re.sub(r"[^0-9]", "", q)
    return digits[1:] if not q.startswith("+") and digits.startswith("0") else digits


async def search_contacts(
    account_id: int,
    *,
    q: str = "",
    tag: str = "",
    list_id: int | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[list[ContactView], int]:
    """A page of the account's contacts matching name, email or number digits."""
    where = await contacts_matching(account_id, q=q, tag=tag, list_id=list_id)
    rows = (
        await Contact.select()
        .where(where)
        .order_by(Contact.id, ascending=False)
        .offset(max(offset, 0))
        .limit(limit)
    )
    total = await Contact.count().where(where)
    tags = await _tags_of([r["id"] for r in rows])
    return [_view(r, tags[r["id"]]) for r in rows], total


async def contacts_matching(
    account_id: int, *, q: str = "", tag: str = "", list_id: int | None = None
) -> Any:
    """The condition on Contact that the contacts search applies (name, email or number
    digits, a tag, a list): the search page and "select all matching" share it."""
    where: Any = Contact.account_id == account_id
    q = (q or "").strip()
    if q:
        cond = (
            contains_text(Contact.first_name, q)
            | contains_text(Contact.last_name, q)
            | contains_text(Contact.email, q)
        )
        if digits := phone_query_digits(q):
            cond = cond | Contact.phone.like(f"%{digits}%")
        where = where & cond
    if tag:
        tagged = ContactTag.select(ContactTag.contact_id).where(
            (ContactTag.account_id == account_id) & (ContactTag.tag == tag.strip().lower())
        )
        # An empty is_in is refused by Piccolo: a tag nobody carries matches no id.
        where = where & Contact.id.is_in([r["contact_id"] for r in await tagged] or [-1])
    if list_id is not None:
        members = ContactListMember.select(ContactListMember.contact_id).where(
            ContactListMember.list_id == list_id
        )
        where = where & Contact.id.is_in([r["contact_id"] for r in await members] or [-1])
    return where


async def account_tags(account_id: int) -> list[str]:
    rows = (
        await ContactTag.select(ContactTag.tag)
        .where(ContactTag.account_id == account_id)
        .distinct()
    )
    return sorted(r["tag"] for r in rows)


# ---------------------------------------------------------------------------- lists


@dataclass(frozen=True)
class ContactListView:
    id: int
    account_id: int
    name: str
    size: int


async def contact_lists(account_id: int) -> list[ContactListView]:
    rows = await ContactList.select().where(ContactList.account_id == account_id)
    ids = [r["id"] for r in rows]
    sizes: dict[int, int] = {}
    if ids:
        counted = (
            await ContactListMember.select(
                ContactListMember.list_id, Count(ContactListMember.id, alias="n")
            )
            .where(ContactListMember.list_id.is_in(ids))
            .group_by(ContactListMember.list_id)
        )
        sizes = {r["list_id"]: r["n"] for r in counted}
    return sorted(
        (ContactListView(r["id"], account_id, r["name"], sizes.get(r["id"], 0)) for r in rows),
        key=lambda v: v.name.lower(),
    )


async def is_own_list(account_id: int, list_id: int) -> bool:
    """Whether the list exists and is the account's (one statement; kept across an
    inbound group's blocks while cache_version stands)."""

    async def load() -> bool:
        return bool(
            await ContactList.exists().where(
                (ContactList.id == list_id) & (ContactList.account_id == account_id)
            )
        )

    return await shared_read(("own_list", account_id, list_id), load, settled=True)


async def get_list(account_id: int, list_id: int) -> ContactListView:
    for item in await contact_lists(account_id):
        if item.id == list_id:
            return item
    raise NotFound("list not found")


async def create_list(*, actor: audit.Actor, account_id: int, name: str) -> ContactListView:
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed({"name": "A list name is 1-80 characters."})
    async with transaction():
        existing = await ContactList.select(ContactList.name).where(
            ContactList.account_id == account_id
        )
        if any(r["name"].lower() == name.lower() for r in existing):
            raise ValidationFailed({"name": f"A list named {name!r} already exists."})
        rows = await ContactList.insert(ContactList(account_id=account_id, name=name)).returning(
            ContactList.id
        )
        await audit.record(
            actor,
            account_id=account_id,
            action="contact_list.create",
            target_type="contact_list",
            target_id=rows[0]["id"],
            after={"name": name},
        )
        return ContactListView(rows[0]["id"], account_id, name, 0)


async def add_to_list(
    *, actor: audit.Actor | None, account_id: int, list_id: int, contact_ids: Sequence[int]
) -> int:
    """Add the account's contacts to one of its lists; returns how many were new members.
    `actor` None is for automatic additions (a keyword's opt-in action)."""
    async with transaction():
        await get_list(account_id, list_id)
        own = [
            r["id"]
            for r in await Contact.select(Contact.id).where(
                (Contact.account_id == account_id) & Contact.id.is_in(list(contact_ids) or [-1])
            )
        ]
        if len(own) != len(set(contact_ids)):
            raise NotFound("contact not found")
        new = await _add_members(list_id, own)
        if new:
            if actor is not None:
                await audit.record(
                    actor,
                    account_id=account_id,
                    action="contact_list.add",
                    target_type="contact_list",
                    target_id=list_id,
                    after={"contact_ids": new},
                )
        return len(new)


async def _add_members(list_id: int, contact_ids: Sequence[int]) -> list[int]:
    """Make these contacts members of the list (two statements); returns the new members."""
    wanted = list(dict.fromkeys(contact_ids))
    if not wanted:
        return []
    present = {
        r["key"]
        for r in await ContactListMember.select(ContactListMember.key).where(
            ContactListMember.key.is_in([f"{list_id}|{c}" for c in wanted])
        )
    }
    new = [c for c in wanted if f"{list_id}|{c}" not in present]
    if new:
        await ContactListMember.insert(
            *[ContactListMember(list_id=list_id, contact_id=c, key=f"{list_id}|{c}") for c in new]
        )
    return new


async def join_list(
    *, actor: audit.Actor, account_id: int, list_id: int, phones: Sequence[str]
) -> dict[str, int]:
    """Put the senders of a keyword on one of the account's lists (the caller checked the
    list is the account's): each phone's contact, created (audited as `actor`) when the
    account has none, becomes a member; a few statements for any number of phones, as
    find_contact_by_phone, create_contact and add_to_list one phone at a time would.
    Returns phone -> contact id."""
    wanted = list(dict.fromkeys(phones))
    if not wanted:
        return {}
    async with transaction():
        found = {
            r["account_phone"]: r["id"]
            for r in await Contact.select(Contact.id, Contact.account_phone).where(
                Contact.account_phone.is_in([f"{account_id}|{p}" for p in wanted])
            )
        }
        ids = {p: found[f"{account_id}|{p}"] for p in wanted if f"{account_id}|{p}" in found}
        missing = [p for p in wanted if p not in ids]
        if missing:
            ids.update(await _create_plain_contacts(actor, account_id, missing, set(found)))
        await _add_members(list_id, [ids[p] for p in wanted])
    return ids


async def _create_plain_contacts(
    actor: audit.Actor, account_id: int, phones: Sequence[str], taken: set[str]
) -> dict[str, int]:
    """Contacts with only a phone (checked as create_contact checks it), audited; `taken`:
    the account's account_phone keys that already exist. Returns phone -> contact id."""
    region = await _region(account_id)
    fresh: dict[str, str] = {}  # e164 -> the phone as given
    for phone in phones:
        e164 = normalize_phone(phone, region)
        if e164 is None:
            raise ValidationFailed({"phone": f"{phone.strip()!r} is not a valid phone number."})
        if f"{account_id}|{e164}" in taken or e164 in fresh:
            raise ValidationFailed({"phone": f"A contact with {e164} already exists."})
        fresh[e164] = phone
    now = clock.now()
    created = await Contact.insert(
        *[
            Contact(
                account_id=account_id,
                phone=e164,
                account_phone=f"{account_id}|{e164}",
                fields="{}",
                created_at=now,
                updated_at=now,
            )
            for e164 in fresh
        ]
    ).returning(Contact.id, Contact.account_phone)
    await audit.record_many(
        actor,
        [
            audit.Entry(
                account_id=account_id,
                action="contact.create",
                target_type="contact",
                target_id=row["id"],
                after={"fields": [], "tags": []},
            )
            for row in sorted(created, key=lambda r: r["id"])
        ],
    )
    # Told apart by their unique key: RETURNING's row order is not promised.
    return {fresh[row["account_phone"].split("|", 1)[1]]: row["id"] for row in created}


async def remove_from_list(
    *, actor: audit.Actor, account_id: int, list_id: int, contact_id: int
) -> None:
    async with transaction():
        await get_list(account_id, list_id)
        await get_contact(account_id, contact_id)
        await ContactListMember.delete().where(ContactListMember.key == f"{list_id}|{contact_id}")
        await audit.record(
            actor,
            account_id=account_id,
            action="contact_list.remove",
            target_type="contact_list",
            target_id=list_id,
            before={"contact_id": contact_id},
        )


async def lists_of(contact_id: int) -> list[int]:
    rows = await ContactListMember.select(ContactListMember.list_id).where(
        ContactListMember.contact_id == contact_id
    )
    return sorted(r["list_id"] for r in rows)


async def recipient_phones(
    account_id: int,
    *,
    contact_ids: Sequence[int] = (),
    list_ids: Sequence[int] = (),
    tags: Sequence[str] = (),
) -> list[tuple[int, str]]:
    """(contact id, E.164 phone) of the account's contacts chosen by id, list or tag, each
    once, in contact id order: a few queries whatever the size (for the send pipeline)."""
    ids: set[int] = set(contact_ids)
    if list_ids:
        own_lists = [
            r["id"]
            for r in await ContactList.select(ContactList.id).where(
                (ContactList.account_id == account_id) & ContactList.id.is_in(list(list_ids))
            )
        ]
        if len(own_lists) != len(set(list_ids)):
            raise NotFound("list not found")
        ids |= {
            r["contact_id"]
            for r in await ContactListMember.select(ContactListMember.contact_id).where(
                ContactListMember.list_id.is_in(own_lists)
            )
        }
    if tags:
        ids |= {
            r["contact_id"]
            for r in await ContactTag.select(ContactTag.contact_id).where(
                (ContactTag.account_id == account_id)
                & ContactTag.tag.is_in([t.strip().lower() for t in tags])
            )
        }
    if not ids:
        return []
    out: list[tuple[int, str]] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), 5000):
        rows = await Contact.select(Contact.id, Contact.phone).where(
            (Contact.account_id == account_id) & Contact.id.is_in(ordered[start : start + 5000])
        )
        out.extend((r["id"], r["phone"]) for r in rows)
    return sorted(out)


# ---------------------------------------------------------------------------- export

EXPORT_PAGE = 2000


async def _custom_field_names(account_id: int) -> list[str]:
    names: set[str] = set()
    last = 0
    while True:
        rows = (
            await Contact.select(Contact.id, Contact.fields)
            .where((Contact.account_id == account_id) & (Contact.id > last))
            .order_by(Contact.id)
            .limit(EXPORT_PAGE)
        )
        if not rows:
            return sorted(names)
        for r in rows:
            names.update(json.loads(r["fields"] or "{}"))
        last = rows[-1]["id"]


async def export_csv(account_id: int) -> AsyncIterator[str]:
    """The account's contacts as CSV text, streamed page by page (keyset on id), with each
    number's SMS and WhatsApp consent status in the account's scope."""
    names = await _custom_field_names(account_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "phone", "first_name", "last_name", "email", "tags", "sms_status"]
        + ["whatsapp_status"]
        + names
    )
    yield out.getvalue()
    last = 0
    while True:
        rows = (
            await Contact.select()
            .where((Contact.account_id == account_id) & (Contact.id > last))
            .order_by(Contact.id)
            .limit(EXPORT_PAGE)
        )
        if not rows:
            return
        tags = await _tags_of([r["id"] for r in rows])
        state = await statuses(account_id, [r["phone"] for r in rows])
        out = io.StringIO()
        writer = csv.writer(out)
        for r in rows:
            fields = json.loads(r["fields"] or "{}")
            writer.writerow(
                [
                    r["id"],
                    r["phone"],
                    _safe_cell(r["first_name"]),
                    _safe_cell(r["last_name"]),
                    _safe_cell(r["email"]),
                    ";".join(tags[r["id"]]),
                    state.get((r["phone"], "sms"), "unknown"),
                    state.get((r["phone"], "whatsapp"), "unknown"),
                ]
                + [_safe_cell(fields.get(n, "")) for n in names]
            )
        yield out.getvalue()
        last = rows[-1]["id"]


def _safe_cell(value: str) -> str:
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
