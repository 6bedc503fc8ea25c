"""Audit log: who changed what in which account, before and after, written in the
same transaction as the change itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


@dataclass(frozen=True)
class Actor:
    """The person or key behind a change; `system` for workers and the CLI."""

    user_id: int | None = None
    api_key_id: int | None = None
    label: str = "system"
    ip: str | None = None


SYSTEM = Actor()


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


def _dump(value: dict[str, Any] | None) -> str:
    return json.dumps(value, sort_keys=True, default=str) if value else ""


async def record(
    actor: Actor,
    *,
    account_id: int,
    action: str,
    target_type: str = "",
    target_id: int | str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one audit row; call inside the transaction that makes the change."""
    await AuditEvent.insert(
        AuditEvent(
            account_id=account_id,
            actor_user_id=actor.user_id,
            actor_api_key_id=actor.api_key_id,
            actor_label=actor.label,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            before=_dump(before),
            after=_dump(after),
            ip=actor.ip,
        )
    )
