"""Compliance keywords: the opt-out/opt-in/help words (defaults plus a master's additions)
and the confirmation replies sent for them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from tenants.accounts.tables import Account
from tenants.accounts.tree import path_ids
from tenants.audit import record as audit
from tenants.consent.tables import (
    ConsentKeyword,
    ConsentReply,
)
from tenants.db import first_or_404, shared_read, transaction
from tenants.errors import PermissionDenied, ValidationFailed

KEYWORD_KINDS = ("opt_out", "opt_in", "help")


DEFAULT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "opt_out": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"),
    "opt_in": ("START", "UNSTOP", "YES"),
    "help": ("HELP", "INFO"),
}


DEFAULT_REPLIES: dict[str, str] = {
    "opt_out": "You have been unsubscribed and will receive no further messages. "
    "Reply START to subscribe again.",
    "opt_in": "You are subscribed again. Reply STOP to unsubscribe.",
    "help": "Reply STOP to unsubscribe or START to subscribe again.",
}


KEYWORD_RE = re.compile(r"^[A-Z0-9]{2,20}$")


MAX_CUSTOM_KEYWORDS = 30


MAX_REPLY = 480


def normalize_keyword_text(text: str) -> str:
    """Upper-case, surrounding whitespace and punctuation removed, inner spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"^[\W_]+|[\W_]+$", "", text)
    return re.sub(r"\s+", " ", text).upper()


async def _tree_root_and_chain(account_id: int) -> list[int]:
    async def load() -> str:
        row = await first_or_404(
            Account.select(Account.path).where(Account.id == account_id),
            f"account {account_id} not found",
        )
        return str(row["path"])

    # An account's path is read once per reads_shared() block (an inbound group).
    return path_ids(await shared_read(("account_path", account_id), load, settled=True))


async def keyword_lists(account_id: int) -> dict[str, list[str]]:
    """Effective words per kind for an account: the defaults plus its ancestors' additions."""

    async def load() -> dict[str, tuple[str, ...]]:
        chain = await _tree_root_and_chain(account_id)
        rows = await ConsentKeyword.select(ConsentKeyword.kind, ConsentKeyword.word).where(
            ConsentKeyword.account_id.is_in(chain)
        )
        lists = {kind: list(words) for kind, words in DEFAULT_KEYWORDS.items()}
        for r in sorted(rows, key=lambda r: r["word"]):
            if r["word"] not in lists[r["kind"]]:
                lists[r["kind"]].append(r["word"])
        return {kind: tuple(words) for kind, words in lists.items()}

    # Kept across an inbound group's blocks while cache_version stands (never changed in
    # place: each caller gets its own lists).
    kept = await shared_read(("consent_words", account_id), load, settled=True)
    return {kind: list(words) for kind, words in kept.items()}


async def custom_keywords(account_id: int) -> dict[str, list[str]]:
    """The words this account itself added, per kind."""
    rows = await ConsentKeyword.select(ConsentKeyword.kind, ConsentKeyword.word).where(
        ConsentKeyword.account_id == account_id
    )
    out: dict[str, list[str]] = {kind: [] for kind in KEYWORD_KINDS}
    for r in sorted(rows, key=lambda r: r["word"]):
        out[r["kind"]].append(r["word"])
    return out


async def classify_keyword(
    account_id: int, text: str, *, lists: Mapping[str, list[str]] | None = None
) -> str | None:
    """ "opt_out", "opt_in", "help" or None for an inbound message's whole text (`lists`:
    the account's `keyword_lists`, when the caller has read them already)."""
    word = normalize_keyword_text(text)
    if not word:
        return None
    for kind, words in (lists if lists is not None else await keyword_lists(account_id)).items():
        if word in words:
            return kind
    return None


async def confirmation_reply(account_id: int, kind: str) -> str:
    """The reply sent for a compliance keyword of `kind`: the nearest ancestor's, else the
    default. It is sent even after an opt-out (it confirms the opt-out)."""
    if kind not in KEYWORD_KINDS:
        raise ValueError(f"unknown keyword kind {kind!r}")

    async def load() -> str:
        chain = await _tree_root_and_chain(account_id)
        rows = await ConsentReply.select(ConsentReply.account_id, ConsentReply.body).where(
            ConsentReply.account_id.is_in(chain) & (ConsentReply.kind == kind)
        )
        by_account = {r["account_id"]: r["body"] for r in rows if r["body"]}
        for ancestor_id in reversed(chain):
            if ancestor_id in by_account:
                return str(by_account[ancestor_id])
        return DEFAULT_REPLIES[kind]

    return await shared_read(("consent_reply", account_id, kind), load, settled=True)


async def confirmation_replies(account_id: int) -> dict[str, tuple[str, bool]]:
    """Per kind: (effective reply, whether this account itself sets it)."""
    own = {
        r["kind"]: r["body"]
        for r in await ConsentReply.select(ConsentReply.kind, ConsentReply.body).where(
            ConsentReply.account_id == account_id
        )
    }
    return {
        kind: (await confirmation_reply(account_id, kind), bool(own.get(kind)))
        for kind in KEYWORD_KINDS
    }


async def _require_master(account_id: int) -> None:
    row = await first_or_404(
        Account.select(Account.parent, Account.kind).where(Account.id == account_id),
        f"account {account_id} not found",
    )
    if row["parent"] is not None:
        raise PermissionDenied(
            "Compliance keywords and replies are set by the master account for its whole tree."
        )


def parse_keyword_words(raw: str) -> list[str]:
    """Words from a comma, space or newline separated list, normalised and de-duplicated."""
    words = [normalize_keyword_text(w) for w in re.split(r"[,\s]+", raw or "")]
    return list(dict.fromkeys(w for w in words if w))


async def set_custom_keywords(
    *, actor: audit.Actor, account_id: int, kind: str, words: Sequence[str]
) -> list[str]:
    """Replace the words a master adds to `kind` (the defaults always stay)."""
    if kind not in KEYWORD_KINDS:
        raise ValidationFailed({"kind": "Kind must be opt_out, opt_in or help."})
    clean = list(dict.fromkeys(normalize_keyword_text(w) for w in words if w.strip()))
    bad = [w for w in clean if not KEYWORD_RE.match(w)]
    if bad:
        raise ValidationFailed(
            {kind: f"Keywords are 2-20 letters or digits without spaces: {', '.join(bad)}."}
        )
    if len(clean) > MAX_CUSTOM_KEYWORDS:
        raise ValidationFailed({kind: f"At most {MAX_CUSTOM_KEYWORDS} added words per kind."})
    async with transaction():
        await _require_master(account_id)
        others = await ConsentKeyword.select(ConsentKeyword.kind, ConsentKeyword.word).where(
            (ConsentKeyword.account_id == account_id) & (ConsentKeyword.kind != kind)
        )
        taken = {w: k for k, ws in DEFAULT_KEYWORDS.items() for w in ws} | {
            r["word"]: r["kind"] for r in others
        }
        clash = [f"{w} ({taken[w].replace('_', '-')})" for w in clean if w in taken]
        if clash:
            raise ValidationFailed(
                {kind: f"Already a keyword of another kind: {', '.join(clash)}."}
            )
        before = (await custom_keywords(account_id))[kind]
        await ConsentKeyword.delete().where(
            (ConsentKeyword.account_id == account_id) & (ConsentKeyword.kind == kind)
        )
        if clean:
            await ConsentKeyword.insert(
                *[ConsentKeyword(account_id=account_id, kind=kind, word=w) for w in clean]
            )
        if sorted(before) != sorted(clean):
            await audit.record(
                actor,
                account_id=account_id,
                action="consent.keywords",
                target_type="consent_keyword",
                target_id=kind,
                before={"words": sorted(before)},
                after={"words": sorted(clean)},
            )
    return sorted(clean)


async def set_confirmation_reply(
    *, actor: audit.Actor, account_id: int, kind: str, body: str
) -> None:
    """Set a master's reply for `kind`; an empty body goes back to the default."""
    if kind not in KEYWORD_KINDS:
        raise ValidationFailed({"kind": "Kind must be opt_out, opt_in or help."})
    body = (body or "").strip()
    if len(body) > MAX_REPLY:
        raise ValidationFailed({f"reply_{kind}": f"A reply is at most {MAX_REPLY} characters."})
    async with transaction():
        await _require_master(account_id)
        existing = await ConsentReply.select(ConsentReply.body).where(
            (ConsentReply.account_id == account_id) & (ConsentReply.kind == kind)
        )
        before = existing[0]["body"] if existing else ""
        if before == body:
            return
        await ConsentReply.delete().where(
            (ConsentReply.account_id == account_id) & (ConsentReply.kind == kind)
        )
        if body:
            await ConsentReply.insert(ConsentReply(account_id=account_id, kind=kind, body=body))
        await audit.record(
            actor,
            account_id=account_id,
            action="consent.reply",
            target_type="consent_reply",
            target_id=kind,
            before={"body": before},
            after={"body": body},
        )
