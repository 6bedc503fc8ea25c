"""POST /api/v1/contacts/bulk: one action on contacts by id or by a search; every bad field
named at once (422), a sibling's id refuses the whole action (404), nothing changed."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.contacts import contacts
from tenants.contacts.tables import Contact, ContactTag


async def _two(world, slug="alpha"):
    return [
        await contacts.create_contact(
            actor=SYSTEM, account_id=world.accounts[slug], phone=f"+6141300000{n}", first_name=n
        )
        for n in ("1", "2")
    ]


async def test_tag_by_ids_then_delete_by_search(client, make_key, world):
    a, b = await _two(world)
    key = await make_key()
    r = await client.post(
        "/api/v1/contacts/bulk", json={"action": "tag", "tag": "VIP", "ids": [a.id]}, headers=key
    )
    assert r.status_code == 200 and r.json() == {"action": "tag", "selected": 1, "changed": 1}
    r = await client.post(
        "/api/v1/contacts/bulk",
        json={"action": "delete", "match": {"tag": "vip"}},
        headers=key,
    )
    assert r.json() == {"action": "delete", "selected": 1, "changed": 1}
    assert [x["id"] for x in await Contact.select(Contact.id)] == [b.id]


async def test_bad_fields_are_named_together_and_nothing_changes(client, make_key, world):
    a, _ = await _two(world)
    key = await make_key()
    r = await client.post(
        "/api/v1/contacts/bulk", json={"action": "paint", "tag": "no!"}, headers=key
    )
    assert r.status_code == 422 and set(r.json()["errors"]) == {"action", "ids"}
    r = await client.post(
        "/api/v1/contacts/bulk", json={"action": "tag", "tag": "no!", "ids": [a.id]}, headers=key
    )
    assert r.status_code == 422 and set(r.json()["errors"]) == {"tag"}
    r = await client.post(
        "/api/v1/contacts/bulk", json={"action": "add_to_list", "ids": [a.id]}, headers=key
    )
    assert r.status_code == 422 and set(r.json()["errors"]) == {"list_id"}
    r = await client.post(
        "/api/v1/contacts/bulk", json={"action": "tag", "tag": "x", "ids": ["x"]}, headers=key
    )
    assert r.status_code == 422 and "ids" in r.json()["errors"]
    assert await ContactTag.count() == 0


async def test_a_sibling_id_or_list_is_404_and_a_viewer_key_403(client, make_key, world):
    a, _ = await _two(world)
    (theirs, _) = await _two(world, slug="beta")
    their_list = await contacts.create_list(
        actor=SYSTEM, account_id=world.accounts["beta"], name="Theirs"
    )
    key = await make_key()
    r = await client.post(
        "/api/v1/contacts/bulk", json={"action": "delete", "ids": [a.id, theirs.id]}, headers=key
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.post(
        "/api/v1/contacts/bulk",
        json={"action": "add_to_list", "list_id": their_list.id, "ids": [a.id]},
        headers=key,
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/contacts/bulk",
        json={"action": "delete", "ids": [a.id]},
        headers=await make_key(role="Viewer"),
    )
    assert r.status_code == 403
    assert await Contact.count() == 4
