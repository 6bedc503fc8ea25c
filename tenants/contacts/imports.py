"""CSV import of contacts: a stored upload, its preview and column mapping, a streaming
check that reports every bad row by line number, and the import itself (the good rows,
or nothing), which honours an opt-out column and never clears an existing opt-out."""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tenants import clock
from tenants.accounts.tables import Account
from tenants.audit import record as audit
from tenants.consent import events as consent_events
from tenants.contacts.contacts import (
    EMAIL_RE,
    MAX_FIELD_VALUE,
    add_to_list,
    clean_tags,
    create_list,
    field_name,
    get_list,
    split_tags,
)
from tenants.contacts.tables import Contact, ContactImport, ContactTag
from tenants.db import CONTROL_CHARACTERS, chunked, first_or_404, transaction, view_of
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.phones import normalize_phone

TARGETS = ("phone", "first_name", "last_name", "email", "tags", "sms_opt_out")
TARGET_LABELS = {
    "": "Ignore this column",
    "phone": "Phone number",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "tags": "Tags (separated by , or ;)",
    "sms_opt_out": "SMS opt-out (yes/no)",
}
TRUTHY = {"1", "y", "yes", "true", "x", "opted out", "opt out", "opt-out", "optout", "stop"}
PREVIEW_ROWS = 5
KEPT_ERRORS = 1000  # errors stored for the report; the counts are always complete
CHUNK = 1000
MODES = ("good_rows", "all_or_nothing")
_GUESSES = [
    (re.compile(r"^(phone|mobile|cell|msisdn|number|phonenumber|mobilenumber|tel)"), "phone"),
    (re.compile(r"^(first|given|firstname|fname)"), "first_name"),
    (re.compile(r"^(last|surname|family|lastname|lname)"), "last_name"),
    (re.compile(r"^e?mail"), "email"),
    (re.compile(r"^(tags?|groups?|labels?)$"), "tags"),
    (re.compile(r"(optout|optedout|unsubscribed|smsoptout|stop)"), "sms_opt_out"),
]


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str  # missing_phone, invalid_number, duplicate, invalid_value
    detail: str


@dataclass
class ImportReport:
    total: int = 0
    good: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    opt_outs: int = 0

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True)
class ImportView:
    id: int
    account_id: int
    filename: str
    status: str  # uploaded, imported, discarded
    headers: list[str]
    mapping: dict[str, str]
    sample: list[list[str]]
    total_rows: int
    good_rows: int
    error_rows: int
    errors: list[dict[str, Any]]
    imported: int
    opt_outs: int


def guess_target(header: str) -> str:
    key = re.sub(r"[^a-z]", "", header.lower())
    for pattern, target in _GUESSES:
        if pattern.search(key):
            return target
    name = field_name(header)
    return f"field:{name}" if name and name[0].isalpha() else ""


def _rows(path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each record after the header, read as a stream."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, cells


def _read_head(path: str) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            headers = next(reader, [])
            sample: list[list[str]] = []
            for cells in reader:
                if len(sample) >= PREVIEW_ROWS:
                    break
                sample.append(cells)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed({"file": f"This is not a UTF-8 CSV file ({exc})."}) from None
    headers = [h.strip() for h in headers]
    if not headers or not any(headers):
        raise ValidationFailed({"file": "The file is empty or has no header row."})
    return headers, sample


def check_utf8(path: str) -> None:
    """Refuse a file that is not UTF-8 before anything is stored about it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 16):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValidationFailed({"file": "The file must be a CSV saved as UTF-8."}) from None


def _file_exists(path: str) -> bool:
    return Path(path).exists()


def _remove_file(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _import_view(row: dict[str, Any], sample: list[list[str]]) -> ImportView:
    return view_of(
        ImportView,
        row,
        headers=json.loads(row["headers"]),
        mapping=json.loads(row["mapping"]),
        sample=sample,
        errors=json.loads(row["errors"]),
    )


async def register_upload(
    *, actor: audit.Actor, account_id: int, filename: str, stored_path: str
) -> ImportView:
    """Record a CSV the web layer streamed to `stored_path`; guesses the column mapping."""
    check_utf8(stored_path)
    headers, sample = _read_head(stored_path)
    mapping = {str(i): guess_target(h) for i, h in enumerate(headers)}
    rows = await ContactImport.insert(
        ContactImport(
            account_id=account_id,
            user_id=actor.user_id,
            filename=(filename or "contacts.csv")[:200],
            stored_path=stored_path,
            headers=json.dumps(headers),
            mapping=json.dumps(mapping),
        )
    ).returning(*ContactImport.all_columns())
    return _import_view(rows[0], sample)


async def get_import(account_id: int, import_id: int) -> ImportView:
    row = await first_or_404(
        ContactImport.select().where(
            (ContactImport.id == import_id) & (ContactImport.account_id == account_id)
        ),
        "import not found",
    )
    sample: list[list[str]] = []
    if row["status"] == "uploaded" and _file_exists(row["stored_path"]):
        _, sample = _read_head(row["stored_path"])
    return _import_view(row, sample)


def validate_mapping(headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Column index -> target; exactly one phone column, each standard target at most once."""
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    for index in range(len(headers)):
        target = (mapping.get(str(index)) or "").strip()
        if not target:
            continue
        if target.startswith("field:"):
            name = field_name(target[6:])
            if not name or not name[0].isalpha():
                raise ValidationFailed(
                    {f"col_{index}": "A custom field name must start with a letter."}
                )
            target = f"field:{name}"
        elif target not in TARGETS:
            raise ValidationFailed({f"col_{index}": "Choose what this column holds."})
        if target in used:
            raise ValidationFailed(
                {
                    f"col_{index}": f"Column {headers[index]!r} and {used[target]!r} "
                    "are both mapped to the same field."
                }
            )
        used[target] = headers[index]
        clean[str(index)] = target
    if "phone" not in used:
        raise ValidationFailed({"mapping": "Map one column to the phone number."})
    return clean


@dataclass(frozen=True)
class _Row:
    line: int
    phone: str
    values: dict[str, str]
    tags: list[str]
    fields: dict[str, str]
    opt_out: bool


def _scan(path: str, mapping: dict[str, str], region: str) -> Iterator[_Row | RowError]:
    """Each row, parsed and checked, as it streams from the file."""
    seen: dict[str, int] = {}
    for line, cells in _rows(path):
        values: dict[str, str] = {}
        fields: dict[str, str] = {}
        for index, target in mapping.items():
            i = int(index)
            cell = cells[i].strip() if i < len(cells) else ""
            if target.startswith("field:"):
                if cell:
                    fields[target[6:]] = cell
            else:
                values[target] = cell
        raw_phone = values.get("phone", "")
        if not raw_phone:
            yield RowError(line, "missing_phone", "no phone number")
            continue
        phone = normalize_phone(raw_phone, region)
        if phone is None:
            yield RowError(line, "invalid_number", f"{raw_phone!r} is not a valid phone number")
            continue
        if phone in seen:
            yield RowError(line, "duplicate", f"{phone} already on line {seen[phone]}")
            continue
        problem = ""
        email = values.get("email", "")
        if email and not EMAIL_RE.match(email):
            problem = f"{email!r} is not an email address"
        elif any(len(values.get(k, "")) > 100 for k in ("first_name", "last_name")):
            problem = "a name is longer than 100 characters"
        elif any(len(v) > MAX_FIELD_VALUE for v in fields.values()):
            problem = f"a custom field is longer than {MAX_FIELD_VALUE} characters"
        elif any(CONTROL_CHARACTERS.search(v) for v in (*values.values(), *fields.values())):
            problem = "a cell holds a control character"
        tags, bad_tags = clean_tags(split_tags(values.get("tags", "")))
        if bad_tags and not problem:
            problem = f"invalid tag {bad_tags[0]!r}"
        if problem:
            yield RowError(line, "invalid_value", problem)
            continue
        seen[phone] = line
        yield _Row(
            line=line,
            phone=phone,
            values=values,
            tags=tags,
            fields=fields,
            opt_out=values.get("sms_opt_out", "").strip().lower() in TRUTHY,
        )


async def _load(account_id: int, import_id: int) -> tuple[dict[str, Any], str]:
    row = await first_or_404(
        ContactImport.select().where(
            (ContactImport.id == import_id) & (ContactImport.account_id == account_id)
        ),
        "import not found",
    )
    if row["status"] != "uploaded":
        raise Conflict("This file was already imported or discarded.", code="import_closed")
    region = await Account.select(Account.default_region).where(Account.id == account_id).first()
    return row, (region or {}).get("default_region") or "AU"


async def check_import(account_id: int, import_id: int, mapping: dict[str, str]) -> ImportReport:
    """Stream through the file with this mapping and report every bad row; writes nothing
    but the report."""
    row, region = await _load(account_id, import_id)
    clean = validate_mapping(json.loads(row["headers"]), mapping)
    report = ImportReport()
    for item in _scan(row["stored_path"], clean, region):
        report.total += 1
        if isinstance(item, RowError):
            report.add_error(item)
        else:
            report.good += 1
            report.opt_outs += item.opt_out
    await ContactImport.update(
        {
            ContactImport.mapping: json.dumps(clean),
            ContactImport.total_rows: report.total,
            ContactImport.good_rows: report.good,
            ContactImport.error_rows: report.error_count,
            ContactImport.errors: json.dumps([e.__dict__ for e in report.errors]),
        }
    ).where(ContactImport.id == import_id)
    return report


@dataclass(frozen=True)
class ImportResult:
    report: ImportReport
    created: int
    updated: int
    opt_outs_recorded: int
    imported: bool
    list_name: str = ""  # the list every imported row was put in, if one was chosen


@dataclass(frozen=True)
class ListChoice:
    """Where the imported rows go besides the contacts: an existing list, a new one, none."""

    list_id: int | None = None
    new_name: str = ""


async def _check_list_choice(account_id: int, choice: ListChoice) -> None:
    """Refuse a list that is not the account's, before the file is read."""
    if choice.list_id is None:
        return
    try:
        await get_list(account_id, choice.list_id)
    except NotFound:
        raise ValidationFailed({"list_id": "Choose one of your lists."}) from None


async def _target_list(
    actor: audit.Actor, account_id: int, choice: ListChoice
) -> tuple[int, str] | None:
    """(id, name) of the list the rows go to; a new list is created here, in the import's
    transaction (a refused name is the `new_list` field's error and nothing is written)."""
    if choice.list_id is not None:
        chosen = await get_list(account_id, choice.list_id)
        return chosen.id, chosen.name
    if not choice.new_name.strip():
        return None
    try:
        made = await create_list(actor=actor, account_id=account_id, name=choice.new_name)
    except ValidationFailed as exc:
        raise ValidationFailed({"new_list": exc.errors.get("name", exc.message)}) from None
    return made.id, made.name


LIST_CHUNK = 5000


async def _fill_list(account_id: int, list_id: int, contact_ids: list[int]) -> None:
    for part in chunked(contact_ids, LIST_CHUNK):
        await add_to_list(actor=None, account_id=account_id, list_id=list_id, contact_ids=part)


@dataclass
class _Written:
    """What an import has written so far: contacts created and updated, numbers opted out."""

    created: int = 0
    updated: int = 0
    opt_out_phones: list[str] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)  # every contact a good row names


async def run_import(
    *,
    actor: audit.Actor,
    account_id: int,
    import_id: int,
    mapping: dict[str, str],
    mode: str,
    into: ListChoice | None = None,
) -> ImportResult:
    """Import the file in one transaction: the good rows, or nothing if `all_or_nothing`
    and any row is bad. Existing contacts (same number) are updated, never duplicated;
    an opt-out column only ever adds `import` opt-outs, it never clears one. With `into`,
    every contact a good row names (new, updated or unchanged) is put in that list."""
    if mode not in MODES:
        raise ValidationFailed({"mode": "Choose to import the good rows or nothing."})
    into = into or ListChoice()
    await _check_list_choice(account_id, into)
    report = await check_import(account_id, import_id, mapping)
    if report.error_count and mode == "all_or_nothing":
        return ImportResult(report, 0, 0, 0, imported=False)
    row, region = await _load(account_id, import_id)
    async with transaction():
        target = await _target_list(actor, account_id, into)
        written = await _write_rows(
            account_id, _scan(row["stored_path"], json.loads(row["mapping"]), region)
        )
        if target is not None:
            await _fill_list(account_id, target[0], written.contact_ids)
        recorded = await _record_opt_outs(actor, account_id, row, written.opt_out_phones)
        await _mark_imported(import_id, written, recorded)
        await audit.record(
            actor,
            account_id=account_id,
            action="contact.import",
            target_type="contact_import",
            target_id=import_id,
            after={
                "created": written.created,
                "updated": written.updated,
                "skipped_rows": report.error_count,
                "opt_outs": recorded,
                "mode": mode,
                **({"list_id": target[0]} if target else {}),
            },
        )
    _remove_file(row["stored_path"])
    return ImportResult(
        report,
        written.created,
        written.updated,
        recorded,
        imported=True,
        list_name=target[1] if target else "",
    )


async def _write_rows(account_id: int, items: Iterator[_Row | RowError]) -> _Written:
    """The good rows, written CHUNK at a time; the bad ones are passed over."""
    written = _Written()
    batch: list[_Row] = []
    for item in items:
        if not isinstance(item, _Row):
            continue
        batch.append(item)
        if item.opt_out:
            written.opt_out_phones.append(item.phone)
        if len(batch) >= CHUNK:
            await _write_chunk(account_id, batch, written)
            batch = []
    if batch:
        await _write_chunk(account_id, batch, written)
    return written


async def _record_opt_outs(
    actor: audit.Actor, account_id: int, upload: dict[str, Any], phones: list[str]
) -> int:
    if not phones:
        return 0
    return await consent_events.record_opt_outs_bulk(
        account_id,
        phones,
        "sms",
        source="import",
        batch=f"import-{upload['id']}",
        user_id=actor.user_id,
        note=f"CSV import {upload['filename']}",
    )


async def _mark_imported(import_id: int, written: _Written, opt_outs: int) -> None:
    await ContactImport.update(
        {
            ContactImport.status: "imported",
            ContactImport.imported: written.created + written.updated,
            ContactImport.opt_outs: opt_outs,
            ContactImport.finished_at: clock.now(),
        }
    ).where(ContactImport.id == import_id)


async def discard_import(*, actor: audit.Actor, account_id: int, import_id: int) -> None:
    row, _ = await _load(account_id, import_id)
    await ContactImport.update({ContactImport.status: "discarded"}).where(
        ContactImport.id == import_id
    )
    _remove_file(row["stored_path"])


async def _write_chunk(account_id: int, batch: list[_Row], written: _Written) -> None:
    """Insert new contacts in one statement; update existing ones (same number) with the
    columns the file provides, keeping what it leaves empty."""
    keys = [_account_phone(account_id, r.phone) for r in batch]
    existing = {
        r["account_phone"]: r
        for r in await Contact.select().where(Contact.account_phone.is_in(keys))
    }
    now = clock.now()
    fresh = [r for r in batch if _account_phone(account_id, r.phone) not in existing]
    fresh_ids = await _insert_contacts(account_id, fresh, now)
    written.created += len(fresh_ids)
    written.updated += await _update_contacts(account_id, batch, existing, now)
    written.contact_ids += fresh_ids + [r["id"] for r in existing.values()]


def _account_phone(account_id: int, phone: str) -> str:
    return f"{account_id}|{phone}"


async def _insert_contacts(account_id: int, fresh: list[_Row], now: datetime) -> list[int]:
    """The new contacts and their tags; the ids of those created."""
    if not fresh:
        return []
    inserted = await Contact.insert(
        *[
            Contact(
                account_id=account_id,
                phone=r.phone,
                account_phone=_account_phone(account_id, r.phone),
                first_name=r.values.get("first_name", ""),
                last_name=r.values.get("last_name", ""),
                email=r.values.get("email", ""),
                fields=json.dumps(r.fields, sort_keys=True),
                created_at=now,
                updated_at=now,
            )
            for r in fresh
        ]
    ).returning(Contact.id, Contact.phone)
    by_phone = {x["phone"]: x["id"] for x in inserted}
    tag_rows = [
        ContactTag(account_id=account_id, contact_id=by_phone[r.phone], tag=t)
        for r in fresh
        for t in r.tags
    ]
    if tag_rows:
        await ContactTag.insert(*tag_rows)
    return list(by_phone.values())


async def _update_contacts(
    account_id: int, batch: list[_Row], existing: dict[str, dict[str, Any]], now: datetime
) -> int:
    """Existing contacts get the file's non-empty values and any tags they lack; how many
    changed."""
    old_tags = await _tags_of([r["id"] for r in existing.values()])
    updated = 0
    new_tags: list[ContactTag] = []
    for r in batch:
        current = existing.get(_account_phone(account_id, r.phone))
        if current is None:
            continue
        values = _merged_values(current, r)
        changed = any(current[col._meta.name] != v for col, v in values.items())
        if changed:
            await Contact.update({**values, Contact.updated_at: now}).where(
                Contact.id == current["id"]
            )
        missing = [t for t in r.tags if t not in old_tags.get(current["id"], set())]
        new_tags.extend(
            ContactTag(account_id=account_id, contact_id=current["id"], tag=t) for t in missing
        )
        updated += bool(changed or missing)
    if new_tags:
        await ContactTag.insert(*new_tags)
    return updated


async def _tags_of(contact_ids: list[int]) -> dict[int, set[str]]:
    tags: dict[int, set[str]] = {}
    if contact_ids:
        for t in await ContactTag.select(ContactTag.contact_id, ContactTag.tag).where(
            ContactTag.contact_id.is_in(contact_ids)
        ):
            tags.setdefault(t["contact_id"], set()).add(t["tag"])
    return tags


def _merged_values(current: dict[str, Any], r: _Row) -> dict[Any, Any]:
    """The file's values over the stored ones; an empty cell keeps what is stored."""
    return {
        Contact.first_name: r.values.get("first_name") or current["first_name"],
        Contact.last_name: r.values.get("last_name") or current["last_name"],
        Contact.email: r.values.get("email") or current["email"],
        Contact.fields: json.dumps(
            json.loads(current["fields"] or "{}") | r.fields, sort_keys=True
        ),
    }
