"""Tables of audit: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AuditEvent(Table, tablename="audit_event"):
    id: Serial
    account_id = Integer(index=True)
    actor_user_id = Integer(null=True, default=None)
    actor_api_key_id = Integer(null=True, default=None)
    actor_label = Varchar(length=200, default="system")
    action = Varchar(length=80, index=True)
    target_type = Varchar(length=40, default="")
    target_id = Varchar(length=80, default="")
    before = Text(default="")
    after = Text(default="")
    ip = Varchar(length=64, null=True, default=None)
    at = Timestamptz(default=TimestamptzNow(), index=True)
