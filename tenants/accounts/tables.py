"""Tables of accounts: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import (
    ForeignKey,
    Integer,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Account(Table, tablename="account"):
    id: Serial
    name = Varchar(length=120)
    slug = Varchar(length=40, unique=True, index=True)
    kind = Varchar(length=16, default="sub")
    parent: ForeignKey = ForeignKey("self", null=True, default=None)
    path = Varchar(length=512, default="", index=True)
    depth = Integer(default=0)
    status = Varchar(length=16, default="active")
    consent_mode = Varchar(length=16, default="inherit")
    balance = Integer(default=0)
    timezone = Varchar(length=64, default="UTC")
    default_region = Varchar(length=2, default="AU")
    created_at = Timestamptz(default=TimestamptzNow())
