"""CSV import into a list: an existing list or a new one named on the import page; every
contact a good row names (new or updated) lands in it; a bad choice is 422 naming the
field and writes nothing; without JavaScript the form posts and the page comes back."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.contacts import contacts
from tenants.contacts.tables import Contact, ContactList
from tests.conftest import login
from tests.factories import HX
from tests.pages.test_contacts_pages import _upload

FILE = "phone,first\n0412000001,Ann\n0412000002,Bob\nnope,Cy\n"
MAPPING = {"col_0": "phone", "col_1": "first_name", "mode": "good_rows", "step": "import"}


async def _members(account_id: int, list_id: int) -> list[str]:
    found, _ = await contacts.search_contacts(account_id, list_id=list_id)
    return sorted(c.phone for c in found)


async def test_import_into_an_existing_list_includes_updated_contacts(client, world):
    alpha = world.accounts["alpha"]
    await contacts.create_contact(actor=SYSTEM, account_id=alpha, phone="+61412000001")
    other = await contacts.create_contact(actor=SYSTEM, account_id=alpha, phone="+61412000009")
    lst = await contacts.create_list(actor=SYSTEM, account_id=alpha, name="Spring")
    token = await login(client, world.users["Sender"])
    location = await _upload(client, token, FILE)
    page = await client.get(location)
    assert f'<option value="{lst.id}"' in page.text and 'name="new_list"' in page.text
    r = await client.post(
        location, data={"_csrf_token": token, **MAPPING, "list_id": str(lst.id)}, headers=HX
    )
    assert r.status_code == 200 and "1 new, 1 updated" in r.text
    assert "Every imported contact is in the list Spring." in r.text
    assert await _members(alpha, lst.id) == ["+61412000001", "+61412000002"]
    assert other.id not in [
        c.id for c in (await contacts.search_contacts(alpha, list_id=lst.id))[0]
    ]


async def test_import_into_a_new_list_without_javascript(client, world):
    alpha = world.accounts["alpha"]
    token = await login(client, world.users["Sender"])
    location = await _upload(client, token, FILE)
    r = await client.post(
        location, data={"_csrf_token": token, **MAPPING, "list_id": "new", "new_list": "Walk-ins"}
    )
    assert r.status_code == 200 and "<html" in r.text and "in the list Walk-ins" in r.text
    made = await ContactList.select().where(ContactList.account_id == alpha).first()
    assert made["name"] == "Walk-ins"
    assert await _members(alpha, made["id"]) == ["+61412000001", "+61412000002"]


async def test_a_bad_list_choice_is_422_naming_the_field_and_imports_nothing(client, world):
    alpha = world.accounts["alpha"]
    theirs = await contacts.create_list(actor=SYSTEM, account_id=world.accounts["beta"], name="B")
    await contacts.create_list(actor=SYSTEM, account_id=alpha, name="Taken")
    token = await login(client, world.users["Sender"])
    location = await _upload(client, token, FILE)
    for choice, field in (
        ({"list_id": str(theirs.id)}, "into-list-error"),
        ({"list_id": "abc"}, "into-list-error"),
        ({"list_id": "new", "new_list": ""}, "into-new-error"),
        ({"list_id": "new", "new_list": "taken"}, "into-new-error"),
    ):
        r = await client.post(location, data={"_csrf_token": token, **MAPPING, **choice})
        assert r.status_code == 422 and f'id="{field}"' in r.text, choice
    assert await Contact.count().where(Contact.account_id == alpha) == 0
    assert await ContactList.count().where(ContactList.account_id == alpha) == 1
    # The file is still there to import once the choice is right.
    r = await client.post(location, data={"_csrf_token": token, **MAPPING}, headers=HX)
    assert "2 new, 0 updated" in r.text
