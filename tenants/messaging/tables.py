"""Tables of messaging: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    DoublePrecision,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Batch(Table, tablename="message_batch"):
    """One accepted send (a form post, an API call, a campaign, a scheduled send)."""

    id: Serial
    account_id = Integer(index=True)
    campaign_id = Integer(null=True, default=None)
    # "<account_id>:<Idempotency-Key>" so a key is unique per account.
    idempotency_scope = Varchar(length=300, null=True, default=None, unique=True)
    request_hash = Varchar(length=64, default="")
    channel = Varchar(length=16, default="sms")
    sender = Varchar(length=20, default="")
    body = Text(default="")
    template_id = Integer(null=True, default=None)
    state = Varchar(length=16, default="active", index=True)
    send_at = Timestamptz(null=True, default=None, index=True)
    accepted = Integer(default=0)
    skipped = Integer(default=0)
    segments = Integer(default=0)
    total_cost = Integer(default=0)
    skipped_json = Text(default="[]")
    created_by = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())
    # A campaign to lists streamed from the database (tenants.messaging.streamed): the
    # request to re-run per chunk (JSON), the last contact id accepted (the keyset cursor,
    # moved in the chunk's own transaction), when a worker last moved it, and why the
    # accepting stopped before the end of the lists (insufficient_credits, ...).
    stream_request = Text(null=True, default=None)
    stream_cursor = Integer(default=0)
    stream_touched_at = Timestamptz(null=True, default=None)
    stop_reason = Varchar(length=64, default="")


class BatchTally(Table, tablename="batch_tally"):
    """The counters of one batch the progress pages read instead of counting its messages:
    `status:<s>` (messages that are in status s, with their cost; `enqueued` is what the
    batch accepted less the others) and `skip:<reason>` (recipients skipped). Moved in the
    transaction that moves the messages (tenants.reports.rollups.record)."""

    id: Serial
    key = Varchar(length=80, unique=True)  # "<batch_id>|<name>"
    batch_id = Integer(index=True)
    name = Varchar(length=64)
    n = Integer(default=0)
    cost = Integer(default=0)


class BatchSkip(Table, tablename="batch_skip"):
    """A recipient a streamed campaign left out, with its reason (the skipped list of a
    list campaign, which may be too long to keep in the batch row)."""

    id: Serial
    batch_id = Integer(index=True)
    contact_id = Integer(null=True, default=None)
    recipient = Varchar(length=64, default="")
    reason = Varchar(length=32)


class Message(Table, tablename="message"):
    """The outbox (direction out: inserted `enqueued`, moved on by workers and callbacks)
    and the inbox (direction in: `incoming_message`)."""

    id: Serial
    account_id = Integer(index=True)
    batch_id = Integer(null=True, default=None, index=True)
    campaign_id = Integer(null=True, default=None)
    direction = Varchar(length=3, default="out")
    to_number = Varchar(length=20, index=True)
    from_number = Varchar(length=20, default="")
    body = Text(default="")
    channel = Varchar(length=16, default="sms")
    # Inbound MMS, WhatsApp and RCS messages: the provider's URLs of the media (JSON list).
    media_urls = Text(default="[]")
    status = Varchar(length=20, default="enqueued", index=True)
    segments = Integer(default=1)
    encoding = Varchar(length=8, default="GSM-7")
    cost = Integer(default=0)
    country = Varchar(length=2, default="")
    contact_id = Integer(null=True, default=None)
    provider = Varchar(length=32, default="simulator")
    provider_ref = Varchar(length=64, null=True, default=None)
    error_code = Varchar(length=64, null=True, default=None)
    refunded = Boolean(default=False)
    # The outbox bookkeeping: when it may go, when work was last handed to the broker,
    # who holds it for submission, and how often it was handed to the provider.
    release_at = Timestamptz(default=TimestamptzNow())
    dispatched_at = Timestamptz(default=TimestamptzNow())
    claimed_at = Timestamptz(null=True, default=None)
    claim_token = Varchar(length=32, null=True, default=None)
    submit_attempts = Integer(default=0)
    # Quiet hours in the recipient's time zone: the time the message was held until
    # (kept after its release, so the log can say why it went later).
    held_until = Timestamptz(null=True, default=None, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class MessageEvent(Table, tablename="message_event"):
    """Every status a message was given or reported, applied or not (late ones are kept)."""

    id: Serial
    message_id = Integer(index=True)
    account_id = Integer(index=True)
    status = Varchar(length=20)
    error_code = Varchar(length=64, null=True, default=None)
    applied = Boolean(default=True)
    source = Varchar(length=16, default="platform")
    # The provider's event id: a callback delivered twice is stored once.
    dedupe_key = Varchar(length=120, null=True, default=None, unique=True)
    at = Timestamptz(default=TimestamptzNow())


class Campaign(Table, tablename="campaign"):
    """A named send to lists; its messages and progress are those of its batch."""

    id: Serial
    account_id = Integer(index=True)
    name = Varchar(length=120)
    batch_id = Integer(null=True, default=None)
    created_by = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())


class RateBucket(Table, tablename="rate_bucket"):
    """A shared rate limiter (GCRA): `tat` is the time, in epoch seconds, at which the
    bucket would be empty again; every process takes from it with one UPDATE."""

    id: Serial
    key = Varchar(length=120, unique=True)
    tat = DoublePrecision(default=0.0)


class InboundRoute(Table, tablename="inbound_route"):
    """How one inbound message was routed and what it set in motion."""

    id: Serial
    # "<provider>:<provider message id>": the provider's redelivery is the same message.
    dedupe_key = Varchar(length=200, unique=True)
    message_id = Integer(index=True)
    account_id = Integer(index=True)
    number_id = Integer()
    number = Varchar(length=20)
    phone = Varchar(length=20)
    channel = Varchar(length=16, default="sms")
    rule = Varchar(length=16)
    keyword_id = Integer(null=True, default=None)
    consent_action = Varchar(length=16, null=True, default=None)
    replies = Text(default="[]")  # planned: [{"body", "variables", "compliance"}]
    replies_done = Boolean(default=False)
    reply_message_ids = Text(default="[]")
    reply_errors = Text(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())


class InboundReply(Table, tablename="inbound_reply"):
    """An outbox message sent because of an inbound one. A `confirmation` answers a
    compliance keyword and is exempt from the consent re-check before submission."""

    id: Serial
    route_id = Integer(index=True)
    message_id = Integer(unique=True)
    kind = Varchar(length=16)  # confirmation | auto_reply


class Conversation(Table, tablename="inbox_conversation"):
    """One phone talking to one of the account's numbers: the inbox row."""

    id: Serial
    account_id = Integer(index=True)
    # "<account>|<phone>|<number>", unique: the upsert target of every inbound message.
    key = Varchar(length=80, unique=True)
    phone = Varchar(length=20)
    number = Varchar(length=20)
    unread = Integer(default=0)
    last_body = Text(default="")
    last_direction = Varchar(length=3, default="in")
    last_message_at = Timestamptz(default=TimestamptzNow(), index=True)
    last_read_at = Timestamptz(null=True, default=None)


class RecurringSchedule(Table, tablename="recurring_schedule"):
    """A send (or campaign) that repeats at a wall-clock time in the account's time zone;
    each run is its own batch. `next_run_at` (UTC) is the run the scheduler releases next:
    moved on with one conditional UPDATE, so one process releases each run."""

    id: Serial
    account_id = Integer(index=True)
    name = Varchar(length=120, default="")
    campaign = Boolean(default=False)  # each run is a campaign named after the schedule
    state = Varchar(length=16, default="active", index=True)  # active | paused | ended
    body = Text(null=True, default=None)
    template_id = Integer(null=True, default=None)
    variables_json = Text(default="{}")
    numbers_json = Text(default="[]")
    list_ids_json = Text(default="[]")
    sender = Varchar(length=20, default="")
    channel = Varchar(length=16, default="sms")
    # daily | weekly (weekdays "0,2,4", Monday = 0) | monthly (month_day 1-31, or
    # month_day 0 = the last weekday, Monday to Friday, of the month).
    frequency = Varchar(length=8, default="daily")
    weekdays = Varchar(length=20, default="")
    month_day = Integer(default=1)
    local_time = Varchar(length=5, default="09:00")
    timezone = Varchar(length=64, default="UTC")
    start_date = Varchar(length=10)
    until_date = Varchar(length=10, null=True, default=None)
    max_runs = Integer(null=True, default=None)
    runs_counted = Integer(default=0)  # released or failed (a skipped run does not count)
    next_run_at = Timestamptz(null=True, default=None, index=True)
    created_by = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class RecurringRun(Table, tablename="recurring_run"):
    """One run of a schedule: released (with its batch), failed (with the reason, e.g.
    insufficient_credits), skipped by a person, or missed while nothing ran."""

    id: Serial
    schedule_id = Integer(index=True)
    account_id = Integer(index=True)
    # "<schedule_id>|<run_at ISO UTC>": a run exists once, whoever releases it.
    key = Varchar(length=80, unique=True)
    run_at = Timestamptz()
    state = Varchar(length=16)
    batch_id = Integer(null=True, default=None)
    reason = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class QuietHours(Table, tablename="quiet_hours"):
    """An account's own quiet hours (absent: inherited from the nearest ancestor with a
    row; `enabled` false overrides an ancestor's with none). Times are in the recipient's
    zone; `days` are the weekdays (Monday = 0) on which nothing may go at all."""

    id: Serial
    account_id = Integer(unique=True)
    enabled = Boolean(default=True)
    start = Varchar(length=5, default="09:00")  # earliest allowed local time
    end = Varchar(length=5, default="20:00")  # latest allowed local time (exclusive)
    days = Varchar(length=20, default="6")
    updated_at = Timestamptz(default=TimestamptzNow())
