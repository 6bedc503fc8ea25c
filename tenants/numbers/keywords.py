"""The keyword registry: words claimed on a number for one account, and what they do.

A keyword is unique per number regardless of case and belongs to one account in the number
owner's subtree. The owning master hands words down to any account of its tree; an account
that sends from a shared number may claim words on it for itself and its descendants.
Compliance words (opt-out, opt-in, help) are never claimable: they always reach consent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tenants.accounts.tree import AccountView, get_account, get_in_subtree, is_in_subtree
from tenants.audit import record as audit
from tenants.consent import keywords as consent_keywords
from tenants.contacts import contacts
from tenants.db import first_or_404, reads_settled, shared_read, transaction
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.numbers.numbers import NumberView, get_visible_number, may_use_number, numbers_for
from tenants.numbers.tables import MAX_WORD, Keyword, KeywordAction
from tenants.templates.merge_fields import render as render_merge_fields

MAX_REPLY = 640
MAX_ACTIONS = 10
ACTION_KINDS: dict[str, str] = {
    "auto_reply": "Auto-reply",
    "add_to_list": "Add to contact list (opt-in)",
    "forward_webhook": "Forward to the account's inbound webhooks",
}
_STRIP = " \t\r\n.,;:!?¡¿'\"()[]{}<>-_*#~`/\\|"


@dataclass(frozen=True)
class ActionView:
    id: int
    kind: str
    reply_text: str
    list_id: int | None

    @property
    def kind_label(self) -> str:
        return ACTION_KINDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class KeywordView:
    id: int
    word: str
    number_id: int
    number: str
    number_owner_id: int
    account_id: int
    account_name: str
    actions: tuple[ActionView, ...] = field(default_factory=tuple)

    def reply_preview(self, action: ActionView) -> str:
        """An auto-reply as a person with no contact record gets it: the keyword filled
        in, every other merge field its default (as the inbound road sends it)."""
        return render_merge_fields(action.reply_text, {"keyword": self.word})


def normalize_word(text: str) -> str:
    """How a keyword is stored and compared: upper case, no surrounding punctuation."""
    return (text or "").strip(_STRIP).upper()


def first_word(body: str) -> str:
    """The word of an inbound message that is matched against the registry."""
    parts = (body or "").strip(_STRIP).split()
    return normalize_word(parts[0]) if parts else ""


_COMPLIANCE_LABELS = {"opt_out": "opt-out", "opt_in": "opt-in", "help": "help"}


async def compliance_kind(account_id: int, word: str) -> str | None:
    """Whether `word` is an opt-out, opt-in or help keyword in the account's tree."""
    return await consent_keywords.classify_keyword(account_id, word)


def validate_word(text: str) -> str:
    word = normalize_word(text)
    if not word:
        raise ValidationFailed({"word": "Keyword is required."})
    if len(word) > MAX_WORD or not word.isalnum():
        raise ValidationFailed(
            {"word": f"A keyword is one word of letters and digits, at most {MAX_WORD}."}
        )
    return word


# ---------------------------------------------------------------- reading

_KEYWORD_COLUMNS = (
    Keyword.id,
    Keyword.word,
    Keyword.number,
    Keyword.number.number,
    Keyword.number.owner,
    Keyword.account,
    Keyword.account.name,
)


async def _actions_for(keyword_ids: list[int]) -> dict[int, tuple[ActionView, ...]]:
    if not keyword_ids:
        return {}
    rows = (
        await KeywordAction.select(
            KeywordAction.id,
            KeywordAction.keyword,
            KeywordAction.kind,
            KeywordAction.reply_text,
            KeywordAction.list_id,
        )
        .where(KeywordAction.keyword.is_in(keyword_ids))
        .order_by(KeywordAction.position)
        .order_by(KeywordAction.id)
    )
    grouped: dict[int, list[ActionView]] = {}
    for r in rows:
        grouped.setdefault(r["keyword"], []).append(
            ActionView(id=r["id"], kind=r["kind"], reply_text=r["reply_text"], list_id=r["list_id"])
        )
    return {k: tuple(v) for k, v in grouped.items()}


async def _views(rows: list[dict[str, Any]]) -> list[KeywordView]:
    actions = await _actions_for([r["id"] for r in rows])
    return [
        KeywordView(
            id=r["id"],
            word=r["word"],
            number_id=r["number"],
            number=r["number.number"],
            number_owner_id=r["number.owner"],
            account_id=r["account"],
            account_name=r["account.name"],
            actions=actions.get(r["id"], ()),
        )
        for r in rows
    ]


async def get_keyword(keyword_id: int) -> KeywordView:
    async def load() -> KeywordView:
        row = await first_or_404(
            Keyword.select(*_KEYWORD_COLUMNS).where(Keyword.id == keyword_id),
            f"keyword {keyword_id} not found",
        )
        return (await _views([row]))[0]

    # Kept across an inbound group's blocks while cache_version stands (a replayed
    # message's keyword).
    return await shared_read(("keyword", keyword_id), load, settled=True)


async def keyword_on(number_id: int, word: str) -> KeywordView | None:
    """The keyword registered on a number for this word, if any (case-insensitive)."""
    normalized = normalize_word(word)
    if not normalized:
        return None
    if reads_settled():
        # In an inbound group: the number's whole registry, kept across groups while
        # cache_version stands (keyword, its actions, numbers and accounts are watched),
        # so the words people send (mostly no keyword at all) add nothing to the memo.
        return (await _registry(number_id)).get(normalized)
    row = (
        await Keyword.select(*_KEYWORD_COLUMNS)
        .where(Keyword.unique_key == f"{number_id}:{normalized}")
        .first()
    )
    return (await _views([row]))[0] if row else None


async def _registry(number_id: int) -> dict[str, KeywordView]:
    async def load() -> dict[str, KeywordView]:
        rows = await Keyword.select(*_KEYWORD_COLUMNS).where(Keyword.number == number_id)
        return {normalize_word(view.word): view for view in await _views(rows)}

    return await shared_read(("keyword_registry", number_id), load, settled=True)


async def keywords_for(account_id: int) -> list[KeywordView]:
    """Keywords owned by the account or its descendants, on numbers it can see."""
    account = await get_account(account_id)
    number_ids = [n.id for n in await numbers_for(account_id)]
    if not number_ids:
        return []
    query = Keyword.select(*_KEYWORD_COLUMNS).where(Keyword.number.is_in(number_ids))
    if account.kind != "platform":
        query = query.where(Keyword.account.path.like(account.path + "%"))
    rows = await query.order_by(Keyword.number.number).order_by(Keyword.word)
    return await _views(rows)


async def get_owned_keyword(account_id: int, keyword_id: int) -> KeywordView:
    """A keyword the account may change: owned in its subtree, or on a number it owns."""
    account = await get_account(account_id)
    try:
        keyword = await get_keyword(keyword_id)
        owner = await get_account(keyword.account_id)
    except NotFound:
        raise NotFound(f"keyword {keyword_id} not found") from None
    if account.kind == "platform" or is_in_subtree(owner, account):
        return keyword
    if keyword.number_owner_id == account.id:
        return keyword
    raise NotFound(f"keyword {keyword_id} not found")


def _may_see(holder: AccountView, caller: AccountView) -> bool:
    return caller.kind == "platform" or is_in_subtree(holder, caller)


# ---------------------------------------------------------------- claiming


@dataclass(frozen=True)
class _Claim:
    """Who claims which word on which number, and for which account."""

    word: str
    caller: AccountView
    number: NumberView
    target: AccountView


async def claim_keyword(
    *,
    actor: audit.Actor,
    within_account_id: int,
    number_id: int,
    word: str,
    account_id: int,
) -> KeywordView:
    """Claim `word` on a number for `account_id` (the caller's account or a descendant
    that may send from the number).

    A compliance word or a word already held on the number is a Conflict whose message
    says why; it names the holder only when the caller may see that account.
    """
    word_errors: dict[str, str] = {}
    try:
        clean = validate_word(word)
    except ValidationFailed as exc:
        word_errors, clean = exc.errors, ""
    async with transaction():
        try:
            claim = await _resolve_claim(within_account_id, number_id, account_id, clean)
        except ValidationFailed as exc:  # every bad field at once
            raise ValidationFailed(word_errors | exc.errors) from None
        if word_errors:
            raise ValidationFailed(word_errors)
        await _refuse_compliance_word(claim)
        await _refuse_held_word(claim)
        keyword_id = await _insert_keyword(claim)
        await audit.record(
            actor,
            account_id=claim.target.id,
            action="keyword.claim",
            target_type="keyword",
            target_id=keyword_id,
            after={"word": clean, "number": claim.number.number, "account_id": claim.target.id},
        )
        return await get_keyword(keyword_id)


async def _resolve_claim(
    within_account_id: int, number_id: int, account_id: int, word: str
) -> _Claim:
    """The number and the account the keyword would belong to, checked against each other."""
    caller = await get_account(within_account_id)
    number = await get_visible_number(within_account_id, number_id)
    if caller.kind == "platform":
        target = await get_in_subtree(number.owner_id, account_id)
    else:
        target = await get_in_subtree(within_account_id, account_id)
    if target.ancestor_ids[0] != number.owner_id:
        raise ValidationFailed(
            {"account_id": f"{target.name} is not in {number.owner_name}'s tree."}
        )
    # The keyword's owner answers from the number, so it must be allowed to send from it.
    if not may_use_number(number, target):
        raise ValidationFailed({"account_id": f"{target.name} does not send from {number.number}."})
    return _Claim(word=word, caller=caller, number=number, target=target)


async def _refuse_compliance_word(claim: _Claim) -> None:
    kind = await compliance_kind(claim.number.owner_id, claim.word)
    if kind is not None:
        raise Conflict(
            f"{claim.word} is a compliance keyword ({_COMPLIANCE_LABELS[kind]}) and cannot be "
            "claimed: it always reaches consent handling.",
            code="compliance_keyword",
        )


async def _refuse_held_word(claim: _Claim) -> None:
    existing = await keyword_on(claim.number.id, claim.word)
    if existing is None:
        return
    holder = await get_account(existing.account_id)
    where = f"{claim.word} on {claim.number.number}"
    if _may_see(holder, claim.caller):
        message = f"{where} is already held by {holder.name}."
    else:
        message = f"{where} is already taken by another account."
    raise Conflict(message, code="duplicate_keyword")


async def _insert_keyword(claim: _Claim) -> int:
    rows = await Keyword.insert(
        Keyword(
            number=claim.number.id,
            word=claim.word,
            unique_key=f"{claim.number.id}:{claim.word}",
            account=claim.target.id,
            claimed_by=claim.caller.id,
        )
    ).returning(Keyword.id)
    return int(rows[0]["id"])


async def release_keyword(*, actor: audit.Actor, within_account_id: int, keyword_id: int) -> None:
    async with transaction():
        keyword = await get_owned_keyword(within_account_id, keyword_id)
        await KeywordAction.delete().where(KeywordAction.keyword == keyword.id)
        await Keyword.delete().where(Keyword.id == keyword.id)
        await audit.record(
            actor,
            account_id=keyword.account_id,
            action="keyword.release",
            target_type="keyword",
            target_id=keyword.id,
            before={"word": keyword.word, "number": keyword.number},
        )


# ---------------------------------------------------------------- actions


async def _validate_action(
    keyword: KeywordView, kind: str, reply_text: str, list_id: int | None
) -> tuple[str, int | None]:
    if kind not in ACTION_KINDS:
        raise ValidationFailed({"kind": "Choose auto-reply, add to list or forward to webhook."})
    if kind == "auto_reply":
        text = (reply_text or "").strip()
        if not text:
            raise ValidationFailed({"reply_text": "Write the reply."})
        if len(text) > MAX_REPLY:
            raise ValidationFailed({"reply_text": f"A reply has at most {MAX_REPLY} characters."})
        return text, None
    if kind == "add_to_list":
        if list_id is None:
            raise ValidationFailed({"list_id": "Choose a contact list."})
        if not await list_belongs_to(keyword.account_id, list_id):
            raise ValidationFailed(
                {"list_id": f"Choose one of {keyword.account_name}'s contact lists."}
            )
        return "", list_id
    return "", None


async def list_belongs_to(account_id: int, list_id: int) -> bool:
    """Whether a contact list is the account's own (the list receives keyword senders)."""
    return await contacts.is_own_list(account_id, list_id)


async def contact_lists_of(account_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """Each account's own contact lists as (id, name): where keyword senders may be added."""
    return {
        account_id: [(item.id, item.name) for item in await contacts.contact_lists(account_id)]
        for account_id in account_ids
    }


async def add_action(
    *,
    actor: audit.Actor,
    within_account_id: int,
    keyword_id: int,
    kind: str,
    reply_text: str = "",
    list_id: int | None = None,
) -> KeywordView:
    async with transaction():
        keyword = await get_owned_keyword(within_account_id, keyword_id)
        if len(keyword.actions) >= MAX_ACTIONS:
            raise ValidationFailed({"kind": f"A keyword has at most {MAX_ACTIONS} actions."})
        if kind == "forward_webhook" and any(a.kind == kind for a in keyword.actions):
            raise ValidationFailed({"kind": "This keyword already forwards to the webhooks."})
        text, list_value = await _validate_action(keyword, kind, reply_text, list_id)
        rows = await KeywordAction.insert(
            KeywordAction(
                keyword=keyword.id,
                kind=kind,
                reply_text=text,
                list_id=list_value,
                position=len(keyword.actions),
            )
        ).returning(KeywordAction.id)
        await audit.record(
            actor,
            account_id=keyword.account_id,
            action="keyword.action_add",
            target_type="keyword",
            target_id=keyword.id,
            after={
                "action_id": rows[0]["id"],
                "kind": kind,
                "reply_text": text,
                "list_id": list_value,
            },
        )
        return await get_keyword(keyword.id)


async def remove_action(
    *, actor: audit.Actor, within_account_id: int, keyword_id: int, action_id: int
) -> KeywordView:
    async with transaction():
        keyword = await get_owned_keyword(within_account_id, keyword_id)
        action = next((a for a in keyword.actions if a.id == action_id), None)
        if action is None:
            raise NotFound(f"action {action_id} not found")
        await KeywordAction.delete().where(KeywordAction.id == action.id)
        await audit.record(
            actor,
            account_id=keyword.account_id,
            action="keyword.action_remove",
            target_type="keyword",
            target_id=keyword.id,
            before={"action_id": action.id, "kind": action.kind, "reply_text": action.reply_text},
        )
        return await get_keyword(keyword.id)
