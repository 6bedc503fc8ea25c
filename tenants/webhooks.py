"""Customer webhooks: the URL an account receives its inbound events at, the signing secret
(sealed at rest, shown once), and the delivery log of every event sent there.

Each delivery is signed: `X-Portal-Signature: sha256=<hex HMAC-SHA256(secret,
"<X-Portal-Timestamp>.<raw body>")>`, so a receiver can reject altered or replayed bodies.
A delivery is written in the transaction of the event that caused it and posted after
commit by a worker, which retries with backoff until the receiver answers 2xx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx
from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants import audit
from tenants.accounts import Account, get_account
from tenants.clock import now
from tenants.db import transaction
from tenants.errors import NotFound, ValidationFailed
from tenants.secrets_box import decrypt as unseal
from tenants.secrets_box import encrypt as seal

MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
EVENT_HEADER = "X-Portal-Event"
DELIVERY_HEADER = "X-Portal-Delivery"


class WebhookEndpoint(Table, tablename="webhook_endpoint"):
    id: Serial
    account = ForeignKey(Account, unique=True, index=True)
    url = Varchar(length=500)
    secret_sealed = Text()
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class WebhookDelivery(Table, tablename="webhook_delivery"):
    id: Serial
    account = ForeignKey(Account, index=True)
    event = Varchar(length=40)
    url = Varchar(length=500)
    payload = Text()
    status = Varchar(length=16, default="pending", index=True)  # pending|delivered|failed
    attempts = Integer(default=0)
    last_status_code = Integer(null=True, default=None)
    last_error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    delivered_at = Timestamptz(null=True, default=None)


@dataclass(frozen=True)
class EndpointView:
    account_id: int
    url: str


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event: str
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def validate_url(raw: str) -> str:
    url = (raw or "").strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise ValidationFailed({"url": "Enter an http:// or https:// URL."})
    if len(url) > 500:
        raise ValidationFailed({"url": "A URL has at most 500 characters."})
    return url


async def get_endpoint(account_id: int) -> EndpointView | None:
    row = (
        await WebhookEndpoint.select(WebhookEndpoint.url)
        .where(WebhookEndpoint.account == account_id)
        .first()
    )
    return EndpointView(account_id=account_id, url=row["url"]) if row else None


async def set_endpoint(
    *, actor: audit.Actor, account_id: int, url: str, new_secret: bool = False
) -> str | None:
    """Set the account's webhook URL; returns the signing secret when one is (re)made.

    The secret is shown once: only its sealed form is kept.
    """
    clean = validate_url(url)
    async with transaction():
        await get_account(account_id)
        existing = (
            await WebhookEndpoint.select(WebhookEndpoint.id, WebhookEndpoint.url)
            .where(WebhookEndpoint.account == account_id)
            .first()
        )
        secret = "whsec_" + secrets.token_urlsafe(32) if new_secret or not existing else None
        values: dict[Any, Any] = {WebhookEndpoint.url: clean, WebhookEndpoint.updated_at: now()}
        if secret is not None:
            values[WebhookEndpoint.secret_sealed] = seal(secret)
        if existing:
            await WebhookEndpoint.update(values).where(WebhookEndpoint.id == existing["id"])
        else:
            await WebhookEndpoint.insert(
                WebhookEndpoint(account=account_id, url=clean, secret_sealed=seal(secret or ""))
            )
        await audit.record(
            actor,
            account_id=account_id,
            action="webhook.set",
            target_type="webhook_endpoint",
            target_id=account_id,
            before={"url": existing["url"]} if existing else None,
            after={"url": clean, "new_secret": secret is not None},
        )
        return secret


async def remove_endpoint(*, actor: audit.Actor, account_id: int) -> None:
    async with transaction():
        endpoint = await get_endpoint(account_id)
        if endpoint is None:
            raise NotFound("no webhook is set")
        await WebhookEndpoint.delete().where(WebhookEndpoint.account == account_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="webhook.remove",
            target_type="webhook_endpoint",
            target_id=account_id,
            before={"url": endpoint.url},
        )


async def queue_delivery(account_id: int, event: str, payload: dict[str, Any]) -> int | None:
    """Write a pending delivery to the account's endpoint (None when it has none).

    Call it inside the transaction of the event; post it after commit with `deliver`.
    """
    endpoint = await get_endpoint(account_id)
    if endpoint is None:
        return None
    rows = await WebhookDelivery.insert(
        WebhookDelivery(
            account=account_id,
            event=event,
            url=endpoint.url,
            payload=json.dumps(payload, sort_keys=True, default=str),
        )
    ).returning(WebhookDelivery.id)
    return int(rows[0]["id"])


class DeliveryFailed(Exception):
    """The receiver did not accept the event; the worker retries with backoff."""


async def deliver(delivery_id: int, *, client: httpx.AsyncClient | None = None) -> bool:
    """Post one delivery; True when it is (or already was) delivered or given up.

    Raises DeliveryFailed while attempts remain so the caller retries later. A delivery
    already marked delivered is not posted again.
    """
    row = (
        await WebhookDelivery.select(
            WebhookDelivery.id,
            WebhookDelivery.account,
            WebhookDelivery.event,
            WebhookDelivery.url,
            WebhookDelivery.payload,
            WebhookDelivery.status,
            WebhookDelivery.attempts,
        )
        .where(WebhookDelivery.id == delivery_id)
        .first()
    )
    if row is None or row["status"] != "pending":
        return True
    sealed = (
        await WebhookEndpoint.select(WebhookEndpoint.secret_sealed)
        .where(WebhookEndpoint.account == row["account"])
        .first()
    )
    if sealed is None:
        await _finish(delivery_id, "failed", None, "the account removed its webhook")
        return True
    body = row["payload"].encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: row["event"],
        DELIVERY_HEADER: str(row["id"]),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(unseal(sealed["secret_sealed"]), timestamp, body),
    }
    status_code: int | None = None
    error = ""
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as own:
                response = await own.post(row["url"], content=body, headers=headers)
        else:
            response = await client.post(row["url"], content=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    attempts = row["attempts"] + 1
    if not error:
        await _finish(delivery_id, "delivered", status_code, "", attempts=attempts)
        return True
    if attempts >= MAX_ATTEMPTS:
        await _finish(delivery_id, "failed", status_code, error, attempts=attempts)
        return True
    await WebhookDelivery.update(
        {
            WebhookDelivery.attempts: attempts,
            WebhookDelivery.last_status_code: status_code,
            WebhookDelivery.last_error: error,
        }
    ).where(WebhookDelivery.id == delivery_id)
    raise DeliveryFailed(error)


async def _finish(
    delivery_id: int,
    status: str,
    status_code: int | None,
    error: str,
    *,
    attempts: int | None = None,
) -> None:
    values: dict[Any, Any] = {
        WebhookDelivery.status: status,
        WebhookDelivery.last_status_code: status_code,
        WebhookDelivery.last_error: error,
    }
    if attempts is not None:
        values[WebhookDelivery.attempts] = attempts
    if status == "delivered":
        values[WebhookDelivery.delivered_at] = now()
    await WebhookDelivery.update(values).where(
        (WebhookDelivery.id == delivery_id) & (WebhookDelivery.status == "pending")
    )


async def recent_deliveries(account_id: int, limit: int = 20) -> list[DeliveryView]:
    rows = (
        await WebhookDelivery.select(
            WebhookDelivery.id,
            WebhookDelivery.event,
            WebhookDelivery.url,
            WebhookDelivery.status,
            WebhookDelivery.attempts,
            WebhookDelivery.last_status_code,
            WebhookDelivery.last_error,
            WebhookDelivery.created_at,
            WebhookDelivery.delivered_at,
        )
        .where(WebhookDelivery.account == account_id)
        .order_by(WebhookDelivery.id, ascending=False)
        .limit(limit)
    )
    return [DeliveryView(**r) for r in rows]
