"""Health probes: the database answers, and a worker answers a ping through the broker."""

from __future__ import annotations

from datetime import timedelta

from piccolo.querystring import QueryString

from tenants.clock import now
from tenants.db import DB
from tenants.platform.tables import Heartbeat


async def database_ok() -> bool:
    rows = await DB.run_querystring(_select_one())
    return bool(rows)


def _select_one() -> QueryString:
    return QueryString("SELECT 1 AS ok")


async def record_pong(token: str) -> None:
    """Called by the ping actor; old heartbeats are pruned as new ones arrive."""
    await Heartbeat.insert(Heartbeat(token=token))
    await Heartbeat.delete().where(Heartbeat.at < now() - timedelta(hours=1))


async def pong_received(token: str) -> bool:
    return await Heartbeat.exists().where(Heartbeat.token == token)
