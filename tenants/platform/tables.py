"""Tables of platform: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Heartbeat(Table, tablename="heartbeat"):
    id: Serial
    token = Varchar(length=64, unique=True, index=True)
    at = Timestamptz(default=TimestamptzNow())
