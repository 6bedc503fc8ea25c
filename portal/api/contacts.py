"""/api/v1/contacts: create a contact, read one, export all (with `contacts.export`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Stream

from portal.api.accounts import _body, _opt_str
from portal.auth import current_grants, request_actor
from tenants.contacts import contacts
from tenants.errors import ValidationFailed


def contact_json(c: contacts.ContactView) -> dict[str, Any]:
    return {
        "id": c.id,
        "account_id": c.account_id,
        "phone": c.phone,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email,
        "fields": c.fields,
        "tags": c.tags,
        "created_at": c.created_at.isoformat(),
    }


class ContactsApi(Controller):
    @post("/contacts", opt={"permission": "contacts.manage"}, status_code=201)
    async def create(self, request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
        body = _body(data)
        fields = body.get("fields") or {}
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise ValidationFailed({"fields": "Fields must be an object of strings."})
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValidationFailed({"tags": "Tags must be a list of strings."})
        created = await contacts.create_contact(
            actor=request_actor(request),
            account_id=current_grants(request).account.id,
            phone=_opt_str(body, "phone") or "",
            first_name=_opt_str(body, "first_name") or "",
            last_name=_opt_str(body, "last_name") or "",
            email=_opt_str(body, "email") or "",
            fields=fields,
            tags=tags,
        )
        return contact_json(created)

    @get("/contacts/{contact_id:int}", opt={"permission": "contacts.view"})
    async def show(self, request: Request[Any, Any, Any], contact_id: int) -> dict[str, Any]:
        account = current_grants(request).account
        return contact_json(await contacts.get_contact(account.id, contact_id))

    @get("/contacts/export", opt={"permission": "contacts.export"})
    async def export(self, request: Request[Any, Any, Any]) -> Stream:
        account = current_grants(request).account
        return Stream(
            contacts.export_csv(account.id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="contacts-{account.slug}.csv"'},
        )
