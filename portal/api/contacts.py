"""/api/v1/contacts: create a contact, read one, export all (with `contacts.export`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from litestar.response import Stream
from msgspec import Meta, Struct

from portal.api.schemas import Id, Line, PathId, documented
from portal.auth import current_grants, request_actor
from tenants.contacts import bulk, contacts


class ContactOut(Struct):
    id: int
    account_id: int
    phone: str
    first_name: str
    last_name: str
    email: str
    fields: dict[str, str]
    tags: list[str]
    created_at: str


class ContactCreate(Struct):
    phone: Line
    first_name: Line = ""
    last_name: Line = ""
    email: Line = ""
    fields: Annotated[dict[Line, Line], Meta(max_length=100)] = {}
    tags: Annotated[list[Line], Meta(max_length=100)] = []


class ContactMatch(Struct):
    """The contacts search: name, email or number digits, a tag, a list."""

    q: Line = ""
    tag: Line = ""
    list_id: Id | None = None


class ContactBulk(Struct):
    action: Annotated[str, Meta(description="tag, untag, add_to_list, remove_from_list, delete")]
    ids: Annotated[list[Id], Meta(max_length=100_000)] = []
    match: ContactMatch | None = None  # instead of ids: every contact the search finds
    tag: Line = ""
    list_id: Id | None = None


class ContactBulkOut(Struct):
    action: str
    selected: int
    changed: int


def contact_json(c: contacts.ContactView) -> ContactOut:
    return ContactOut(
        id=c.id,
        account_id=c.account_id,
        phone=c.phone,
        first_name=c.first_name,
        last_name=c.last_name,
        email=c.email,
        fields=c.fields,
        tags=c.tags,
        created_at=c.created_at.isoformat(),
    )


class ContactsApi(Controller):
    @post("/contacts", opt={"permission": "contacts.manage"}, status_code=201, **documented(409))
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ContactCreate]
    ) -> ContactOut:
        created = await contacts.create_contact(
            actor=request_actor(request),
            account_id=current_grants(request).account.id,
            phone=data.phone,
            first_name=data.first_name,
            last_name=data.last_name,
            email=data.email,
            fields=dict(data.fields),
            tags=list(data.tags),
        )
        return contact_json(created)

    @post(
        "/contacts/bulk", opt={"permission": "contacts.manage"}, status_code=200, **documented(404)
    )
    async def bulk(
        self, request: Request[Any, Any, Any], data: JSONBody[ContactBulk]
    ) -> ContactBulkOut:
        """One action on the contacts named by `ids`, or on every contact `match` finds;
        an id of a contact the key cannot see refuses the whole action (404)."""
        match = data.match
        selection = bulk.Selection(
            ids=list(data.ids),
            all_matching=match is not None,
            q=match.q if match else "",
            tag=match.tag if match else "",
            list_id=match.list_id if match else None,
        )
        result = await bulk.apply_bulk_action(
            actor=request_actor(request),
            account_id=current_grants(request).account.id,
            request=bulk.BulkRequest(
                action=data.action, selection=selection, tag=data.tag, list_id=data.list_id
            ),
        )
        return ContactBulkOut(result.action, result.selected, result.changed)

    @get("/contacts/{contact_id:int}", opt={"permission": "contacts.view"}, **documented(404))
    async def show(self, request: Request[Any, Any, Any], contact_id: PathId) -> ContactOut:
        account = current_grants(request).account
        return contact_json(await contacts.get_contact(account.id, contact_id))

    @get(
        "/contacts/export",
        opt={"permission": "contacts.export"},
        media_type="text/csv",
        response_description="Every contact of the key's account as CSV (UTF-8).",
        **documented(),
    )
    async def export(self, request: Request[Any, Any, Any]) -> Stream:
        account = current_grants(request).account
        return Stream(
            contacts.export_csv(account.id),
            # Litestar appends the charset to text/* itself; naming it here doubled it.
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="contacts-{account.slug}.csv"'},
        )
