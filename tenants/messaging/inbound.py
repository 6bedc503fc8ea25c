"""Inbound messages: routing each one to the account it belongs to, the compliance and
keyword handling it triggers, and the inbox (conversations by phone, unread counts, replies).

Routing order (DESIGN.md "Numbers and keywords"): compliance keywords first (STOP records
the opt-out in the scope of the account the phone was talking to and confirms it, START
re-opts in, HELP answers; a provider that answered the keyword itself, as Twilio's
Advanced Opt-Out does and says with OptOutType, is trusted for the kind, in any language,
and no second confirmation is sent); then the keyword's owner; then, on a shared number, the account
that last messaged that phone from that number; then the number's holder.

An inbound message is stored once per provider id: the routing row's unique key makes a
redelivered or concurrent duplicate one message and one consent event. Replies go through
the normal accept-a-send service (credits; consent, except that a compliance confirmation
reaches even the phone that just opted out) after the routing transaction commits, each
with its own idempotency key, so a replayed inbound never sends a reply twice.

Providers post one inbound message per request. Concurrent ones are routed in one
transaction (tenants.group_commit), set-based: the group's messages in waves holding at
most one message per phone (a phone's next message waits for the next wave, so it sees
its earlier one's consent, contact and replies, as alone); each message of a wave decided
as it would be alone, then the wave written a table at a time (messages, consent events,
list members, webhook deliveries, routes, conversations), its identical replies accepted
as one send (each send in a savepoint, so a reply refused for credits leaves nothing
behind), the reads the group repeats made once, and each caller answered once the group
has committed. A group that fails is routed again message by message, each in its own
transactions as above.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import phonenumbers

from tenants.access.resolved import read_version
from tenants.accounts.tree import default_region, get_account
from tenants.audit import record as audit
from tenants.clock import now
from tenants.consent import events as consent_events
from tenants.consent import keywords as consent_keywords
from tenants.contacts import contacts
from tenants.contacts.tables import Contact
from tenants.db import (
    CONTROL_CHARACTERS,
    bulk_value,
    chunked,
    copy_rows,
    is_unique_violation,
    next_ids,
    placeholders,
    reads_shared,
    retrying_deadlocks,
    run_sql,
    savepoint,
    transaction,
)
from tenants.errors import DomainError, NotFound, ValidationFailed
from tenants.group_commit import GroupCommit, PerLoop
from tenants.messaging import accept as sending
from tenants.messaging.messages import CHANNELS, SETTLING_STATUSES
from tenants.messaging.tables import Conversation, InboundReply, InboundRoute, Message
from tenants.numbers import keywords, numbers
from tenants.phones import normalize_phone
from tenants.templates.merge_fields import fields_in
from tenants.webhooks import deliveries as customer_webhooks

ROUTES = ("opt_out", "opt_in", "help", "keyword", "last_messaged", "number_owner")
REPLY_ACTOR = audit.Actor(label="inbound auto-reply")
KEYWORD_ACTOR = audit.Actor(label="inbound keyword")
PREVIEW = 160
MAX_MEDIA = 10
# Replies to an MMS go back as SMS (a text confirmation has no media).
REPLY_CHANNEL = {"mms": "sms"}
# Group commit: wait at most this long for company when the writer is idle, and route at
# most this many messages in one transaction.
WINDOW_SECONDS = 0.002
MAX_GROUP = 200

T = TypeVar("T")


class _Reads:
    """Reads that routing makes for every message and that the messages of one group share
    (a number, an account, its region, compliance words and confirmations, a number's
    keyword, a list's owner): made once per group. Nothing routing writes changes them."""

    def __init__(self) -> None:
        self._known: dict[Hashable, Any] = {}

    async def of(self, read: Callable[..., Awaitable[T]], *args: Hashable) -> T:
        """`await read(*args)`, read once per group."""
        key = (read, *args)
        if key not in self._known:
            self._known[key] = await read(*args)
        return self._known[key]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class InboundResult:
    message_id: int | None
    account_id: int | None
    route: str  # one of ROUTES, or "unknown_number"
    duplicate: bool = False
    keyword: str | None = None
    consent_action: str | None = None
    reply_message_ids: tuple[int, ...] = ()
    reply_chunks: tuple[tuple[int, ...], ...] = ()  # handed to the broker on commit
    reply_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Plan:
    route_id: int
    message_id: int
    account_id: int
    number: str
    phone: str
    channel: str
    rule: str
    keyword: str | None
    consent_action: str | None
    replies: list[dict[str, Any]]
    replies_done: bool
    reply_message_ids: list[int]
    reply_errors: list[str]


def _plan(row: dict[str, Any], keyword: str | None = None) -> _Plan:
    return _Plan(
        route_id=row["id"],
        message_id=row["message_id"],
        account_id=row["account_id"],
        number=row["number"],
        phone=row["phone"],
        channel=row["channel"],
        rule=row["rule"],
        keyword=keyword,
        consent_action=row["consent_action"],
        replies=json.loads(row["replies"]),
        replies_done=row["replies_done"],
        reply_message_ids=json.loads(row["reply_message_ids"]),
        reply_errors=json.loads(row["reply_errors"]),
    )


async def _existing(dedupe_key: str) -> _Plan | None:
    return (await _existing_routes([dedupe_key])).get(dedupe_key)


async def _existing_routes(dedupe_keys: Sequence[str]) -> dict[str, _Plan]:
    """The routes already stored under these keys (one query), by key."""
    rows = await InboundRoute.select().where(InboundRoute.dedupe_key.is_in(list(set(dedupe_keys))))
    plans: dict[str, _Plan] = {}
    for row in rows:
        word = None
        if row["keyword_id"] is not None:
            try:
                word = (await keywords.get_keyword(row["keyword_id"])).word
            except NotFound:
                word = None
        plans[row["dedupe_key"]] = _plan(row, word)
    return plans


def _region_of(number: numbers.NumberView, fallback: str) -> str:
    return _region_of_number(number.number) or fallback


@lru_cache(maxsize=1024)
def _region_of_number(number: str) -> str | None:
    """The region of one of our numbers in E.164 (parsed once per process: a number's
    digits never change region)."""
    if number.startswith("+"):
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    return None


async def last_messaged_by(
    number: numbers.NumberView, phone: str, reads: _Reads | None = None
) -> int | None:
    """The account that last sent to `phone` from `number`, if it may still use the number."""
    row = (
        await Message.select(Message.account_id)
        .where(
            (Message.direction == "out")
            & (Message.to_number == phone)
            & (Message.from_number == number.number)
        )
        .order_by(Message.id, ascending=False)
        .first()
    )
    if row is None:
        return None
    return await _may_use(number, int(row["account_id"]), reads or _Reads())


@dataclass(frozen=True)
class InboundReport:
    """One inbound message as a gateway read it from its provider's callback: the one input
    of the routing service, whichever provider (or the simulator) carried it."""

    provider: str  # the provider key: `simulator` or `integration:<id>`
    provider_ref: str  # the provider's own message id (dedupe per provider)
    sender: str  # the phone that wrote to us, as the provider wrote it
    to: str  # our number
    body: str
    at: datetime
    channel: str = "sms"  # sms, mms, whatsapp or rcs
    media_urls: tuple[str, ...] = ()
    # A tap on a suggestion or button: {"text": what was tapped, "payload": its postback}.
    tapped: Mapping[str, str] = field(default_factory=dict)
    # A compliance keyword the provider recognised and answered itself ("opt_out", "opt_in"
    # or "help": Twilio's Advanced Opt-Out OptOutType), whatever our keyword lists say.
    provider_keyword: str | None = None


@dataclass
class _Flow:
    """What one inbound message carries from step to step while it is routed."""

    report: InboundReport
    dedupe_key: str
    number: numbers.NumberView
    phone: str  # as stored: E.164 when readable, else the raw sender
    e164: str | None
    kind: str | None = None  # compliance keyword kind
    keyword: keywords.KeywordView | None = None
    account_id: int = 0
    rule: str = "number_owner"
    message_id: int = 0
    consent_action: str | None = None
    replies: list[dict[str, Any]] = field(default_factory=list)
    forward: bool = False


def _check(report: InboundReport) -> None:
    errors: dict[str, str] = {}
    if not str(report.provider_ref or "").strip():
        errors["id"] = "The provider's message id is required."
    if report.channel not in CHANNELS:
        errors["channel"] = f"Choose one of {', '.join(CHANNELS)}."
    if len(report.media_urls) > MAX_MEDIA or not all(
        isinstance(u, str) and u.startswith(("https://", "http://")) and len(u) <= 2000
        for u in report.media_urls
    ):
        errors["media_urls"] = f"At most {MAX_MEDIA} http(s) URLs."
    if errors:
        raise ValidationFailed(errors)


async def route_inbound(
    provider_message_id: str,
    from_phone: str,
    to_number: str,
    body: str,
    channel: str = "sms",
    *,
    provider: str = "simulator",
    received_at: datetime | None = None,
    media_urls: tuple[str, ...] = (),
) -> InboundResult:
    """route_report for values given one by one (tests, benchmarks, the simulator hook)."""
    report = InboundReport(
        provider=provider,
        provider_ref=str(provider_message_id or "").strip(),
        sender=from_phone,
        to=to_number,
        body=body or "",
        at=received_at or now(),
        channel=channel,
        media_urls=tuple(media_urls),
    )
    return await route_report(report)


async def route_report(report: InboundReport) -> InboundResult:
    """Store an inbound message once per provider id, in the account it routes to, and act
    on it. The simulator and every provider integration come through here.

    The replies' chunks and the inbound webhook deliveries queued with the message are
    handed to the broker when the transaction commits (tenants.handoff).
    """
    _check(report)
    report = replace(
        report,
        # The provider's bytes: control characters are dropped, the message is kept.
        body=CONTROL_CHARACTERS.sub("", report.body or ""),
        sender=CONTROL_CHARACTERS.sub("", report.sender or ""),
    )
    return await _groups.get().submit([report])


class InboundGroups(GroupCommit[InboundReport, InboundResult]):
    """Concurrent inbound messages (one per caller) routed in one transaction per group."""

    def __init__(
        self, *, window_seconds: float = WINDOW_SECONDS, max_items: int = MAX_GROUP
    ) -> None:
        super().__init__(window_seconds=window_seconds, max_items=max_items)

    async def write_group(self, items: list[InboundReport]) -> list[InboundResult]:
        # Concurrent inbound on PostgreSQL can deadlock on the replies' credit reservation.
        return await retrying_deadlocks(lambda: _route_group(items))

    def answer_of(self, outcomes: list[InboundResult]) -> InboundResult:
        (result,) = outcomes
        return result

    async def write_alone(self, items: Sequence[InboundReport]) -> InboundResult:
        (report,) = items
        return await _route_alone(report)


_groups = PerLoop(InboundGroups)


def inbound_groups() -> InboundGroups:
    """The running event loop's inbound grouper (the web server and each worker have their own)."""
    return _groups.get()


def _dedupe_key(report: InboundReport) -> str:
    return f"{report.provider}:{report.provider_ref.strip()}"[:200]


@dataclass
class _Replying:
    """A message of a group whose replies wait to be accepted with other messages' same
    replies (one send to many phones), and what became of each of them."""

    plan: _Plan
    sent: dict[int, tuple[list[int], list[tuple[int, ...]], str | None]] = field(
        default_factory=dict
    )

    def result(self) -> InboundResult:
        done = [self.sent[index] for index in sorted(self.sent)]
        plan = self.plan
        return InboundResult(
            message_id=plan.message_id,
            account_id=plan.account_id,
            route=plan.rule,
            keyword=plan.keyword,
            consent_action=plan.consent_action,
            reply_message_ids=tuple(i for ids, _, _ in done for i in ids),
            reply_chunks=tuple(c for _, chunks, _ in done for c in chunks),
            reply_errors=tuple(e for _, _, e in done if e),
        )


@dataclass
class _Group:
    """What one group's transaction carries from wave to wave."""

    reads: _Reads
    known: dict[str, _Plan]
    outcomes: dict[str, InboundResult | _Replying] = field(default_factory=dict)
    # Accounts' consent scopes, locked in this transaction (consent_events.record_changes).
    scopes: dict[int, Any] = field(default_factory=dict)
    # Accounts' inbound webhook subscriptions, read for the accounts of a wave at once.
    subscriptions: dict[int, list[int]] = field(default_factory=dict)


async def _route_group(reports: Sequence[InboundReport]) -> list[InboundResult]:
    """One transaction for the group, set-based: the messages in waves that hold at most
    one message per phone (a phone's second message goes in the next wave, after the
    first one's consent, contact and replies are written, as it would be alone); each wave
    read, written and answered with a few statements per table whatever its size. A later
    copy of a message in the group is its duplicate."""
    async with transaction():
        # The settings routing and replying read (numbers, keywords, accounts, prices,
        # senders, consent words) are kept across groups while cache_version stands.
        with reads_shared(await read_version()):
            return await _route_waves(reports)


async def _route_waves(reports: Sequence[InboundReport]) -> list[InboundResult]:
    """_route_group inside its transaction."""
    group = _Group(_Reads(), await _existing_routes([_dedupe_key(r) for r in reports]))
    order: list[tuple[str, bool]] = []
    waves: list[list[tuple[str, _Flow | _Plan]]] = []
    wave_of_phone: dict[str, int] = {}
    queued: set[str] = set()
    for report in reports:
        key = _dedupe_key(report)
        order.append((key, key in queued))
        if key in queued:
            continue
        queued.add(key)
        item: _Flow | _Plan
        if (known := group.known.get(key)) is not None:
            if known.replies_done:
                group.outcomes[key] = await _finish(known, duplicate=True)
                continue
            # Stored before this group with replies not yet done (a crash may have sent
            # some): sent under the route's own idempotency keys, in the phone's turn.
            item = known
        else:
            number = await group.reads.of(numbers.find_number, report.to)
            if number is None:
                group.outcomes[key] = InboundResult(
                    message_id=None, account_id=None, route="unknown_number"
                )
                continue
            item = await _read_sender(key, report, number, group.reads)
        wave = wave_of_phone[item.phone] = wave_of_phone.get(item.phone, -1) + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append((key, item))
    for wave_items in waves:
        await _route_wave(group, wave_items)
    results = []
    for key, again in order:
        outcome = group.outcomes[key]
        result = outcome.result() if isinstance(outcome, _Replying) else outcome
        results.append(replace(result, duplicate=True, reply_chunks=()) if again else result)
    return results


async def _route_wave(group: _Group, items: list[tuple[str, _Flow | _Plan]]) -> None:
    """Route messages from distinct phones together: each decided as it would be alone,
    then the messages, consent events, list members, webhook deliveries, replies, routes
    and conversations written a table at a time."""
    reads = group.reads
    flows: list[tuple[str, _Flow]] = []
    for key, item in items:
        if isinstance(item, _Plan):
            group.outcomes[key] = await _finish(item, duplicate=True)
        else:
            flows.append((key, item))
    if not flows:
        return
    talking = await _last_messaged(
        [(f.number, f.e164) for _, f in flows if f.e164 is not None], reads
    )
    for _, flow in flows:
        talking_to = talking.get((flow.number.number, flow.e164)) if flow.e164 else None
        await _decide(flow, reads, talking_to)
    await _store_messages([f for _, f in flows])
    changes: list[consent_events.Change] = []
    joins: dict[tuple[int, int], list[str]] = {}
    for _, flow in flows:
        await _plan_acts(flow, reads, changes, joins)
    for (account_id, list_id), phones in joins.items():
        await contacts.join_list(
            actor=KEYWORD_ACTOR, account_id=account_id, list_id=list_id, phones=phones
        )
    await consent_events.record_changes(changes, source="keyword", scopes=group.scopes)
    unknown = sorted({f.account_id for _, f in flows} - set(group.subscriptions))
    if unknown:
        group.subscriptions.update(await customer_webhooks.inbound_subscriptions_of(unknown))
    await customer_webhooks.queue_inbound_events(
        [_inbound_event(f, group.subscriptions[f.account_id]) for _, f in flows]
    )
    touches = [
        _Touch(f.account_id, f.phone, f.number.number, f.report.body, "in", f.report.at, unread=1)
        for _, f in flows
    ]
    route_ids = await next_ids("inbound_route", len(flows))
    plans = [_plan_of(flow, route_id) for (_, flow), route_id in zip(flows, route_ids, strict=True)]
    replying = {plan.route_id: _Replying(plan) for plan in plans if plan.replies}
    await _send_pending(list(replying.values()), touches)
    outcomes: list[InboundResult | _Replying] = []
    for plan in plans:
        outcomes.append(replying.get(plan.route_id) or _result_of(plan, duplicate=False))
    await _store_routes(flows, plans, outcomes)
    await _touch_conversations(touches)
    for (key, _), outcome in zip(flows, outcomes, strict=True):
        group.outcomes[key] = outcome


async def _last_messaged(
    pairs: Sequence[tuple[numbers.NumberView, str]], reads: _Reads
) -> dict[tuple[str, str], int | None]:
    """For each (our number, phone): the account that last sent to the phone from the
    number, if it may still use the number (last_messaged_by for many pairs, one query)."""
    if not pairs:
        return {}
    wanted = sorted({(number.number, phone) for number, phone in pairs})
    # One scalar sub-select per pair, each the indexed look-up last_messaged_by makes (an
    # IN list of phones grouped by MAX(id) is planned as a scan of the outbox on PostgreSQL).
    rows = await run_sql(
        " UNION ALL ".join(
            "SELECT CAST({} AS TEXT) AS from_number, CAST({} AS TEXT) AS to_number, "
            "(SELECT m.account_id FROM message m WHERE m.direction = 'out' "
            "AND m.to_number = {} AND m.from_number = {} ORDER BY m.id DESC LIMIT 1) "
            "AS account_id"
            for _ in wanted
        ),
        *[value for number, phone in wanted for value in (number, phone, phone, number)],
    )
    last = {
        (r["from_number"], r["to_number"]): int(r["account_id"])
        for r in rows
        if r["account_id"] is not None
    }
    found: dict[tuple[str, str], int | None] = {}
    for number, phone in pairs:
        account_id = last.get((number.number, phone))
        found[(number.number, phone)] = (
            await _may_use(number, account_id, reads) if account_id is not None else None
        )
    return found


async def _may_use(number: numbers.NumberView, account_id: int, reads: _Reads) -> int | None:
    """The account, if it may still use the number."""
    try:
        account = await reads.of(get_account, account_id)
    except NotFound:
        return None
    return account.id if numbers.may_use_number(number, account) else None


_MESSAGE_COLUMNS = (
    "id", "account_id", "direction", "to_number", "from_number", "body", "channel",
    "media_urls", "status", "segments", "encoding", "cost", "country", "provider",
    "provider_ref", "refunded", "release_at", "dispatched_at", "submit_attempts",
    "created_at", "updated_at",
)  # fmt: skip


async def _store_messages(flows: Sequence[_Flow]) -> None:
    """The inbound messages of a wave in one bulk write (tenants.db.copy_rows)."""
    ids = await next_ids("message", len(flows))
    stamp = bulk_value(now())
    rows = []
    for message_id, flow in zip(ids, flows, strict=True):
        report = flow.report
        flow.message_id = message_id
        at = bulk_value(report.at)
        rows.append(
            (
                message_id, flow.account_id, "in", flow.number.number, flow.phone, report.body,
                report.channel, json.dumps(list(report.media_urls)), "incoming_message", 0,
                "GSM-7", 0, "", report.provider, report.provider_ref[:64], False, stamp, stamp,
                0, at, at,
            )
        )  # fmt: skip
    await copy_rows("message", _MESSAGE_COLUMNS, rows)


async def _confirm(flow: _Flow, reads: _Reads) -> None:
    """The confirmation of a compliance word, unless the provider answered it itself."""
    if (kind := flow.kind) is not None and not flow.report.provider_keyword:
        text = await reads.of(consent_keywords.confirmation_reply, flow.account_id, kind)
        flow.replies.append({"body": text, "variables": {}, "compliance": True})


async def _plan_acts(
    flow: _Flow,
    reads: _Reads,
    changes: list[consent_events.Change],
    joins: dict[tuple[int, int], list[str]],
) -> None:
    """_act for a wave: the consent change and the list joins are collected (written for
    the whole wave at once), the replies planned."""
    channel = flow.report.channel
    if flow.kind in ("opt_out", "opt_in") and flow.e164:
        changes.append(
            consent_events.Change(
                flow.account_id, flow.e164, channel, flow.kind, message_id=flow.message_id
            )
        )
        flow.consent_action = flow.kind
    await _confirm(flow, reads)
    if flow.keyword is not None and flow.e164:
        keyword = flow.keyword
        joined = False
        for action in keyword.actions:
            if action.kind != "add_to_list" or action.list_id is None:
                continue
            if not await reads.of(keywords.list_belongs_to, keyword.account_id, action.list_id):
                continue  # the list was deleted since; the other actions still run
            joins.setdefault((keyword.account_id, action.list_id), []).append(flow.e164)
            joined = True
        if joined:
            changes.append(
                consent_events.Change(
                    keyword.account_id, flow.e164, channel, "opt_in", message_id=flow.message_id
                )
            )
        flow.consent_action = "opt_in" if joined else None
        flow.replies.extend(_keyword_replies(keyword, flow.e164))
        flow.forward = any(a.kind == "forward_webhook" for a in keyword.actions)


def _keyword_replies(keyword: keywords.KeywordView, phone: str) -> list[dict[str, Any]]:
    return [
        {
            "body": action.reply_text,
            "variables": {"keyword": keyword.word, "phone": phone},
            "compliance": False,
        }
        for action in keyword.actions
        if action.kind == "auto_reply"
    ]


def _inbound_event(flow: _Flow, subscription_ids: list[int]) -> customer_webhooks.InboundEvent:
    report = flow.report
    extra: dict[str, Any] = {}
    if flow.forward and flow.keyword is not None:
        extra["keyword"] = flow.keyword.word
    if report.media_urls:
        extra["media_urls"] = list(report.media_urls)
    return customer_webhooks.InboundEvent(
        account_id=flow.account_id,
        message_id=flow.message_id,
        sender=flow.phone,
        to=flow.number.number,
        body=report.body,
        channel=report.channel,
        received_at=report.at,
        extra=extra or None,
        subscription_ids=subscription_ids,
    )


def _plan_of(flow: _Flow, route_id: int) -> _Plan:
    return _Plan(
        route_id=route_id,
        message_id=flow.message_id,
        account_id=flow.account_id,
        number=flow.number.number,
        phone=flow.phone,
        channel=flow.report.channel,
        rule=flow.rule,
        keyword=flow.keyword.word if flow.keyword else None,
        consent_action=flow.consent_action,
        replies=flow.replies,
        replies_done=not flow.replies,
        reply_message_ids=[],
        reply_errors=[],
    )


def _result_of(plan: _Plan, *, duplicate: bool) -> InboundResult:
    return InboundResult(
        message_id=plan.message_id,
        account_id=plan.account_id,
        route=plan.rule,
        duplicate=duplicate,
        keyword=plan.keyword,
        consent_action=plan.consent_action,
        reply_message_ids=tuple(plan.reply_message_ids),
        reply_errors=tuple(plan.reply_errors),
    )


_ROUTE_COLUMNS = (
    "id", "dedupe_key", "message_id", "account_id", "number_id", "number", "phone", "channel",
    "rule", "keyword_id", "consent_action", "replies", "replies_done", "reply_message_ids",
    "reply_errors", "created_at",
)  # fmt: skip


async def _store_routes(
    flows: Sequence[tuple[str, _Flow]],
    plans: Sequence[_Plan],
    outcomes: Sequence[InboundResult | _Replying],
) -> None:
    """The wave's routes in one bulk write, after its replies: written with what the
    replies became (done: they commit together), so a replay never sends them again."""
    stamp = bulk_value(now())
    rows = []
    for (key, flow), plan, outcome in zip(flows, plans, outcomes, strict=True):
        result = outcome.result() if isinstance(outcome, _Replying) else outcome
        rows.append(
            (
                plan.route_id, key, plan.message_id, plan.account_id, flow.number.id,
                plan.number, plan.phone, plan.channel, plan.rule,
                flow.keyword.id if flow.keyword else None, plan.consent_action,
                json.dumps(plan.replies), True, json.dumps(list(result.reply_message_ids)),
                json.dumps(list(result.reply_errors)), stamp,
            )
        )  # fmt: skip
    await copy_rows("inbound_route", _ROUTE_COLUMNS, rows)


def _reply_key(plan: _Plan, reply: dict[str, Any]) -> tuple[Any, ...]:
    """Replies that one send may carry to many phones: same account, number, channel, text
    and kind; the phone variable matters only when the text uses it."""
    variables = _shared_variables(reply)
    if "phone" in fields_in(reply["body"]):
        variables["phone"] = plan.phone
    shared = json.dumps(variables, sort_keys=True)
    return (plan.account_id, plan.number, plan.channel, reply["body"], reply["compliance"], shared)


def _shared_variables(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply["variables"].items() if k != "phone"}


async def _send_pending(pending: list[_Replying], touches: list[_Touch]) -> None:
    """Accept the waiting replies, each message's in its own order (every first reply, then
    every second one), one send per reply key and set of distinct phones; the replies'
    conversation touches are added to `touches`."""
    for index in range(max(len(waiting.plan.replies) for waiting in pending) if pending else 0):
        sends: dict[tuple[Any, ...], list[list[_Replying]]] = {}
        for waiting in pending:
            if index >= len(waiting.plan.replies):
                continue
            batches = sends.setdefault(_reply_key(waiting.plan, waiting.plan.replies[index]), [])
            phone = waiting.plan.phone
            batch = next((b for b in batches if all(w.plan.phone != phone for w in b)), None)
            if batch is None:
                batches.append(batch := [])
            batch.append(waiting)
        for batches in sends.values():
            for batch in batches:
                await _send_together(batch, index, touches)


async def _send_together(batch: list[_Replying], index: int, touches: list[_Touch]) -> None:
    """One send of the same reply to the batch's phones; refused whole (credits, say), each
    phone's reply is tried on its own, as it would have been alone."""
    first = batch[0].plan
    reply = first.replies[index]
    if len(batch) > 1:
        request = _reply_request(first, index, reply, [w.plan.phone for w in batch])
        routes = {waiting.plan.phone: waiting.plan.route_id for waiting in batch}
        try:
            result = await _write_reply(request, first, routes, reply, touches)
        except DomainError:
            pass
        else:
            for waiting in batch:
                waiting.sent[index] = _phone_outcome(result, waiting.plan.phone, index)
            return
    for waiting in batch:
        waiting.sent[index] = await _send_reply(
            waiting.plan, index, waiting.plan.replies[index], touches
        )


def _phone_outcome(
    result: sending.SendResult, phone: str, index: int
) -> tuple[list[int], list[tuple[int, ...]], str | None]:
    ids = [a.message_id for a in result.accepted if a.to == phone and a.message_id is not None]
    chunks = [tuple(i for i in chunk if i in ids) for chunk in result.chunks]
    reasons = ", ".join(reason for to, reason in result.skipped if to == phone)
    error = f"reply {index + 1}: not sent ({reasons})" if reasons and not ids else None
    return ids, [c for c in chunks if c], error


async def _route_alone(report: InboundReport) -> InboundResult:
    """One message in transactions of its own: routing, then each reply."""
    dedupe_key = _dedupe_key(report)
    existing = await _existing(dedupe_key)
    if existing is not None:
        return await _finish(existing, duplicate=True)
    number = await numbers.find_number(report.to)
    if number is None:
        return InboundResult(message_id=None, account_id=None, route="unknown_number")
    try:
        # Concurrent inbound on PostgreSQL can deadlock on the replies' credit reservation.
        plan = await retrying_deadlocks(lambda: _receive(dedupe_key, report, number))
    except Exception as exc:
        # A concurrent delivery of the same message won the unique key: it is that one.
        if is_unique_violation(exc) and (existing := await _existing(dedupe_key)):
            return await _finish(existing, duplicate=True)
        raise
    return await _finish(plan, duplicate=False)


async def _receive(dedupe_key: str, report: InboundReport, number: numbers.NumberView) -> _Plan:
    """The routing transaction of a message routed alone."""
    async with transaction():
        if (existing := await _existing(dedupe_key)) is not None:
            return existing
        reads = _Reads()
        return await _route_flow(await _read_sender(dedupe_key, report, number, reads), reads)


async def _route_flow(flow: _Flow, reads: _Reads) -> _Plan:
    """Decide, store, act, notify, remember the plan (inside the routing transaction)."""
    talking_to = await last_messaged_by(flow.number, flow.e164, reads) if flow.e164 else None
    await _decide(flow, reads, talking_to)
    flow.message_id = await _store_message(flow)
    await _act(flow, reads)
    await _notify(flow, reads)
    return await _record_route(flow)


async def _read_sender(
    dedupe_key: str, report: InboundReport, number: numbers.NumberView, reads: _Reads
) -> _Flow:
    """The sender in E.164, read in the region of our number (else the holder's)."""
    raw = (report.sender or "").strip()
    region = _region_of(number, await reads.of(default_region, number.holder_id))
    e164 = normalize_phone(raw, region)
    return _Flow(report, dedupe_key, number, phone=e164 or raw[:20], e164=e164)


async def _decide(flow: _Flow, reads: _Reads, talking_to: int | None) -> None:
    """Compliance words, then the keyword's owner, then the last sender on the number
    (`talking_to`, last_messaged_by), then the number's holder. A sender whose number
    cannot be read is still delivered to the inbox, but no consent event or keyword
    action can be tied to it."""
    holder_id = flow.number.holder_id
    holder = await reads.of(get_account, holder_id)
    body = flow.report.body
    answered = flow.report.provider_keyword
    if flow.e164 and answered in consent_keywords.KEYWORD_KINDS:
        # The provider recognised a compliance keyword (its own list, any language) and
        # answered it: the consent change is ours to record, the confirmation was sent.
        flow.kind = answered
    elif flow.e164:
        words = await reads.of(consent_keywords.keyword_lists, holder_id)
        flow.kind = await consent_keywords.classify_keyword(holder_id, body, lists=words)
    if flow.kind is None and flow.e164:
        word = keywords.first_word(body)
        flow.keyword = await reads.of(keywords.keyword_on, flow.number.id, word)
    if flow.kind is not None:
        flow.account_id, flow.rule = talking_to or holder.id, flow.kind
    elif flow.keyword is not None:
        flow.account_id, flow.rule = flow.keyword.account_id, "keyword"
    elif talking_to is not None:
        flow.account_id, flow.rule = talking_to, "last_messaged"
    else:
        flow.account_id, flow.rule = holder.id, "number_owner"


async def _store_message(flow: _Flow) -> int:
    report = flow.report
    rows = await Message.insert(
        Message(
            account_id=flow.account_id,
            direction="in",
            to_number=flow.number.number,
            from_number=flow.phone,
            body=report.body,
            channel=report.channel,
            media_urls=json.dumps(list(report.media_urls)),
            status="incoming_message",
            segments=0,
            provider=report.provider,
            provider_ref=report.provider_ref[:64],
            created_at=report.at,
            updated_at=report.at,
        )
    ).returning(Message.id)
    return int(rows[0]["id"])


async def _act(flow: _Flow, reads: _Reads) -> None:
    """Consent in the channel's group (a WhatsApp STOP is a `whatsapp` opt-out), the
    confirmation of a compliance word, and the keyword's actions."""
    channel = flow.report.channel
    if flow.kind in ("opt_out", "opt_in") and flow.e164:
        record = (
            consent_events.record_opt_out
            if flow.kind == "opt_out"
            else consent_events.record_opt_in
        )
        await record(
            flow.account_id, flow.e164, channel, source="keyword", message_id=flow.message_id
        )
        flow.consent_action = flow.kind
    await _confirm(flow, reads)
    if flow.keyword is not None and flow.e164:
        flow.consent_action, more, flow.forward = await _run_actions(
            flow.keyword, flow.e164, channel, flow.message_id, reads
        )
        flow.replies.extend(more)


async def _notify(flow: _Flow, reads: _Reads) -> None:
    """The inbound webhook event (in the routing transaction: it exists exactly when the
    message does) and the inbox conversation."""
    report = flow.report
    subscription_ids = await reads.of(customer_webhooks.inbound_subscriptions, flow.account_id)
    await customer_webhooks.queue_inbound_events([_inbound_event(flow, subscription_ids)])
    await _touch_conversation(
        flow.account_id, flow.phone, flow.number.number, report.body, "in", report.at, unread=1
    )


async def _record_route(flow: _Flow) -> _Plan:
    inserted = await InboundRoute.insert(
        InboundRoute(
            dedupe_key=flow.dedupe_key,
            message_id=flow.message_id,
            account_id=flow.account_id,
            number_id=flow.number.id,
            number=flow.number.number,
            phone=flow.phone,
            channel=flow.report.channel,
            rule=flow.rule,
            keyword_id=flow.keyword.id if flow.keyword else None,
            consent_action=flow.consent_action,
            replies=json.dumps(flow.replies),
            # Nothing to answer: done as it is stored (no second write).
            replies_done=not flow.replies,
        )
    ).returning(InboundRoute.id)
    return _plan_of(flow, int(inserted[0]["id"]))


async def _run_actions(
    keyword: keywords.KeywordView,
    phone: str,
    channel: str,
    message_id: int,
    reads: _Reads,
) -> tuple[str | None, list[dict[str, Any]], bool]:
    """List and consent actions first (a reply must see the opt-in), then the rest; the
    last value tells whether the inbound webhook event carries the keyword (forward)."""
    consent_action = None
    for action in keyword.actions:
        if action.kind != "add_to_list" or action.list_id is None:
            continue
        if not await reads.of(keywords.list_belongs_to, keyword.account_id, action.list_id):
            continue  # the list was deleted since; the other actions still run
        contact = await contacts.find_contact_by_phone(keyword.account_id, phone)
        if contact is None:
            contact = await contacts.create_contact(
                actor=KEYWORD_ACTOR, account_id=keyword.account_id, phone=phone
            )
        await contacts.add_to_list(
            actor=None,
            account_id=keyword.account_id,
            list_id=action.list_id,
            contact_ids=[contact.id],
        )
        if consent_action is None:
            await consent_events.record_opt_in(
                keyword.account_id, phone, channel, source="keyword", message_id=message_id
            )
            consent_action = "opt_in"
    replies = _keyword_replies(keyword, phone)
    forward = any(action.kind == "forward_webhook" for action in keyword.actions)
    return consent_action, replies, forward


async def _finish(plan: _Plan, *, duplicate: bool) -> InboundResult:
    """Send the planned replies once (also heals a crash between routing and replying)."""
    chunks: list[tuple[int, ...]] = []
    reply_ids = list(plan.reply_message_ids)
    errors = list(plan.reply_errors)
    if not plan.replies_done:
        for index, reply in enumerate(plan.replies):
            sent, reply_chunks, error = await _send_reply(plan, index, reply)
            reply_ids.extend(sent)
            chunks.extend(reply_chunks)
            if error:
                errors.append(error)
        await _mark_replied(plan.route_id, reply_ids, errors)
    return InboundResult(
        message_id=plan.message_id,
        account_id=plan.account_id,
        route=plan.rule,
        duplicate=duplicate,
        keyword=plan.keyword,
        consent_action=plan.consent_action,
        reply_message_ids=tuple(reply_ids),
        reply_chunks=tuple(chunks),
        reply_errors=tuple(errors),
    )


async def _mark_replied(route_id: int, reply_ids: Sequence[int], errors: Sequence[str]) -> None:
    """The route's replies are done: what they became, so a replay never sends them again."""
    await InboundRoute.update(
        {
            InboundRoute.replies_done: True,
            InboundRoute.reply_message_ids: json.dumps(list(reply_ids)),
            InboundRoute.reply_errors: json.dumps(list(errors)),
        }
    ).where(InboundRoute.id == route_id)


def _reply_request(
    plan: _Plan, index: int, reply: dict[str, Any], phones: list[str] | None = None
) -> sending.SendRequest:
    """The send of one planned reply: to the plan's phone under the route's own
    idempotency key, or (`phones`) to several phones in one group's transaction, where
    the routes' replies_done, written with it, keeps a replay from sending it again."""
    return sending.SendRequest(
        account_id=plan.account_id,
        numbers=phones or [plan.phone],
        body=reply["body"],
        variables=reply["variables"] if phones is None else _shared_variables(reply),
        sender=plan.number,
        channel=REPLY_CHANNEL.get(plan.channel, plan.channel),
        idempotency_key=f"inbound:{plan.route_id}:{index}" if phones is None else None,
        permissions=sending.PLATFORM_SEND,
        compliance_reply=bool(reply["compliance"]),
        quiet_exempt=True,  # an answer to what the person just sent
    )


async def _write_reply(
    request: sending.SendRequest,
    plan: _Plan,
    routes: dict[str, int],
    reply: dict[str, Any],
    touches: list[_Touch] | None = None,
) -> sending.SendResult:
    """Accept a reply and tie each message to its route (`routes`: phone -> route id);
    the conversations are touched at once, or added to `touches` (a wave writes them
    together once its replies are accepted)."""
    kind = "confirmation" if reply["compliance"] else "auto_reply"

    async def write() -> sending.SendResult:
        # In a group's transaction, a savepoint: a refused reply leaves nothing behind.
        async with savepoint():
            result = await sending.accept_send(request, actor=REPLY_ACTOR)
            accepted = [a for a in result.accepted if a.message_id is not None]
            if accepted and not result.replayed:
                await InboundReply.insert(
                    *[
                        InboundReply(
                            # Alone, every message is the route's; in a group, by phone.
                            route_id=routes[a.to] if len(routes) > 1 else plan.route_id,
                            message_id=a.message_id,
                            kind=kind,
                        )
                        for a in accepted
                    ]
                )
                sent = [
                    _Touch(plan.account_id, a.to, plan.number, request.body or "", "out", now())
                    for a in accepted
                ]
                if touches is None:
                    await _touch_conversations(sent)
                else:
                    touches.extend(sent)
        return result

    # A reply reserves credits beside concurrent refunds: a deadlock's victim, rolled back
    # whole, is written again.
    return await retrying_deadlocks(write)


async def _send_reply(
    plan: _Plan, index: int, reply: dict[str, Any], touches: list[_Touch] | None = None
) -> tuple[list[int], list[tuple[int, ...]], str | None]:
    try:
        result = await _write_reply(
            _reply_request(plan, index, reply), plan, {plan.phone: plan.route_id}, reply, touches
        )
    except DomainError as exc:
        # The inbound message and its consent event stand; the reply could not be sent.
        return [], [], f"reply {index + 1}: {exc.message}"
    ids = [a.message_id for a in result.accepted if a.message_id is not None]
    skipped = ", ".join(reason for _, reason in result.skipped)
    error = f"reply {index + 1}: not sent ({skipped})" if skipped and not ids else None
    return ids, [tuple(c) for c in result.chunks], error


# ---------------------------------------------------------------- the inbox


@dataclass(frozen=True)
class ConversationView:
    id: int
    phone: str
    number: str
    unread: int
    last_body: str
    last_direction: str
    last_message_at: datetime
    name: str = ""  # the contact's first and last name when the phone is a contact


@dataclass(frozen=True)
class ThreadMessage:
    id: int
    direction: str
    body: str
    status: str
    at: datetime

    @property
    def is_settling(self) -> bool:
        return self.direction == "out" and self.status in SETTLING_STATUSES


@dataclass(frozen=True)
class _Touch:
    """One message's mark on its conversation (_touch_conversations)."""

    account_id: int
    phone: str
    number: str
    body: str
    direction: str
    at: datetime
    unread: int = 0


async def _touch_conversation(
    account_id: int,
    phone: str,
    number: str,
    body: str,
    direction: str,
    at: datetime,
    *,
    unread: int = 0,
) -> None:
    """Upsert the conversation row in one statement (concurrent inbound never loses a count)."""
    await _touch_conversations([_Touch(account_id, phone, number, body, direction, at, unread)])


_UPSERT_CONVERSATIONS = (
    "INSERT INTO inbox_conversation "
    "(account_id, key, phone, number, unread, last_body, last_direction, last_message_at) "
    "VALUES %s "
    "ON CONFLICT (key) DO UPDATE SET unread = inbox_conversation.unread + excluded.unread, "
    "last_body = excluded.last_body, last_direction = excluded.last_direction, "
    "last_message_at = excluded.last_message_at"
)


async def _touch_conversations(touches: Sequence[_Touch]) -> None:
    """The touches in their order, as one upsert per 200 conversations: a conversation
    touched twice counts both unread marks and keeps the later message's preview."""
    merged: dict[str, _Touch] = {}
    for touch in touches:
        key = f"{touch.account_id}|{touch.phone}|{touch.number}"
        earlier = merged.pop(key, None)
        merged[key] = replace(touch, unread=touch.unread + (earlier.unread if earlier else 0))
    for part in chunked(sorted(merged.items()), 200):  # key order: one lock order for all
        args: list[Any] = []
        for key, t in part:
            args += [t.account_id, key, t.phone, t.number, t.unread, t.body[:PREVIEW]]
            args += [t.direction, bulk_value(t.at)]
        values = ", ".join(f"({placeholders(8)})" for _ in part)
        await run_sql(_UPSERT_CONVERSATIONS % values, *args)


_CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.phone,
    Conversation.number,
    Conversation.unread,
    Conversation.last_body,
    Conversation.last_direction,
    Conversation.last_message_at,
)


async def conversations(account_id: int, *, limit: int = 200) -> list[ConversationView]:
    """The account's conversations, most recent first."""
    rows = (
        await Conversation.select(*_CONVERSATION_COLUMNS)
        .where(Conversation.account_id == account_id)
        .order_by(Conversation.last_message_at, ascending=False)
        .limit(limit)
    )
    names = await _contact_names(account_id, [r["phone"] for r in rows])
    return [ConversationView(**r, name=names.get(r["phone"], "")) for r in rows]


async def _contact_names(account_id: int, phones: list[str]) -> dict[str, str]:
    """The names of the account's contacts with these phones (one query), phone -> name."""
    if not phones:
        return {}
    rows = await Contact.select(Contact.phone, Contact.first_name, Contact.last_name).where(
        (Contact.account_id == account_id) & Contact.phone.is_in(list(set(phones)))
    )
    names = {r["phone"]: f"{r['first_name']} {r['last_name']}".strip() for r in rows}
    return {phone: name for phone, name in names.items() if name}


async def get_conversation(account_id: int, conversation_id: int) -> ConversationView:
    row = (
        await Conversation.select(*_CONVERSATION_COLUMNS)
        .where((Conversation.account_id == account_id) & (Conversation.id == conversation_id))
        .first()
    )
    if row is None:
        raise NotFound("conversation not found")
    names = await _contact_names(account_id, [row["phone"]])
    return ConversationView(**row, name=names.get(row["phone"], ""))


async def thread(account_id: int, conversation_id: int, *, limit: int = 200) -> list[ThreadMessage]:
    """Both directions between the phone and the number, oldest first (the last `limit`)."""
    c = await get_conversation(account_id, conversation_id)
    rows = (
        await Message.select(
            Message.id, Message.direction, Message.body, Message.status, Message.created_at
        )
        .where(
            (Message.account_id == account_id)
            & (
                (
                    (Message.direction == "in")
                    & (Message.from_number == c.phone)
                    & (Message.to_number == c.number)
                )
                | (
                    (Message.direction == "out")
                    & (Message.to_number == c.phone)
                    & (Message.from_number == c.number)
                )
            )
        )
        .order_by(Message.id, ascending=False)
        .limit(limit)
    )
    return [
        ThreadMessage(
            id=r["id"],
            direction=r["direction"],
            body=r["body"],
            status=r["status"],
            at=r["created_at"],
        )
        for r in reversed(rows)
    ]


async def mark_read(account_id: int, conversation_id: int) -> None:
    await get_conversation(account_id, conversation_id)
    await Conversation.update({Conversation.unread: 0, Conversation.last_read_at: now()}).where(
        (Conversation.account_id == account_id) & (Conversation.id == conversation_id)
    )


async def reply(
    *,
    actor: audit.Actor,
    account_id: int,
    conversation_id: int,
    body: str | None = None,
    template_id: int | None = None,
    permissions: frozenset[str],
    idempotency_key: str | None = None,
) -> Any:
    """Answer a conversation through the normal send pipeline (consent, credits): free
    text (`body`, needs messages.send) or an approved template (`template_id`, its merge
    fields filled from the phone's contact), not both.

    Returns the send result; its chunks go to the broker on commit. A recipient
    who opted out is skipped (`opted_out`), exactly as on any other send.
    """
    c = await get_conversation(account_id, conversation_id)
    request = sending.SendRequest(
        account_id=account_id,
        numbers=[c.phone],
        body=body,
        template_id=template_id,
        sender=c.number,
        idempotency_key=idempotency_key,
        permissions=permissions,
        quiet_exempt=True,  # a reply in a conversation the person started
    )
    async with transaction():
        result = await sending.accept_send(request, actor=actor)
        if result.accepted:
            text = body or ""
            if (message_id := result.accepted[0].message_id) is not None:
                sent = await Message.select(Message.body).where(Message.id == message_id).first()
                text = sent["body"] if sent else text  # the template as rendered
            await _touch_conversation(account_id, c.phone, c.number, text, "out", now())
            await Conversation.update(
                {Conversation.unread: 0, Conversation.last_read_at: now()}
            ).where(Conversation.id == c.id)
    return result
