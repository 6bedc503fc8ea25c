"""Contacts pages: list and search, create and edit, the consent status component with
manual opt-out / opt-in, lists, CSV import (upload, mapping, check, import) and export."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Stream

from portal.auth import current_grants, request_actor
from portal.forms import FORM, MULTIPART, digits, many, one, parse_id
from portal.pages import render
from tenants.consent import events as consent_events
from tenants.consent import scopes as consent_scopes
from tenants.consent.filter import statuses
from tenants.contacts import bulk, contacts
from tenants.contacts import imports as contact_import
from tenants.errors import ValidationFailed
from tenants.settings import get_settings

MAX_UPLOAD = 50 * 1024 * 1024  # ~1M rows of a typical contact file
CONTACT_FIELDS = ("phone", "first_name", "last_name", "email", "tags")


def _form_fields(data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(standard form values, custom fields from `field_name_N` / `field_value_N` pairs)."""
    form = {k: (data.get(k) or "").strip() for k in CONTACT_FIELDS}
    fields: dict[str, str] = {}
    for key, value in data.items():
        if key.startswith("field_name_"):
            name = value.strip()
            if name:
                fields[name] = (data.get("field_value_" + key[len("field_name_") :]) or "").strip()
    return form, fields


async def _consent_context(account_id: int, phone: str) -> dict[str, Any]:
    return {
        "traces": {
            group: await consent_events.explain(account_id, phone, group)
            for group in consent_scopes.GROUPS
        }
    }


async def _list_context(
    account_id: int, *, q: str = "", tag: str = "", list_id: str = "", page: int = 1
) -> dict[str, Any]:
    """Everything the contacts page shows: the search results and an empty create form."""
    page = max(page, 1)
    chosen_list = parse_id(list_id)
    found, total = await contacts.search_contacts(
        account_id,
        q=q,
        tag=tag,
        list_id=chosen_list,
        offset=(page - 1) * contacts.PAGE_SIZE,
    )
    return {
        "contacts": found,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // contacts.PAGE_SIZE)),
        "q": q,
        "tag": tag,
        "list_id": chosen_list,
        "state": await statuses(account_id, [c.phone for c in found]),
        "tags": await contacts.account_tags(account_id),
        "lists": await contacts.contact_lists(account_id),
        "form": {},
        "errors": {},
        "bulk_actions": bulk.ACTIONS,
        "bulk_form": {},
        "bulk_errors": {},
        "bulk_notice": "",
        "bulk_confirm": None,
    }


async def _filtered_context(account_id: int, filters: dict[str, str]) -> dict[str, Any]:
    """The contacts page for the search a bulk form was posted from."""
    return await _list_context(
        account_id, q=filters["q"], tag=filters["tag"], list_id=filters["list_id"]
    )


def bulk_notice(action: str, count: str) -> str:
    """The notice after a bulk action, from the redirect's query (fixed words, a number)."""
    if action not in bulk.DONE or not digits(count):
        return ""
    n = int(count)
    return f"{n} contact{'' if n == 1 else 's'} {bulk.DONE[action]}."


def _bulk_request(data: dict[str, Any]) -> bulk.BulkRequest:
    """The bulk form or its confirmation, read; ValidationFailed naming each bad field."""
    errors: dict[str, str] = {}
    raw_ids = many(data, "ids")
    if any(parse_id(v) is None for v in raw_ids):
        errors["ids"] = "Contact ids are whole numbers."
    raw_list = one(data, "list_id")
    if raw_list and parse_id(raw_list) is None:
        errors["list_id"] = "Choose a list."
    match_list = one(data, "match_list_id")
    if match_list and parse_id(match_list) is None:
        errors["match_list_id"] = "Filter by one of your lists."
    if errors:
        raise ValidationFailed(errors)
    selection = bulk.Selection(
        ids=[int(v) for v in raw_ids],
        all_matching=one(data, "all_matching") == "1",
        q=one(data, "match_q"),
        tag=one(data, "match_tag"),
        list_id=parse_id(one(data, "match_list_id")),
    )
    return bulk.BulkRequest(
        action=one(data, "action"),
        selection=selection,
        tag=one(data, "tag"),
        list_id=int(raw_list) if raw_list else None,
    )


async def _contact_context(account_id: int, contact: contacts.ContactView) -> dict[str, Any]:
    """Everything one contact's page shows, its edit form filled from the contact."""
    return {
        "contact": contact,
        "form": None,
        "errors": {},
        "lists": await contacts.contact_lists(account_id),
        "member_of": await contacts.lists_of(contact.id),
        "consent_errors": {},
        **await _consent_context(account_id, contact.phone),
    }


class ContactsController(Controller):
    path = "/contacts"

    @get("/", opt={"permission": "contacts.view"}, name="contacts")
    async def index(
        self,
        request: HTMXRequest,
        q: FromQuery[str] = "",
        tag: FromQuery[str] = "",
        list_id: FromQuery[str] = "",
        page: FromQuery[int] = 1,
        done: FromQuery[str] = "",
        count: FromQuery[str] = "",
    ) -> Any:
        account = current_grants(request).account
        context = await _list_context(account.id, q=q, tag=tag, list_id=list_id, page=page)
        context["bulk_notice"] = bulk_notice(done, count)
        return await render(request, "contacts.html.jinja", context, block="results")

    @post("/bulk", opt={"permission": "contacts.manage"})
    async def bulk_action(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        """Tag, untag, list or delete the ticked contacts (or all matching the search):
        a delete asks first; then a redirect back with the count (htmx: the list again)."""
        account = current_grants(request).account
        filters = {
            "q": one(data, "match_q"),
            "tag": one(data, "match_tag"),
            "list_id": one(data, "match_list_id"),
        }
        try:
            req = _bulk_request(data)
            if req.action == "delete" and one(data, "confirm") != "yes":
                return await _confirm_delete(request, account.id, req, filters)
            result = await bulk.apply_bulk_action(
                actor=request_actor(request), account_id=account.id, request=req
            )
        except ValidationFailed as exc:
            ctx = await _filtered_context(account.id, filters)
            ctx |= {"bulk_errors": exc.errors, "bulk_form": _kept_form(data)}
            return await render(
                request, "contacts.html.jinja", ctx, block="results", status_code=422
            )
        query = urlencode({**filters, "done": result.action, "count": result.changed})
        if not request.htmx:
            return Redirect(path=f"/contacts?{query}", status_code=303)
        ctx = await _filtered_context(account.id, filters)
        ctx["bulk_notice"] = bulk_notice(result.action, str(result.changed))
        return await render(request, "contacts.html.jinja", ctx, block="results")

    @post("/", opt={"permission": "contacts.manage"})
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        form, fields = _form_fields(data)
        try:
            created = await contacts.create_contact(
                actor=request_actor(request),
                account_id=account.id,
                phone=form["phone"],
                first_name=form["first_name"],
                last_name=form["last_name"],
                email=form["email"],
                fields=fields,
                tags=contacts.split_tags(form["tags"]),
            )
        except ValidationFailed as exc:
            # Without htmx the whole page comes back, the form filled in with its errors.
            context = {} if request.htmx else await _list_context(account.id)
            return await render(
                request,
                "contacts.html.jinja",
                context | {"form": form, "errors": exc.errors},
                block="create_form",
                status_code=422,
            )
        if not request.htmx:
            return Redirect(path=f"/contacts/{created.id}", status_code=303)
        return await render(
            request,
            "contacts.html.jinja",
            {"form": {}, "errors": {}, "created": created},
            block="create_form",
            status_code=201,
            headers={"HX-Trigger": "contacts-changed"},
        )

    @get("/{contact_id:int}", opt={"permission": "contacts.view"})
    async def show(self, request: HTMXRequest, contact_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        contact = await contacts.get_contact(account.id, contact_id)
        return await render(
            request, "contact.html.jinja", await _contact_context(account.id, contact)
        )

    @post("/{contact_id:int}", opt={"permission": "contacts.manage"})
    async def update(
        self, request: HTMXRequest, contact_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        account = current_grants(request).account
        form, fields = _form_fields(data)
        try:
            contact = await contacts.update_contact(
                actor=request_actor(request),
                account_id=account.id,
                contact_id=contact_id,
                phone=form["phone"],
                first_name=form["first_name"],
                last_name=form["last_name"],
                email=form["email"],
                fields=fields,
                tags=contacts.split_tags(form["tags"]),
            )
        except ValidationFailed as exc:
            contact = await contacts.get_contact(account.id, contact_id)
            context = (
                {"contact": contact}
                if request.htmx
                else await _contact_context(account.id, contact)
            )
            return await render(
                request,
                "contact.html.jinja",
                context | {"form": form, "fields": fields, "errors": exc.errors},
                block="edit_form",
                status_code=422,
            )
        if not request.htmx:
            return Redirect(path=f"/contacts/{contact_id}", status_code=303)
        return await render(
            request,
            "contact.html.jinja",
            {"contact": contact, "form": None, "errors": {}, "saved": True},
            block="edit_form",
        )

    @post("/{contact_id:int}/delete", opt={"permission": "contacts.manage"})
    async def delete(self, request: HTMXRequest, contact_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        await contacts.delete_contact(
            actor=request_actor(request), account_id=account.id, contact_id=contact_id
        )
        return Redirect(path="/contacts", status_code=303)

    @post("/{contact_id:int}/consent", opt={"permission": "consent.manage"})
    async def record_consent(
        self, request: HTMXRequest, contact_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        account = current_grants(request).account
        contact = await contacts.get_contact(account.id, contact_id)
        action = data.get("action", "")
        group = data.get("channel_group", "sms")
        note = (data.get("note") or "").strip()
        errors: dict[str, str] = {}
        if action not in consent_events.ACTIONS:
            errors["action"] = "Choose opt out or opt in."
        if group not in consent_scopes.GROUPS:
            errors["channel_group"] = "Choose SMS or WhatsApp."
        if action == "opt_in" and not note:
            errors["note"] = "Say how the person gave consent again (required for an opt-in)."
        message = ""
        if not errors:
            record = (
                consent_events.record_opt_out
                if action == "opt_out"
                else consent_events.record_opt_in
            )
            principal = request.scope["user"]
            changed = await record(
                account.id,
                contact.phone,
                group,
                source="manual",
                user_id=principal.user_id,
                note=note,
                actor=request_actor(request),
            )
            verb = "Opted out" if action == "opt_out" else "Opted in"
            message = f"{verb} on {group}." if changed else f"Already {verb.lower()} on {group}."
        ctx = {
            "contact": contact,
            "consent_errors": errors,
            "consent_message": message,
            "consent_form": data if errors else {},
            **await _consent_context(account.id, contact.phone),
        }
        if not request.htmx and not errors:
            return Redirect(path=f"/contacts/{contact_id}", status_code=303)
        page = (
            {"form": None, "errors": {}, "lists": [], "member_of": []}
            if request.htmx
            else await _contact_context(account.id, contact)
        )
        return await render(
            request,
            "contact.html.jinja",
            page | ctx,
            block="consent",
            status_code=422 if errors else 200,
        )

    @post("/{contact_id:int}/lists", opt={"permission": "contacts.manage"})
    async def add_to_list(
        self, request: HTMXRequest, contact_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        account = current_grants(request).account
        list_id = parse_id(data.get("list_id"))
        if list_id is None:
            raise ValidationFailed({"list_id": "Choose a list."})
        await contacts.add_to_list(
            actor=request_actor(request),
            account_id=account.id,
            list_id=list_id,
            contact_ids=[contact_id],
        )
        return Redirect(path=f"/contacts/{contact_id}", status_code=303)

    @post("/lists", opt={"permission": "contacts.manage"})
    async def create_list(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        account = current_grants(request).account
        name = data.get("name", "")
        try:
            await contacts.create_list(
                actor=request_actor(request), account_id=account.id, name=name
            )
        except ValidationFailed as exc:
            # The contacts page again, the list form filled in with its error.
            context = await _list_context(account.id)
            context |= {"list_name": name, "list_errors": exc.errors}
            return await render(request, "contacts.html.jinja", context, status_code=422)
        return Redirect(path="/contacts", status_code=303)

    @get("/export.csv", opt={"permission": "contacts.export"})
    async def export(self, request: HTMXRequest) -> Stream:
        account = current_grants(request).account
        return Stream(
            contacts.export_csv(account.id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="contacts-{account.slug}.csv"'},
        )

    # ------------------------------------------------------------------ import

    @get("/import", opt={"permission": "contacts.manage"})
    async def import_form(self, request: HTMXRequest) -> Any:
        return await render(request, "contact_import.html.jinja", {"upload_errors": {}})

    @post(
        "/import",
        opt={"permission": "contacts.manage"},
        request_max_body_size=MAX_UPLOAD,
    )
    async def upload(self, request: HTMXRequest, data: Annotated[dict[str, Any], MULTIPART]) -> Any:
        account = current_grants(request).account
        upload = data.get("file")
        errors: dict[str, str] = {}
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors["file"] = "Choose a CSV file."
        else:
            folder = get_settings().web.data_dir / "imports"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{account.id}-{uuid.uuid4().hex}.csv"
            await _save(upload, target)
            try:
                created = await contact_import.register_upload(
                    actor=request_actor(request),
                    account_id=account.id,
                    filename=upload.filename,
                    stored_path=str(target),
                )
            except ValidationFailed as exc:
                target.unlink(missing_ok=True)
                errors = exc.errors
            else:
                return Redirect(path=f"/contacts/import/{created.id}", status_code=303)
        return await render(
            request, "contact_import.html.jinja", {"upload_errors": errors}, status_code=422
        )

    @get("/import/{import_id:int}", opt={"permission": "contacts.manage"})
    async def import_preview(self, request: HTMXRequest, import_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        item = await contact_import.get_import(account.id, import_id)
        return await render(
            request, "contact_import.html.jinja", await _import_ctx(account.id, item)
        )

    @post("/import/{import_id:int}", opt={"permission": "contacts.manage"})
    async def import_step(
        self, request: HTMXRequest, import_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        """`step=check` reports the bad rows; `step=import` imports by the chosen mode."""
        account = current_grants(request).account
        mapping = {k[4:]: v for k, v in data.items() if k.startswith("col_")}
        step = data.get("step", "check")
        item = await contact_import.get_import(account.id, import_id)
        ctx = await _import_ctx(account.id, item) | {"mapping": mapping, "into": _into_form(data)}
        try:
            if step == "discard":
                await contact_import.discard_import(
                    actor=request_actor(request), account_id=account.id, import_id=import_id
                )
                return Redirect(path="/contacts", status_code=303)
            if step == "import":
                result = await contact_import.run_import(
                    actor=request_actor(request),
                    account_id=account.id,
                    import_id=import_id,
                    mapping=mapping,
                    mode=data.get("mode", ""),
                    into=_list_choice(data),
                )
                ctx |= {"report": result.report, "result": result}
            else:
                ctx["report"] = await contact_import.check_import(account.id, import_id, mapping)
        except ValidationFailed as exc:
            ctx["mapping_errors"] = exc.errors
            return await render(
                request, "contact_import.html.jinja", ctx, block="import_body", status_code=422
            )
        return await render(request, "contact_import.html.jinja", ctx, block="import_body")


def _kept_form(data: dict[str, Any]) -> dict[str, Any]:
    """The bulk form as it was posted, to show it again beside its errors."""
    return {
        "action": one(data, "action"),
        "tag": one(data, "tag"),
        "list_id": one(data, "list_id"),
        "ids": many(data, "ids"),
        "all_matching": one(data, "all_matching") == "1",
    }


async def _confirm_delete(
    request: HTMXRequest, account_id: int, req: bulk.BulkRequest, filters: dict[str, str]
) -> Any:
    """The question before a bulk delete, above the same list: how many will go."""
    bulk.check_request(req)
    count = await bulk.count_selected(account_id, req.selection)
    ctx = await _filtered_context(account_id, filters)
    ctx["bulk_confirm"] = {
        "count": count,
        "ids": sorted(set(req.selection.ids)),
        "all_matching": req.selection.all_matching,
    }
    return await render(request, "contacts.html.jinja", ctx, block="results")


def _into_form(data: dict[str, str]) -> dict[str, str]:
    return {"list_id": data.get("list_id", ""), "new_list": data.get("new_list", "")}


def _list_choice(data: dict[str, str]) -> contact_import.ListChoice:
    """The import form's list: an id, "new" with a name, or none; 422 for anything else."""
    raw = (data.get("list_id") or "").strip()
    if raw == "new":
        name = (data.get("new_list") or "").strip()
        if not name:
            raise ValidationFailed({"new_list": "Name the new list."})
        return contact_import.ListChoice(new_name=name)
    if raw and parse_id(raw) is None:
        raise ValidationFailed({"list_id": "Choose one of your lists."})
    return contact_import.ListChoice(list_id=int(raw) if raw else None)


async def _import_ctx(account_id: int, item: contact_import.ImportView) -> dict[str, Any]:
    return {
        "lists": await contacts.contact_lists(account_id),
        "into": {"list_id": "", "new_list": ""},
        "item": item,
        "mapping": item.mapping,
        "targets": contact_import.TARGET_LABELS,
        "mapping_errors": {},
        "report": None,
        "result": None,
    }


async def _save(upload: UploadFile, target: Path) -> None:
    """Copy the upload to the data folder in chunks (never the whole file in memory)."""
    with target.open("wb") as handle:  # noqa: ASYNC230 - local disk, chunked
        while chunk := await upload.read(1 << 16):
            handle.write(chunk)
