"""Tables of contacts: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Contact(Table, tablename="contact"):
    id: Serial
    account_id = Integer(index=True)
    phone = Varchar(length=20, index=True)
    # "account|phone": one contact per number in an account (no composite unique in Piccolo).
    account_phone = Varchar(length=40, unique=True)
    first_name = Varchar(length=100, default="")
    last_name = Varchar(length=100, default="")
    email = Varchar(length=254, default="")
    fields = Text(default="{}")  # JSON object of custom fields, name -> string
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ContactTag(Table, tablename="contact_tag"):
    id: Serial
    account_id = Integer(index=True)
    contact_id = Integer(index=True)
    tag = Varchar(length=40, index=True)


class ContactList(Table, tablename="contact_list"):
    id: Serial
    account_id = Integer(index=True)
    name = Varchar(length=80)
    created_at = Timestamptz(default=TimestamptzNow())


class ContactListMember(Table, tablename="contact_list_member"):
    id: Serial
    list_id = Integer(index=True)
    contact_id = Integer(index=True)
    key = Varchar(length=40, unique=True)  # "list|contact"


class ContactImport(Table, tablename="contact_import"):
    """An uploaded CSV file kept on disk until it is imported or discarded."""

    id: Serial
    account_id = Integer(index=True)
    user_id = Integer(null=True, default=None)
    filename = Varchar(length=200, default="")
    stored_path = Varchar(length=500, default="")
    status = Varchar(length=16, default="uploaded")
    headers = Text(default="[]")
    mapping = Text(default="{}")
    total_rows = Integer(default=0)
    good_rows = Integer(default=0)
    error_rows = Integer(default=0)
    errors = Text(default="[]")
    imported = Integer(default=0)
    opt_outs = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
