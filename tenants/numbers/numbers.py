"""Numbers (long codes, short codes) and sender IDs: who owns them, who holds them, who may
send from them.

A number is owned by a master (the platform operator adds it) and is *held* by the account
it is assigned to, or by its owner while unassigned. The holder and every account below it
may send from it, so a number held by a master is shared by its whole tree. Sender IDs
(alphanumeric or numeric) are registered for one account and usable by that account once the
operator approves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers

from tenants.accounts.tree import AccountView, get_account, get_in_subtree
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import first_or_404, shared_read, transaction, view_of
from tenants.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tenants.numbers.tables import Keyword, KeywordAction, PhoneNumber, SenderId
from tenants.phones import sender_kind, sender_problem

NUMBER_KINDS: dict[str, str] = {"long_code": "Long code", "short_code": "Short code"}
SENDER_ID_KINDS: dict[str, str] = {"alphanumeric": "Alphanumeric", "numeric": "Numeric"}
SENDER_ID_STATUSES = ("pending", "approved", "rejected")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")


@dataclass(frozen=True)
class NumberView:
    id: int
    number: str
    kind: str
    owner_id: int
    owner_name: str
    assigned_id: int | None
    assigned_name: str | None
    label: str

    @property
    def holder_id(self) -> int:
        """The account whose tree may send from the number and receives its inbound."""
        return self.assigned_id if self.assigned_id is not None else self.owner_id

    @property
    def holder_name(self) -> str:
        if self.assigned_id is not None and self.assigned_name is not None:
            return self.assigned_name
        return self.owner_name

    @property
    def kind_label(self) -> str:
        return NUMBER_KINDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class SenderIdView:
    id: int
    account_id: int
    account_name: str
    value: str
    kind: str
    status: str
    note: str


@dataclass(frozen=True)
class SenderView:
    """Something an account may put in the `from` of a message."""

    kind: str  # long_code | short_code | alphanumeric | numeric
    value: str
    label: str
    number_id: int | None = None
    sender_id_id: int | None = None
    held: bool = True  # the account's own, not inherited from an account above

    @property
    def is_number(self) -> bool:
        """Numbers can receive replies; sender IDs cannot."""
        return self.number_id is not None


_NUMBER_COLUMNS = (
    PhoneNumber.id,
    PhoneNumber.number,
    PhoneNumber.kind,
    PhoneNumber.owner,
    PhoneNumber.owner.name,
    PhoneNumber.assigned_to,
    PhoneNumber.assigned_to.name,
    PhoneNumber.label,
)


def _number_view(row: dict[str, Any]) -> NumberView:
    return view_of(
        NumberView,
        row,
        owner_id=row["owner"],
        owner_name=row["owner.name"],
        assigned_id=row["assigned_to"],
        assigned_name=row["assigned_to.name"],
    )


_SENDER_ID_COLUMNS = (
    SenderId.id,
    SenderId.account,
    SenderId.account.name,
    SenderId.value,
    SenderId.kind,
    SenderId.status,
    SenderId.note,
)


def _sender_id_view(row: dict[str, Any]) -> SenderIdView:
    return view_of(
        SenderIdView,
        row,
        account_id=row["account"],
        account_name=row["account.name"],
    )


# ---------------------------------------------------------------- validation


def normalize_number(raw: str, kind: str) -> str:
    """The stored form of a number, or ValidationFailed naming `number` or `kind`."""
    if kind not in NUMBER_KINDS:
        raise ValidationFailed({"kind": "Choose a long code or a short code."})
    text = re.sub(r"[\s\-().]", "", raw or "")
    if not text:
        raise ValidationFailed({"number": "Number is required."})
    if kind == "short_code":
        if not _SHORT_CODE.match(text):
            raise ValidationFailed({"number": "A short code is 3 to 8 digits."})
        return text
    if not text.startswith("+"):
        raise ValidationFailed(
            {"number": "Write a long code in international form, e.g. +61480000000."}
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed({"number": f"{raw.strip()} is not a valid phone number."})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def classify_sender_id(raw: str) -> tuple[str, str]:
    """(kind, value) of a sender ID, or ValidationFailed naming `value`."""
    value = (raw or "").strip()
    if problem := sender_problem(value):
        raise ValidationFailed({"value": problem})
    return sender_kind(value), value


# ---------------------------------------------------------------- numbers: reading


async def get_number(number_id: int) -> NumberView:
    row = await first_or_404(
        PhoneNumber.select(*_NUMBER_COLUMNS).where(PhoneNumber.id == number_id),
        f"number {number_id} not found",
    )
    return _number_view(row)


async def find_number(value: str) -> NumberView | None:
    """The number an inbound message was sent to, matched on its stored form."""
    text = re.sub(r"[\s\-().]", "", value or "")
    if not text:
        return None
    candidates = {text}
    if text.isdigit() and len(text) > 8:
        candidates.add("+" + text)  # providers often drop the + of E.164
    wanted = sorted(candidates)

    async def load() -> NumberView | None:
        row = (
            await PhoneNumber.select(*_NUMBER_COLUMNS)
            .where(PhoneNumber.number.is_in(wanted))
            .first()
        )
        return _number_view(row) if row else None

    # Kept across an inbound group's blocks while cache_version stands (phone_number and
    # the account tree are watched).
    return await shared_read(("number", *wanted), load, settled=True)


def may_manage_number(number: NumberView, account: AccountView) -> bool:
    """The owning master (and the operator) assign, reclaim and hand keywords down."""
    return account.kind == "platform" or number.owner_id == account.id


def may_use_number(number: NumberView, account: AccountView) -> bool:
    """The holder and its whole subtree may send from the number and claim keywords on it."""
    return number.holder_id in account.ancestor_ids


async def numbers_for(account_id: int) -> list[NumberView]:
    """Numbers the account manages (owner at or above it) or may use, by number.

    Owners are masters, so every number that concerns an account is owned by its root
    (the operator's platform account sees them all).
    """
    account = await get_account(account_id)
    query = PhoneNumber.select(*_NUMBER_COLUMNS).order_by(PhoneNumber.number)
    if account.kind == "platform":
        rows = await query
    else:
        rows = await query.where(PhoneNumber.owner == account.ancestor_ids[0])
    views = [_number_view(r) for r in rows]
    return [n for n in views if may_manage_number(n, account) or may_use_number(n, account)]


async def get_visible_number(account_id: int, number_id: int) -> NumberView:
    """A number the account manages or uses; any other is NotFound (no leak)."""
    account = await get_account(account_id)
    try:
        number = await get_number(number_id)
    except NotFound:
        raise NotFound(f"number {number_id} not found") from None
    if may_manage_number(number, account) or may_use_number(number, account):
        return number
    raise NotFound(f"number {number_id} not found")


# ---------------------------------------------------------------- numbers: changes


async def _number_owner(account_id: int) -> tuple[AccountView | None, str]:
    """The master a number is added to, or what is wrong with the choice."""
    try:
        account = await get_account(account_id)
    except NotFound:
        return None, "Choose a master account."
    if account.kind != "master":
        return None, "Numbers are added to master accounts."
    return account, ""


async def add_number(
    *, actor: audit.Actor, owner_account_id: int, number: str, kind: str, label: str = ""
) -> NumberView:
    """The platform operator adds a number to a master (the caller checks the power)."""
    errors: dict[str, str] = {}
    try:
        value = normalize_number(number, kind)
    except ValidationFailed as exc:
        errors, value = exc.errors, ""
    label = (label or "").strip()
    if len(label) > 120:
        errors["label"] = "Label must be at most 120 characters."
    async with transaction():
        owner, problem = await _number_owner(owner_account_id)
        if problem:
            errors["owner_id"] = problem
        if errors or owner is None:  # every bad field at once
            raise ValidationFailed(errors)
        if await PhoneNumber.exists().where(PhoneNumber.number == value):
            raise ValidationFailed({"number": f"{value} is already on the platform."})
        rows = await PhoneNumber.insert(
            PhoneNumber(number=value, kind=kind, owner=owner.id, label=label)
        ).returning(PhoneNumber.id)
        number_id = rows[0]["id"]
        await audit.record(
            actor,
            account_id=owner.id,
            action="number.add",
            target_type="number",
            target_id=number_id,
            after={"number": value, "kind": kind, "owner_id": owner.id, "label": label},
        )
        return await get_number(number_id)


async def assign_number(
    *, actor: audit.Actor, within_account_id: int, number_id: int, to_account_id: int
) -> NumberView:
    """Hand a number to an account in its owner's subtree; to the owner itself = take back."""
    async with transaction():
        number = await get_visible_number(within_account_id, number_id)
        within = await get_account(within_account_id)
        if not may_manage_number(number, within):
            raise PermissionDenied("only the master that owns the number assigns it")
        target = await get_in_subtree(number.owner_id, to_account_id)
        assigned = None if target.id == number.owner_id else target.id
        if assigned != number.assigned_id:
            await PhoneNumber.update({PhoneNumber.assigned_to: assigned}).where(
                PhoneNumber.id == number.id
            )
            released = await _release_keywords_outside(number.id, target)
            await audit.record(
                actor,
                account_id=number.owner_id,
                action="number.assign" if assigned else "number.reclaim",
                target_type="number",
                target_id=number.id,
                before={"assigned_to": number.assigned_id},
                after={"assigned_to": assigned, "released_keywords": released},
            )
        return await get_number(number.id)


async def _release_keywords_outside(number_id: int, holder: AccountView) -> list[str]:
    """Keywords whose owner can no longer send from the number go with the number's move."""
    rows = await Keyword.select(Keyword.id, Keyword.word, Keyword.account.path).where(
        Keyword.number == number_id
    )
    gone = [r for r in rows if not r["account.path"].startswith(holder.path)]
    if gone:
        ids = [r["id"] for r in gone]
        await KeywordAction.delete().where(KeywordAction.keyword.is_in(ids))
        await Keyword.delete().where(Keyword.id.is_in(ids))
    return sorted(r["word"] for r in gone)


async def reclaim_number(
    *, actor: audit.Actor, within_account_id: int, number_id: int
) -> NumberView:
    """Take a number back to its owner."""
    number = await get_visible_number(within_account_id, number_id)
    return await assign_number(
        actor=actor,
        within_account_id=within_account_id,
        number_id=number_id,
        to_account_id=number.owner_id,
    )


async def remove_number(*, actor: audit.Actor, number_id: int) -> None:
    """The operator takes a number off the platform, with its keywords."""
    async with transaction():
        number = await get_number(number_id)
        keyword_ids = [
            r["id"] for r in await Keyword.select(Keyword.id).where(Keyword.number == number.id)
        ]
        if keyword_ids:
            await KeywordAction.delete().where(KeywordAction.keyword.is_in(keyword_ids))
            await Keyword.delete().where(Keyword.id.is_in(keyword_ids))
        await PhoneNumber.delete().where(PhoneNumber.id == number.id)
        await audit.record(
            actor,
            account_id=number.owner_id,
            action="number.remove",
            target_type="number",
            target_id=number.id,
            before={"number": number.number, "keywords": len(keyword_ids)},
        )


# ---------------------------------------------------------------- sender IDs


async def get_sender_id(sender_id_id: int) -> SenderIdView:
    row = await first_or_404(
        SenderId.select(*_SENDER_ID_COLUMNS).where(SenderId.id == sender_id_id),
        f"sender ID {sender_id_id} not found",
    )
    return _sender_id_view(row)


async def sender_ids_in_subtree(account_id: int) -> list[SenderIdView]:
    """Sender IDs registered for the account and its descendants."""
    account = await get_account(account_id)
    rows = (
        await SenderId.select(*_SENDER_ID_COLUMNS)
        .where(SenderId.account.path.like(account.path + "%"))
        .order_by(SenderId.account.name)
        .order_by(SenderId.value)
    )
    return [_sender_id_view(r) for r in rows]


async def sender_ids_with_status(status: str) -> list[SenderIdView]:
    """Every sender ID in a state (the operator's review queue)."""
    rows = (
        await SenderId.select(*_SENDER_ID_COLUMNS)
        .where(SenderId.status == status)
        .order_by(SenderId.requested_at)
    )
    return [_sender_id_view(r) for r in rows]


async def register_sender_id(
    *, actor: audit.Actor, within_account_id: int, account_id: int, value: str
) -> SenderIdView:
    """Request a sender ID for an account in the caller's subtree; it starts `pending`."""
    kind, clean = classify_sender_id(value)
    async with transaction():
        target = await get_in_subtree(within_account_id, account_id)
        key = f"{target.id}:{clean.lower()}"
        if await SenderId.exists().where(SenderId.unique_key == key):
            raise Conflict(
                f"{target.name} already has the sender ID {clean!r}.", code="duplicate_sender_id"
            )
        rows = await SenderId.insert(
            SenderId(account=target.id, value=clean, unique_key=key, kind=kind)
        ).returning(SenderId.id)
        sender_id_id = rows[0]["id"]
        await audit.record(
            actor,
            account_id=target.id,
            action="sender_id.request",
            target_type="sender_id",
            target_id=sender_id_id,
            after={"value": clean, "kind": kind, "status": "pending"},
        )
        return await get_sender_id(sender_id_id)


async def decide_sender_id(
    *, actor: audit.Actor, sender_id_id: int, status: str, note: str = ""
) -> SenderIdView:
    """The operator approves or rejects a sender ID (or puts it back to pending)."""
    if status not in SENDER_ID_STATUSES:
        raise ValidationFailed({"status": "Status must be pending, approved or rejected."})
    note = (note or "").strip()
    if status == "rejected" and not note:
        raise ValidationFailed({"note": "Say why the sender ID is rejected."})
    async with transaction():
        before = await get_sender_id(sender_id_id)
        await SenderId.update(
            {
                SenderId.status: status,
                SenderId.note: note,
                SenderId.decided_at: None if status == "pending" else now(),
            }
        ).where(SenderId.id == sender_id_id)
        await audit.record(
            actor,
            account_id=before.account_id,
            action=f"sender_id.{status}",
            target_type="sender_id",
            target_id=sender_id_id,
            before={"status": before.status},
            after={"status": status, "note": note},
        )
        return await get_sender_id(sender_id_id)


async def withdraw_sender_id(
    *, actor: audit.Actor, within_account_id: int, sender_id_id: int
) -> None:
    """Remove a sender ID of an account in the caller's subtree."""
    async with transaction():
        sender = await get_sender_id(sender_id_id)
        try:
            await get_in_subtree(within_account_id, sender.account_id)
        except NotFound:
            raise NotFound(f"sender ID {sender_id_id} not found") from None
        await SenderId.delete().where(SenderId.id == sender.id)
        await audit.record(
            actor,
            account_id=sender.account_id,
            action="sender_id.remove",
            target_type="sender_id",
            target_id=sender.id,
            before={"value": sender.value, "status": sender.status},
        )


# ---------------------------------------------------------------- what an account sends from


async def usable_senders(account_id: int) -> list[SenderView]:
    """Numbers held by the account or an account above it, then its approved sender IDs
    (kept across an inbound group's blocks while cache_version stands)."""
    return list(
        await shared_read(("senders", account_id), lambda: _usable(account_id), settled=True)
    )


async def _usable(account_id: int) -> tuple[SenderView, ...]:
    account = await get_account(account_id)
    senders: list[SenderView] = []
    if account.kind != "platform":
        rows = (
            await PhoneNumber.select(*_NUMBER_COLUMNS)
            .where(PhoneNumber.owner == account.ancestor_ids[0])
            .order_by(PhoneNumber.number)
        )
        for number in (_number_view(r) for r in rows):
            if not may_use_number(number, account):
                continue
            via = "" if number.holder_id == account.id else f" (from {number.holder_name})"
            senders.append(
                SenderView(
                    kind=number.kind,
                    value=number.number,
                    label=f"{number.number} · {number.kind_label}{via}",
                    number_id=number.id,
                    held=number.holder_id == account.id,
                )
            )
    rows = (
        await SenderId.select(SenderId.id, SenderId.value, SenderId.kind)
        .where((SenderId.account == account.id) & (SenderId.status == "approved"))
        .order_by(SenderId.value)
    )
    senders.extend(
        SenderView(
            kind=r["kind"],
            value=r["value"],
            label=f"{r['value']} · sender ID",
            sender_id_id=r["id"],
        )
        for r in rows
    )
    return tuple(senders)


async def default_sender(account_id: int) -> str:
    """What a send names no sender goes out from: a number the account holds itself, else
    one it inherits, else its first approved sender ID; "" when it may use none (then the
    provider integration's own default). Recording it at accept time makes a reply find
    the account that wrote (the last-sender rule on a shared number)."""
    options = await usable_senders(account_id)
    own = [o for o in options if o.is_number and o.held]
    numbers = [o for o in options if o.is_number]
    chosen = next(iter(own or numbers or options), None)
    return chosen.value if chosen is not None else ""


async def resolve_sender(account_id: int, sender: str) -> SenderView:
    """The sender the account asked for, if it may use it; else ValidationFailed(`sender`)."""
    wanted = (sender or "").strip()
    options = await usable_senders(account_id)
    for option in options:
        if option.value == wanted or (
            option.is_number and option.value.lstrip("+") == wanted.lstrip("+")
        ):
            return option
    if not options:
        raise ValidationFailed({"sender": "This account has no number or approved sender ID."})
    raise ValidationFailed({"sender": f"{wanted!r} is not a sender this account may use."})
