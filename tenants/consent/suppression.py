"""Global suppression: numbers the platform operator blocks for every account."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenants.accounts.tables import Account
from tenants.audit import record as audit
from tenants.consent.events import MAX_NOTE
from tenants.consent.tables import (
    GlobalSuppression,
)
from tenants.db import first_or_404, transaction, view_of
from tenants.errors import ValidationFailed
from tenants.phones import normalize_phone


@dataclass(frozen=True)
class SuppressionView:
    id: int
    phone: str
    reason: str
    added_by_user_id: int | None
    created_at: datetime


async def add_global_suppression(*, actor: audit.Actor, phone: str, reason: str) -> SuppressionView:
    """Suppress a number platform-wide (operator only; the caller checks the power)."""
    e164 = normalize_phone(phone, "ZZ") if phone.strip().startswith(("+", "00")) else None
    errors: dict[str, str] = {}
    if e164 is None:
        errors["phone"] = "Enter the number in international form, e.g. +61412345678."
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = "Say why the number is suppressed."
    elif len(reason) > MAX_NOTE:
        errors["reason"] = f"A reason is at most {MAX_NOTE} characters."
    if errors:
        raise ValidationFailed(errors)
    assert e164 is not None
    async with transaction():
        if await GlobalSuppression.exists().where(GlobalSuppression.phone == e164):
            raise ValidationFailed({"phone": f"{e164} is already suppressed."})
        rows = await GlobalSuppression.insert(
            GlobalSuppression(phone=e164, reason=reason, added_by_user_id=actor.user_id)
        ).returning(*GlobalSuppression.all_columns())
        await audit.record(
            actor,
            account_id=await _platform_account_id(actor),
            action="suppression.add",
            target_type="global_suppression",
            target_id=rows[0]["id"],
            after={"phone": e164, "reason": reason},
        )
    return _suppression_view(rows[0])


async def remove_global_suppression(*, actor: audit.Actor, suppression_id: int) -> None:
    async with transaction():
        row = await first_or_404(
            GlobalSuppression.select().where(GlobalSuppression.id == suppression_id),
            "suppression not found",
        )
        await GlobalSuppression.delete().where(GlobalSuppression.id == suppression_id)
        await audit.record(
            actor,
            account_id=await _platform_account_id(actor),
            action="suppression.remove",
            target_type="global_suppression",
            target_id=suppression_id,
            before={"phone": row["phone"], "reason": row["reason"]},
        )


async def list_global_suppressions(
    *, search: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[SuppressionView], int]:
    query = GlobalSuppression.select()
    count = GlobalSuppression.count()
    digits = re.sub(r"[^0-9]", "", search or "")
    if digits:
        query = query.where(GlobalSuppression.phone.like(f"%{digits}%"))
        count = count.where(GlobalSuppression.phone.like(f"%{digits}%"))
    rows = await query.order_by(GlobalSuppression.id, ascending=False).offset(offset).limit(limit)
    return [_suppression_view(r) for r in rows], await count


def _suppression_view(r: dict[str, Any]) -> SuppressionView:
    return view_of(
        SuppressionView,
        r,
    )


async def _platform_account_id(actor: audit.Actor) -> int:
    row = await Account.select(Account.id).where(Account.kind == "platform").first()
    return row["id"] if row else 0
