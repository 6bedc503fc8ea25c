"""A send whose only recipients are numbers typed in, none of them a phone number, would
reach nobody: it is refused naming `to`, together with every other field it gets wrong,
instead of being accepted as a batch of skipped recipients. A bad number beside a good one
(or beside contacts, lists or tags) is still skipped and listed with its reason."""

from __future__ import annotations

from tenants.accounts.tree import default_region
from tenants.audit import record as audit
from tenants.errors import ValidationFailed
from tenants.messaging.accept import SendRequest, accept_send
from tenants.phones import normalize_phone

SHOWN = 5


async def no_valid_number(req: SendRequest) -> str | None:
    """What is wrong with `to`, when the typed numbers are all there is and none is valid."""
    typed = [n.strip() for n in req.numbers if isinstance(n, str) and n.strip()]
    if not typed or req.contact_ids or req.list_ids or req.tags:
        return None
    region = await default_region(req.account_id)
    if any(normalize_phone(n, region) for n in typed):
        return None
    more = f" and {len(typed) - SHOWN:,} more" if len(typed) > SHOWN else ""
    return (
        f"Not a phone number: {', '.join(typed[:SHOWN])}{more}. "
        "Write numbers like +61412345678 or 0412 345 678."
    )


async def refuse_unreachable(
    req: SendRequest, *, actor: audit.Actor, known: dict[str, str] | None = None
) -> None:
    """Raise ValidationFailed when the send would reach nobody: `to` and, found by a dry
    run that writes nothing, every other field in error at once (`known`: errors the
    caller found already, which win)."""
    problem = await no_valid_number(req)
    if problem is None:
        return
    try:
        await accept_send(req, actor=actor, dry_run=True)
    except ValidationFailed as exc:
        raise ValidationFailed({"to": problem} | exc.errors | (known or {})) from None
    raise ValidationFailed({"to": problem} | (known or {}))
