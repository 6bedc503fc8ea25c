"""Tables of webhooks: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

URL_MAX = 500


class WebhookSubscription(Table, tablename="webhook_subscription"):
    id: Serial
    account_id = Integer(index=True)
    url = Varchar(length=URL_MAX)
    events = Varchar(length=40, default="status,inbound")  # comma-separated EVENT_KINDS keys
    secret_sealed = Text(default="")
    active = Boolean(default=True)
    created_by = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class WebhookDelivery(Table, tablename="webhook_event_delivery"):
    """One event for one subscription: the outbox row and its delivery log line."""

    id: Serial
    account_id = Integer(index=True)
    subscription_id = Integer(index=True)
    event_id = Varchar(length=40)  # stable across retries and resends
    # "<subscription>:<what happened>" so the same change never queues two deliveries.
    dedupe_key = Varchar(length=160, unique=True)
    event = Varchar(length=40)
    message_id = Integer(null=True, default=None, index=True)
    payload = Text()
    status = Varchar(length=16, default="pending", index=True)  # pending|delivered|failed
    attempts = Integer(default=0)
    last_status_code = Integer(null=True, default=None)
    last_latency_ms = Integer(null=True, default=None)
    last_error = Text(default="")
    # When work for it was last handed to the broker or an attempt made (lost-work sweep).
    touched_at = Timestamptz(null=True, default=None, index=True)
    claimed_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    delivered_at = Timestamptz(null=True, default=None)


class WebhookAttempt(Table, tablename="webhook_attempt"):
    id: Serial
    delivery_id = Integer(index=True)
    account_id = Integer(index=True)
    attempt = Integer()
    status_code = Integer(null=True, default=None)
    latency_ms = Integer(default=0)
    error = Text(default="")
    at = Timestamptz(default=TimestamptzNow())
