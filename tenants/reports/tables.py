"""Tables of reports: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import BigInt, Date, Integer, Serial, Varchar
from piccolo.table import Table


class UsageRollup(Table, tablename="usage_rollup"):
    """Outbound messages, their segments and credits per (account, day in the account's
    time zone, channel, status), moved from the old status to the new one in the same
    transaction as each change, so the figures are exact without scanning messages."""

    id: Serial
    # "<account>|<YYYY-MM-DD>|<channel>|<status>": the upsert target of every change.
    key = Varchar(length=80, unique=True)
    account_id = Integer(index=True)
    day = Date(index=True)
    channel = Varchar(length=16, default="sms")
    status = Varchar(length=20)
    messages = BigInt(default=0)
    segments = BigInt(default=0)
    credits = BigInt(default=0)


class UsageRouteRollup(Table, tablename="usage_route_rollup"):
    """The same figures as usage_rollup, split further by the recipient's country (ISO
    code of the number) and the sender (the From number or sender ID on the message):
    moved by the same status changes in the same transaction, read only when a report
    groups by country or sender (the usage_rollup rows stay few for the other reports)."""

    id: Serial
    # "<account>|<YYYY-MM-DD>|<channel>|<status>|<country>|<sender>": the upsert target.
    key = Varchar(length=120, unique=True)
    account_id = Integer()
    day = Date()
    channel = Varchar(length=16, default="sms")
    status = Varchar(length=20)
    country = Varchar(length=2, default="")
    sender = Varchar(length=20, default="")
    messages = BigInt(default=0)
    segments = BigInt(default=0)
    credits = BigInt(default=0)


class UsageRouteDaily(Table, tablename="usage_route_daily"):
    """usage_route_rollup's figures summed over channel and status: per (account, day in
    the account's time zone, recipient's country, sender), so a status change moves
    nothing here (only an accept adds, as in usage_daily). The reports by country or
    sender read these rows, a quarter of usage_route_rollup's, unless they also group by
    channel or status."""

    id: Serial
    # "<account>|<YYYY-MM-DD>|<country>|<sender>": the upsert target of every accept.
    key = Varchar(length=120, unique=True)
    account_id = Integer()
    day = Date()
    country = Varchar(length=2, default="")
    sender = Varchar(length=20, default="")
    messages = BigInt(default=0)
    segments = BigInt(default=0)
    credits = BigInt(default=0)


class UsageDaily(Table, tablename="usage_daily"):
    """Outbound messages, their segments and credits per (account, day in the account's
    time zone), whatever their status: the granularity the reports by account and by day
    read (a status change moves nothing here; only an accept adds)."""

    id: Serial
    # "<account>|<YYYY-MM-DD>": the upsert target of every accept.
    key = Varchar(length=40, unique=True)
    account_id = Integer()
    day = Date()
    messages = BigInt(default=0)
    segments = BigInt(default=0)
    credits = BigInt(default=0)
