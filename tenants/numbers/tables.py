"""Tables of numbers: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants.accounts.tables import Account


class PhoneNumber(Table, tablename="phone_number"):
    id: Serial
    # E.164 for long codes; the bare digits for short codes (they have no country prefix).
    number = Varchar(length=20, unique=True, index=True)
    kind = Varchar(length=16, default="long_code")
    owner = ForeignKey(Account, index=True)
    assigned_to = ForeignKey(Account, null=True, default=None, index=True)
    label = Varchar(length=120, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class SenderId(Table, tablename="sender_id"):
    id: Serial
    account = ForeignKey(Account, index=True)
    value = Varchar(length=16)
    # "<account id>:<value lower-cased>": one registration per account and value, enforced
    # by the database (Piccolo has no composite unique constraint).
    unique_key = Varchar(length=40, unique=True)
    kind = Varchar(length=16, default="alphanumeric")
    status = Varchar(length=16, default="pending", index=True)
    note = Text(default="")
    requested_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)


MAX_WORD = 20


class Keyword(Table, tablename="keyword"):
    id: Serial
    number = ForeignKey(PhoneNumber, index=True)
    word = Varchar(length=MAX_WORD)
    # "<number id>:<WORD>": one keyword per number whatever its case, enforced by the
    # database so two concurrent claims cannot both win.
    unique_key = Varchar(length=40, unique=True)
    account = ForeignKey(Account, index=True)
    claimed_by = ForeignKey(Account, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class KeywordAction(Table, tablename="keyword_action"):
    id: Serial
    keyword = ForeignKey(Keyword, index=True)
    kind = Varchar(length=24)
    reply_text = Text(default="")
    list_id = Integer(null=True, default=None)
    position = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
