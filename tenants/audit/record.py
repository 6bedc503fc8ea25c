"""Audit log: who changed what in which account, before and after, written in the
same transaction as the change itself."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tenants.audit.tables import AuditEvent
from tenants.db import contains_text, view_of


@dataclass(frozen=True)
class Actor:
    """The person or key behind a change; `system` for workers and the CLI."""

    user_id: int | None = None
    api_key_id: int | None = None
    label: str = "system"
    ip: str | None = None


SYSTEM = Actor()


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
    await record_many(
        actor,
        [
            Entry(
                account_id=account_id,
                action=action,
                target_type=target_type,
                target_id=target_id,
                before=before,
                after=after,
            )
        ],
    )


@dataclass(frozen=True)
class Entry:
    """One audit row of record_many (the arguments of record)."""

    account_id: int
    action: str
    target_type: str = ""
    target_id: int | str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


async def record_many(actor: Actor, entries: Sequence[Entry]) -> None:
    """Append several audit rows by one actor in one statement (a group of changes made
    together, such as the contacts an inbound group's keyword created)."""
    if not entries:
        return
    await AuditEvent.insert(
        *[
            AuditEvent(
                account_id=e.account_id,
                actor_user_id=actor.user_id,
                actor_api_key_id=actor.api_key_id,
                actor_label=actor.label,
                action=e.action,
                target_type=e.target_type,
                target_id=str(e.target_id),
                before=_dump(e.before),
                after=_dump(e.after),
                ip=actor.ip,
            )
            for e in entries
        ]
    )


@dataclass(frozen=True)
class AuditView:
    id: int
    account_id: int
    account_name: str
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any]
    after: dict[str, Any]
    ip: str | None
    at: datetime

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for every field either side mentions."""
        keys = sorted(set(self.before) | set(self.after))
        return [(k, self.before.get(k), self.after.get(k)) for k in keys]


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""  # exact action, or a prefix ending in "." ("team.")
    actor: str = ""  # part of the actor's label (email or key name)
    since: date | None = None
    until: date | None = None  # inclusive
    before_id: int | None = None  # paging: rows older than this id


def _load(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"value": text}
    return value if isinstance(value, dict) else {"value": value}


async def list_events(
    accounts: dict[int, str], filters: AuditFilter, *, limit: int = 50
) -> list[AuditView]:
    """Events of the given accounts (id -> name; the caller's permitted subtree), newest
    first."""
    if not accounts:
        return []
    query = AuditEvent.select().where(AuditEvent.account_id.is_in(list(accounts)))
    if filters.action:
        if filters.action.endswith("."):
            query = query.where(AuditEvent.action.like(filters.action + "%"))
        else:
            query = query.where(AuditEvent.action == filters.action)
    if filters.actor:
        query = query.where(
            # A typed % or _ only widens the match, within rows the caller may read anyway.
            contains_text(AuditEvent.actor_label, filters.actor.strip())
        )
    if filters.since:
        query = query.where(AuditEvent.at >= datetime.combine(filters.since, time.min, UTC))
    if filters.until:
        query = query.where(
            AuditEvent.at < datetime.combine(filters.until + timedelta(days=1), time.min, UTC)
        )
    if filters.before_id:
        query = query.where(AuditEvent.id < filters.before_id)
    rows = await query.order_by(AuditEvent.id, ascending=False).limit(limit)
    return [
        view_of(
            AuditView,
            r,
            account_name=accounts.get(r["account_id"], str(r["account_id"])),
            actor=r["actor_label"],
            before=_load(r["before"]),
            after=_load(r["after"]),
        )
        for r in rows
    ]


async def known_actions(account_ids: list[int]) -> list[str]:
    if not account_ids:
        return []
    rows = (
        await AuditEvent.select(AuditEvent.action)
        .where(AuditEvent.account_id.is_in(account_ids))
        .distinct()
        .order_by(AuditEvent.action)
    )
    return [r["action"] for r in rows]
