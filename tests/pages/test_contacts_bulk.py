"""Bulk actions on the contacts list: ticked rows or all matching the search, tag, untag,
add to and remove from a list, delete after a confirmation; JS off (post, redirect with a
notice) and htmx (the list swapped); refused by role, for a sibling's ids, for bad input,
always without a change."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.contacts.tables import Contact, ContactListMember, ContactTag
from tests.conftest import login
from tests.factories import HX


async def _people(world, slug="alpha", count=3, first="Ann", start=0):
    made = []
    for n in range(count):
        made.append(
            await contacts.create_contact(
                actor=SYSTEM,
                account_id=world.accounts[slug],
                phone=f"+6141200{start + n:04d}",
                first_name=f"{first}{n}",
                tags=["old"],
            )
        )
    return made


async def _tags(contact_id: int) -> list[str]:
    rows = await ContactTag.select(ContactTag.tag).where(ContactTag.contact_id == contact_id)
    return sorted(r["tag"] for r in rows)


async def test_tag_ticked_rows_without_javascript_redirects_with_a_notice(client, world):
    a, b, c = await _people(world)
    token = await login(client, world.users["Sender"])
    page = await client.get("/contacts")
    assert f'name="ids" value="{a.id}"' in page.text and 'id="bulk-all"' in page.text
    r = await client.post(
        "/contacts/bulk",
        data={"_csrf_token": token, "action": "tag", "tag": "VIP", "ids": [a.id, b.id]},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "done=tag" in r.headers["location"]
    back = await client.get(r.headers["location"])
    assert "2 contacts tagged." in back.text
    assert await _tags(a.id) == ["old", "vip"] and await _tags(c.id) == ["old"]
    event = await AuditEvent.select().where(AuditEvent.action == "contact.bulk_tag").first()
    assert event is not None and str(a.id) in event["after"] and "Ann" not in event["after"]


async def test_add_to_list_with_htmx_swaps_the_list_and_counts_only_new_members(client, world):
    a, b, _ = await _people(world)
    lst = await contacts.create_list(actor=SYSTEM, account_id=world.accounts["alpha"], name="VIP")
    await contacts.add_to_list(
        actor=SYSTEM, account_id=world.accounts["alpha"], list_id=lst.id, contact_ids=[a.id]
    )
    token = await login(client, world.users["Sender"])
    r = await client.post(
        "/contacts/bulk",
        data={
            "_csrf_token": token,
            "action": "add_to_list",
            "list_id": lst.id,
            "ids": [a.id, b.id],
        },
        headers=HX,
    )
    assert r.status_code == 200 and "<html" not in r.text
    assert "1 contact added to the list." in r.text and 'id="bulk-form"' in r.text
    assert sorted(await contacts.lists_of(b.id)) == [lst.id]
    r = await client.post(
        "/contacts/bulk",
        data={
            "_csrf_token": token,
            "action": "remove_from_list",
            "list_id": lst.id,
            "ids": [a.id, b.id],
        },
        headers=HX,
    )
    assert "2 contacts removed from the list." in r.text
    assert await ContactListMember.count().where(ContactListMember.list_id == lst.id) == 0


async def test_all_matching_the_search_acts_on_every_match_and_only_those(client, world):
    anns = await _people(world, count=3, first="Ann")
    bobs = await _people(world, count=2, first="Bob", start=10)
    token = await login(client, world.users["Sender"])
    page = await client.get("/contacts?q=Ann")
    assert "Select all 3 matching this search" in page.text
    r = await client.post(
        "/contacts/bulk",
        data={
            "_csrf_token": token,
            "action": "untag",
            "tag": "old",
            "all_matching": "1",
            "match_q": "Ann",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and "q=Ann" in r.headers["location"]
    assert all([await _tags(c.id) == [] for c in anns])
    assert all([await _tags(c.id) == ["old"] for c in bobs])
    # A tag nobody carries matches nobody (it used to be a 500).
    page = await client.get("/contacts?tag=nobody")
    assert page.status_code == 200 and "0 contacts" in page.text


async def test_delete_asks_first_then_keeps_the_numbers_consent(client, world):
    a, b, c = await _people(world)
    alpha = world.accounts["alpha"]
    await consent_events.record_opt_out(alpha, a.phone, "sms", source="manual")
    token = await login(client, world.users["Sender"])
    form = {"_csrf_token": token, "action": "delete", "ids": [a.id, b.id]}
    ask = await client.post("/contacts/bulk", data=form)
    assert ask.status_code == 200 and "Delete 2 contacts?" in ask.text
    assert 'name="confirm" value="yes"' in ask.text
    assert await Contact.count().where(Contact.account_id == alpha) == 3
    r = await client.post("/contacts/bulk", data=form | {"confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert "2 contacts deleted." in (await client.get(r.headers["location"])).text
    left = await Contact.select(Contact.id).where(Contact.account_id == alpha)
    assert [x["id"] for x in left] == [c.id]
    assert await ContactTag.count().where(ContactTag.contact_id == a.id) == 0
    assert (await consent_events.explain(alpha, a.phone, "sms")).status == "opted_out"


async def test_a_role_without_contacts_manage_is_refused_and_nothing_changes(client, world):
    a, _, _ = await _people(world)
    token = await login(client, world.users["Support"])
    page = await client.get("/contacts")
    assert 'name="ids"' not in page.text
    r = await client.post(
        "/contacts/bulk",
        data={"_csrf_token": token, "action": "delete", "ids": [a.id], "confirm": "yes"},
    )
    assert r.status_code == 403
    assert await Contact.count().where(Contact.id == a.id) == 1


async def test_a_sibling_contact_id_refuses_the_whole_action(client, world):
    mine, _, _ = await _people(world)
    theirs = (await _people(world, slug="beta", count=1))[0]
    token = await login(client, world.users["Sender"])
    for action in ("tag", "delete"):
        r = await client.post(
            "/contacts/bulk",
            data={
                "_csrf_token": token,
                "action": action,
                "tag": "x",
                "confirm": "yes",
                "ids": [mine.id, theirs.id],
            },
        )
        assert r.status_code == 404
    assert await _tags(mine.id) == ["old"] and await _tags(theirs.id) == ["old"]
    assert await Contact.count().where(Contact.id.is_in([mine.id, theirs.id])) == 2


async def test_bad_input_is_422_naming_each_field_and_changes_nothing(client, world):
    a, _, _ = await _people(world)
    token = await login(client, world.users["Sender"])
    r = await client.post("/contacts/bulk", data={"_csrf_token": token, "action": "explode"})
    assert r.status_code == 422
    assert 'id="bulk-action-error"' in r.text and 'id="bulk-ids-error"' in r.text
    assert "<html" in r.text  # JS off: the whole page, the form kept with its errors
    r = await client.post(
        "/contacts/bulk",
        data={"_csrf_token": token, "action": "tag", "tag": "no!", "ids": [a.id]},
        headers=HX,
    )
    assert r.status_code == 422 and 'id="bulk-tag-error"' in r.text and "<html" not in r.text
    assert f'value="{a.id}" id="select-{a.id}" aria-label="Select Ann0" checked' in r.text
    r = await client.post(
        "/contacts/bulk",
        data={"_csrf_token": token, "action": "add_to_list", "list_id": "abc", "ids": ["x"]},
    )
    assert r.status_code == 422 and 'id="bulk-list_id-error"' in r.text
    assert 'id="bulk-ids-error"' in r.text
    # A filter list id no row can have (beyond the id range) is a field error, not a 500.
    r = await client.post(
        "/contacts/bulk",
        data={
            "_csrf_token": token, "action": "delete", "all_matching": "1",
            "match_list_id": "99999999999999999999",
        },
    )  # fmt: skip
    assert r.status_code == 422 and 'id="bulk-match_list_id-error"' in r.text
    r = await client.get("/contacts?list_id=99999999999999999999")
    assert r.status_code == 200
    assert await _tags(a.id) == ["old"]
    assert await AuditEvent.count().where(AuditEvent.action.like("contact.bulk_%")) == 0
