"""Customer webhooks: the URLs an account registers for message status and inbound events,
their signing secrets (sealed, shown once), the outbox of event deliveries written in the
transaction of the change that caused them, each attempt to post one (status code,
latency) and the resend of a delivery.

Every delivery is signed: `X-Portal-Signature: sha256=<hex HMAC-SHA256(secret,
"<X-Portal-Timestamp>.<raw body>")>`; `X-Portal-Delivery` is the event's id (the same on
every retry, so a receiver can drop repeats) and `X-Portal-Event` its type. A worker posts
it after commit and retries with exponential backoff until the receiver answers 2xx.

The HTTP request itself goes through a `WebhookPoster` (the port below), implemented in
tasks/ with httpx: this module decides what is posted, signs it and records the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlparse

from tenants import handoff, secrets_box
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import (
    as_datetime,
    first_or_404,
    is_sqlite,
    placeholders,
    run_sql,
    shared_read,
    transaction,
    view_of,
)
from tenants.errors import FieldErrors, ValidationFailed
from tenants.providers.codes import explain_error
from tenants.settings import get_settings
from tenants.webhooks.tables import URL_MAX, WebhookAttempt, WebhookDelivery, WebhookSubscription

SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
EVENT_HEADER = "X-Portal-Event"
DELIVERY_HEADER = "X-Portal-Delivery"
EVENT_KINDS = {"status": "message.status", "inbound": "message.inbound"}
MAX_SUBSCRIPTIONS = 10


def max_attempts() -> int:
    return get_settings().webhooks.max_attempts


def request_timeout() -> float:
    return get_settings().webhooks.timeout_seconds


def stale_after() -> timedelta:
    """A pending delivery untouched this long lost its queued work (the longest backoff
    between two attempts plus a margin): the sweeper hands it to the broker again."""
    return timedelta(seconds=get_settings().webhooks.stale_seconds)


def private_targets_allowed() -> bool:
    """Receivers on loopback or private addresses (tests, on-premise installs)."""
    return get_settings().webhooks.allow_private_targets


# --- views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    account_id: int
    url: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    id: int
    subscription_id: int
    event_id: str
    event: str
    message_id: int | None
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    payload: str = ""


@dataclass(frozen=True)
class AttemptView:
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str
    at: datetime


def _subscription(row: dict[str, Any]) -> SubscriptionView:
    return view_of(
        SubscriptionView,
        row,
        events=tuple(e for e in (row["events"] or "").split(",") if e),
        active=bool(row["active"]),
    )


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Portal-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def validate_url(raw: str) -> str:
    url = (raw or "").strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValidationFailed({"url": "Enter an http:// or https:// URL."})
    if len(url) > URL_MAX:
        raise ValidationFailed({"url": f"A URL has at most {URL_MAX} characters."})
    if parsed.username or parsed.password:
        raise ValidationFailed(
            {"url": "Put no user name or password in the URL; deliveries are signed."}
        )
    return url


def _events(raw: Sequence[str]) -> str:
    chosen = [e for e in EVENT_KINDS if e in set(raw)]
    if not chosen:
        raise ValidationFailed(
            {"events": "Choose at least one event: message status or inbound messages."}
        )
    return ",".join(chosen)


# --- subscriptions -------------------------------------------------------------------------


async def list_subscriptions(account_id: int) -> list[SubscriptionView]:
    rows = (
        await WebhookSubscription.select()
        .where(WebhookSubscription.account_id == account_id)
        .order_by(WebhookSubscription.id)
    )
    return [_subscription(r) for r in rows]


async def get_subscription(account_id: int, subscription_id: int) -> SubscriptionView:
    row = await first_or_404(
        WebhookSubscription.select().where(
            (WebhookSubscription.id == subscription_id)
            & (WebhookSubscription.account_id == account_id)
        ),
        f"webhook {subscription_id} not found",
    )
    return _subscription(row)


async def add_subscription(
    actor: audit.Actor, *, account_id: int, url: str, events: Sequence[str]
) -> tuple[SubscriptionView, str]:
    """Register a URL; returns it with its signing secret, shown this once."""
    errors = FieldErrors()
    clean = events_text = ""
    with errors.collected():
        clean = validate_url(url)
    with errors.collected():
        events_text = _events(events)
    errors.raise_if_any()
    secret = "whsec_" + secrets.token_urlsafe(32)
    async with transaction():
        count = await WebhookSubscription.count().where(
            WebhookSubscription.account_id == account_id
        )
        if count >= MAX_SUBSCRIPTIONS:
            raise ValidationFailed({"url": f"An account has at most {MAX_SUBSCRIPTIONS} webhooks."})
        rows = await WebhookSubscription.insert(
            WebhookSubscription(
                account_id=account_id,
                url=clean,
                events=events_text,
                secret_sealed=secrets_box.encrypt(secret),
                created_by=actor.label,
            )
        ).returning(WebhookSubscription.id)
        subscription_id = rows[0]["id"]
        await audit.record(
            actor,
            account_id=account_id,
            action="webhook.create",
            target_type="webhook",
            target_id=subscription_id,
            after={"url": clean, "events": events_text},
        )
        return await get_subscription(account_id, subscription_id), secret


async def rotate_secret(actor: audit.Actor, *, account_id: int, subscription_id: int) -> str:
    """A new signing secret (shown once); deliveries from now on are signed with it."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    async with transaction():
        await get_subscription(account_id, subscription_id)
        await WebhookSubscription.update(
            {
                WebhookSubscription.secret_sealed: secrets_box.encrypt(secret),
                WebhookSubscription.updated_at: now(),
            }
        ).where(WebhookSubscription.id == subscription_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="webhook.rotate_secret",
            target_type="webhook",
            target_id=subscription_id,
        )
    return secret


async def set_active(
    actor: audit.Actor, *, account_id: int, subscription_id: int, active: bool
) -> SubscriptionView:
    async with transaction():
        before = await get_subscription(account_id, subscription_id)
        if before.active != active:
            await WebhookSubscription.update(
                {WebhookSubscription.active: active, WebhookSubscription.updated_at: now()}
            ).where(WebhookSubscription.id == subscription_id)
            await audit.record(
                actor,
                account_id=account_id,
                action="webhook.enable" if active else "webhook.disable",
                target_type="webhook",
                target_id=subscription_id,
                before={"active": before.active},
                after={"active": active},
            )
        return await get_subscription(account_id, subscription_id)


async def remove_subscription(actor: audit.Actor, *, account_id: int, subscription_id: int) -> None:
    """Stop and forget a webhook; its pending deliveries are marked failed, the log stays."""
    async with transaction():
        before = await get_subscription(account_id, subscription_id)
        await WebhookSubscription.delete().where(WebhookSubscription.id == subscription_id)
        await WebhookDelivery.update(
            {
                WebhookDelivery.status: "failed",
                WebhookDelivery.last_error: "the webhook was removed",
            }
        ).where(
            (WebhookDelivery.subscription_id == subscription_id)
            & (WebhookDelivery.status == "pending")
        )
        await audit.record(
            actor,
            account_id=account_id,
            action="webhook.remove",
            target_type="webhook",
            target_id=subscription_id,
            before={"url": before.url, "events": ",".join(before.events)},
        )


# --- producing events (inside the transaction of the change) ---------------------------------


async def _subscribers(account_ids: Sequence[int], kind: str) -> dict[int, list[int]]:
    ids = tuple(sorted(set(account_ids)))
    if not ids:
        return {}

    async def load() -> dict[int, tuple[int, ...]]:
        rows = await run_sql(
            "SELECT id, account_id, events FROM webhook_subscription WHERE active = {} "  # noqa: S608
            f"AND account_id IN ({placeholders(len(ids))})",
            _true(),
            *ids,
        )
        found: dict[int, list[int]] = {}
        for row in rows:
            if kind in (row["events"] or "").split(","):
                found.setdefault(row["account_id"], []).append(row["id"])
        return {account_id: tuple(found_ids) for account_id, found_ids in found.items()}

    # Kept across an inbound group's blocks while cache_version stands (webhook_subscription
    # is watched); each caller gets its own lists.
    kept = await shared_read(("subscribers", kind, ids), load, settled=True)
    return {account_id: list(found_ids) for account_id, found_ids in kept.items()}


def _true() -> Any:
    return 1 if is_sqlite() else True


def _iso(value: Any) -> str | None:
    moment = as_datetime(value)
    return moment.isoformat() if moment else None


async def _insert_deliveries(
    rows: list[tuple[int, int, str, str, int | None, dict[str, Any]]],
) -> int:
    """(account_id, subscription_id, dedupe_key, event, message_id, payload) -> new rows."""
    inserted = 0
    stamp = now()
    for start in range(0, len(rows), 200):
        part = rows[start : start + 200]
        args: list[Any] = []
        for account_id, subscription_id, key, event, message_id, payload in part:
            event_id = str(uuid.uuid4())
            body = {"id": event_id, "event": event, **payload}
            args.extend(
                (
                    account_id,
                    subscription_id,
                    event_id,
                    key,
                    event,
                    message_id,
                    json.dumps(body, sort_keys=True, default=str),
                    "pending",
                    0,
                    stamp,
                )
            )
        values = ", ".join(f"({placeholders(10)})" for _ in part)
        result = await run_sql(
            "INSERT INTO webhook_event_delivery (account_id, subscription_id, event_id, dedupe_key, "  # noqa: S608
            f"event, message_id, payload, status, attempts, created_at) VALUES {values} "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            *args,
        )
        inserted += len(result)
    if inserted:
        await handoff.webhooks_queued()
    return inserted


async def _message_rows(ids: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        rows.extend(
            await run_sql(
                "SELECT id, account_id, campaign_id, batch_id, channel, to_number, from_number, "  # noqa: S608
                f"direction FROM message WHERE id IN ({placeholders(len(part))})",
                *part,
            )
        )
    return rows


async def _sent_times(message_ids: list[int]) -> dict[int, Any]:
    """When each message was first reported sent (applied events only)."""
    sent_at: dict[int, Any] = {}
    for start in range(0, len(message_ids), 500):
        part = message_ids[start : start + 500]
        for r in await run_sql(
            "SELECT message_id, MIN(at) AS at FROM message_event WHERE status = 'sent' "  # noqa: S608
            f"AND applied = {{}} AND message_id IN ({placeholders(len(part))}) GROUP BY message_id",
            _true(),
            *part,
        ):
            sent_at[r["message_id"]] = r["at"]
    return sent_at


def _status_payload(
    row: dict[str, Any], status: str, error_code: str | None, stamp: Any, sent: Any
) -> dict[str, Any]:
    return {
        "occurred_at": stamp.isoformat(),
        "account_id": row["account_id"],
        "message_id": row["id"],
        "message_type": "outbound",
        "action_type": row["channel"],
        "campaign_id": row["campaign_id"],
        "batch_id": row["batch_id"],
        "recipient": row["to_number"],
        "sender": row["from_number"],
        "sent_timestamp": _iso(sent),
        "status": status,
        "error": {"code": error_code, "description": explain_error(error_code)}
        if error_code
        else None,
    }


async def queue_status_events(moves: Sequence[tuple[int, str, str | None]]) -> int:
    """Deliveries for messages that just changed status (message id, status, error code);
    call inside the transaction that applied them. Nothing is read when no account of
    these messages has a status webhook."""
    if not moves:
        return 0
    # The common case (no account has a status webhook) costs one indexed probe.
    if not await run_sql(
        "SELECT 1 AS x FROM webhook_subscription WHERE active = {} LIMIT 1", _true()
    ):
        return 0
    rows = await _message_rows(sorted({m[0] for m in moves}))
    subscribers = await _subscribers([r["account_id"] for r in rows], "status")
    if not subscribers:
        return 0
    by_id = {r["id"]: r for r in rows if r["account_id"] in subscribers}
    sent_at = await _sent_times(sorted(by_id))
    stamp = now()
    deliveries: list[tuple[int, int, str, str, int | None, dict[str, Any]]] = []
    for message_id, status, error_code in moves:
        row = by_id.get(message_id)
        if row is None:
            continue
        sent = sent_at.get(message_id) or (stamp if status == "sent" else None)
        payload = _status_payload(row, status, error_code, stamp, sent)
        for subscription_id in subscribers[row["account_id"]]:
            deliveries.append(
                (
                    row["account_id"],
                    subscription_id,
                    f"{subscription_id}:status:{message_id}:{status}",
                    EVENT_KINDS["status"],
                    message_id,
                    payload,
                )
            )
    return await _insert_deliveries(deliveries)


async def inbound_subscriptions(account_id: int) -> list[int]:
    """The account's active subscriptions to inbound events."""
    return (await _subscribers([account_id], "inbound")).get(account_id, [])


async def inbound_subscriptions_of(account_ids: Sequence[int]) -> dict[int, list[int]]:
    """inbound_subscriptions of several accounts in one query (every one of them a key)."""
    found = await _subscribers(account_ids, "inbound")
    return {account_id: found.get(account_id, []) for account_id in account_ids}


@dataclass(frozen=True)
class InboundEvent:
    """One inbound message for the account's inbound webhooks (queue_inbound_events)."""

    account_id: int
    message_id: int
    sender: str
    to: str
    body: str
    channel: str
    received_at: datetime
    extra: dict[str, Any] | None = None
    subscription_ids: Sequence[int] | None = None


async def queue_inbound_event(
    *,
    account_id: int,
    message_id: int,
    sender: str,
    to: str,
    body: str,
    channel: str,
    received_at: datetime,
    extra: dict[str, Any] | None = None,
    subscription_ids: Sequence[int] | None = None,
) -> int:
    """Deliveries of one inbound message to the account's inbound webhooks
    (`subscription_ids`: `inbound_subscriptions(account_id)`, when the caller read them)."""
    return await queue_inbound_events(
        [
            InboundEvent(
                account_id=account_id,
                message_id=message_id,
                sender=sender,
                to=to,
                body=body,
                channel=channel,
                received_at=received_at,
                extra=extra,
                subscription_ids=subscription_ids,
            )
        ]
    )


async def queue_inbound_events(events: Sequence[InboundEvent]) -> int:
    """Deliveries of many inbound messages (an inbound group's) in one write; returns
    how many were new."""
    rows: list[tuple[int, int, str, str, int | None, dict[str, Any]]] = []
    for event in events:
        subscription_ids = event.subscription_ids
        if subscription_ids is None:
            subscription_ids = await inbound_subscriptions(event.account_id)
        if not subscription_ids:
            continue
        payload = {
            "occurred_at": now().isoformat(),
            "account_id": event.account_id,
            "message_id": event.message_id,
            "message_type": "inbound",
            "action_type": event.channel,
            "campaign_id": None,
            "batch_id": None,
            "recipient": event.to,
            "sender": event.sender,
            "sent_timestamp": event.received_at.isoformat(),
            "status": "incoming_message",
            "error": None,
            "body": event.body,
            **(event.extra or {}),
        }
        rows.extend(
            (
                event.account_id,
                subscription_id,
                f"{subscription_id}:inbound:{event.message_id}",
                EVENT_KINDS["inbound"],
                event.message_id,
                payload,
            )
            for subscription_id in subscription_ids
        )
    return await _insert_deliveries(rows) if rows else 0


# --- handing deliveries to workers -----------------------------------------------------------------


async def take_due(limit: int = 500) -> list[int]:
    """Pending deliveries never handed to the broker, or whose work was lost: marked as
    handed over in one conditional UPDATE, so two dispatchers never both take one."""
    stamp = now()
    cutoff = stamp - stale_after()
    async with transaction():
        rows = await run_sql(
            "SELECT id FROM webhook_event_delivery WHERE status = 'pending' "
            "AND (touched_at IS NULL OR touched_at < {}) ORDER BY id LIMIT {}",
            cutoff,
            limit,
        )
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        taken = await run_sql(
            "UPDATE webhook_event_delivery SET touched_at = {} "  # noqa: S608
            f"WHERE id IN ({placeholders(len(ids))}) AND status = 'pending' "
            "AND (touched_at IS NULL OR touched_at < {}) RETURNING id",
            stamp,
            *ids,
            cutoff,
        )
    return sorted(r["id"] for r in taken)


# --- posting ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    delivered: bool
    retry: bool  # failed with attempts left: the worker raises so Dramatiq backs off
    status_code: int | None = None
    error: str = ""


@dataclass(frozen=True)
class WebhookPost:
    """One signed POST to a receiver, ready to go out."""

    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float


@dataclass(frozen=True)
class PostAnswer:
    """What came back: the status code, or None and why no answer came (refused
    connection, timeout); redirects are answers, not followed."""

    status_code: int | None
    error: str = ""


class WebhookPoster(Protocol):
    async def post(self, request: WebhookPost) -> PostAnswer: ...


async def _refuse_private(url: str) -> str | None:
    """Receivers must be public unless the operator allows private ones (SSRF guard)."""
    if private_targets_allowed():
        return None
    host = urlparse(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
        ):
            return f"{host} resolves to a private address; deliveries go to public receivers only"
    return None


def _signed_headers(row: dict[str, Any], secret: str, body: bytes) -> dict[str, str]:
    """The delivery's headers, signed over the timestamp and body with the webhook secret."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "sms-portal-webhooks/1",
        EVENT_HEADER: row["event"],
        DELIVERY_HEADER: row["event_id"],
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


async def attempt_delivery(delivery_id: int, poster: WebhookPoster) -> AttemptOutcome:
    """Post one delivery once. Already delivered (or given up): nothing is posted. Only one
    worker holds a delivery at a time (a short claim), so a receiver never gets the same
    attempt twice."""
    stamp = now()
    claim_until = stamp + timedelta(seconds=request_timeout() + 30)
    # One connection for the claim and the read (SQLite opens one per statement otherwise).
    async with transaction():
        claimed = await run_sql(
            "UPDATE webhook_event_delivery SET claimed_until = {}, touched_at = {} "
            "WHERE id = {} AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < {}) "
            "RETURNING id, account_id, subscription_id, event_id, event, payload, attempts",
            claim_until,
            stamp,
            delivery_id,
            stamp,
        )
        if not claimed:
            return AttemptOutcome(delivered=False, retry=False)
        row = claimed[0]
        sub = (
            await WebhookSubscription.select(
                WebhookSubscription.url,
                WebhookSubscription.secret_sealed,
                WebhookSubscription.active,
            )
            .where(WebhookSubscription.id == row["subscription_id"])
            .first()
        )
    attempt = row["attempts"] + 1
    if sub is None or not sub["active"]:
        await _finish(row, attempt - 1, "failed", None, 0, "the webhook was removed or disabled")
        return AttemptOutcome(delivered=False, retry=False, error="webhook disabled")
    body = row["payload"].encode()
    headers = _signed_headers(row, secrets_box.decrypt(sub["secret_sealed"]), body)
    status_code: int | None = None
    error = await _refuse_private(sub["url"]) or ""
    started = time.perf_counter()
    if not error:
        answer = await poster.post(
            WebhookPost(url=sub["url"], body=body, headers=headers, timeout=request_timeout())
        )
        status_code = answer.status_code
        if status_code is None:
            error = answer.error[:500] or "no answer"
        elif not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    latency = int((time.perf_counter() - started) * 1000)
    if not error:
        await _finish(row, attempt, "delivered", status_code, latency, "")
        return AttemptOutcome(delivered=True, retry=False, status_code=status_code)
    final = attempt >= max_attempts()
    await _finish(row, attempt, "failed" if final else "pending", status_code, latency, error)
    return AttemptOutcome(delivered=False, retry=not final, status_code=status_code, error=error)


async def _finish(
    row: dict[str, Any], attempt: int, status: str, code: int | None, latency: int, error: str
) -> None:
    stamp = now()
    async with transaction():
        values: dict[Any, Any] = {
            WebhookDelivery.status: status,
            WebhookDelivery.attempts: attempt,
            WebhookDelivery.last_status_code: code,
            WebhookDelivery.last_latency_ms: latency,
            WebhookDelivery.last_error: error,
            WebhookDelivery.claimed_until: None,
            WebhookDelivery.touched_at: stamp,
        }
        if status == "delivered":
            values[WebhookDelivery.delivered_at] = stamp
        await WebhookDelivery.update(values).where(WebhookDelivery.id == row["id"])
        if attempt > row["attempts"]:
            await WebhookAttempt.insert(
                WebhookAttempt(
                    delivery_id=row["id"],
                    account_id=row["account_id"],
                    attempt=attempt,
                    status_code=code,
                    latency_ms=latency,
                    error=error,
                    at=stamp,
                )
            )


async def resend(actor: audit.Actor, *, account_id: int, delivery_id: int) -> int:
    """Send a delivery again (the same event id, so a receiver can tell it is a repeat);
    its attempts start over. Returns the delivery id to hand to a worker."""
    async with transaction():
        row = await first_or_404(
            WebhookDelivery.select(WebhookDelivery.id, WebhookDelivery.status).where(
                (WebhookDelivery.id == delivery_id) & (WebhookDelivery.account_id == account_id)
            ),
            f"delivery {delivery_id} not found",
        )
        await WebhookDelivery.update(
            {
                WebhookDelivery.status: "pending",
                WebhookDelivery.attempts: 0,
                WebhookDelivery.claimed_until: None,
                WebhookDelivery.touched_at: now(),
            }
        ).where(WebhookDelivery.id == delivery_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="webhook.resend",
            target_type="webhook_delivery",
            target_id=delivery_id,
            before={"status": row["status"]},
            after={"status": "pending"},
        )
    return delivery_id


# --- the delivery log ------------------------------------------------------------------------------


async def list_deliveries(
    account_id: int, *, status: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[DeliveryView]:
    if status and status not in ("pending", "delivered", "failed"):
        raise ValidationFailed({"status": "Choose pending, delivered or failed."})
    query = WebhookDelivery.select().where(WebhookDelivery.account_id == account_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    rows = await query.order_by(WebhookDelivery.id, ascending=False).limit(max(1, min(limit, 200)))
    urls = {
        s["id"]: s["url"]
        for s in await WebhookSubscription.select(
            WebhookSubscription.id, WebhookSubscription.url
        ).where(WebhookSubscription.account_id == account_id)
    }
    return [_delivery(r, urls.get(r["subscription_id"], "(removed)")) for r in rows]


def _delivery(row: dict[str, Any], url: str) -> DeliveryView:
    return view_of(
        DeliveryView,
        row,
        url=url,
    )


async def get_delivery(account_id: int, delivery_id: int) -> tuple[DeliveryView, list[AttemptView]]:
    row = await first_or_404(
        WebhookDelivery.select().where(
            (WebhookDelivery.id == delivery_id) & (WebhookDelivery.account_id == account_id)
        ),
        f"delivery {delivery_id} not found",
    )
    sub = (
        await WebhookSubscription.select(WebhookSubscription.url)
        .where(WebhookSubscription.id == row["subscription_id"])
        .first()
    )
    attempts = (
        await WebhookAttempt.select()
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.id)
    )
    return _delivery(row, sub["url"] if sub else "(removed)"), [
        AttemptView(a["attempt"], a["status_code"], a["latency_ms"], a["error"], a["at"])
        for a in attempts
    ]
