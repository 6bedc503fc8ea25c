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
