"""Tables of consent: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants.errors import ValidationFailed

CHANNEL_GROUPS: dict[str, str] = {
    "sms": "sms",
    "mms": "sms",
    "rcs": "sms",
    "whatsapp": "whatsapp",
}


class GlobalSuppression(Table, tablename="global_suppression"):
    """Numbers the platform operator never lets any account message, on any channel."""

    id: Serial
    phone = Varchar(length=20, unique=True, index=True)
    reason = Text(default="")
    added_by_user_id = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class ConsentKeyword(Table, tablename="consent_keyword"):
    """A word a master adds to the defaults of one kind for its whole tree."""

    id: Serial
    account_id = Integer(index=True)
    kind = Varchar(length=16)
    word = Varchar(length=20)


class ConsentReply(Table, tablename="consent_reply"):
    """A master's confirmation reply for one kind, inherited by its tree."""

    id: Serial
    account_id = Integer(index=True)
    kind = Varchar(length=16)
    body = Text(default="")


def channel_group(channel: str) -> str:
    """The consent channel group of a channel: SMS, MMS and RCS share one; WhatsApp its own."""
    group = CHANNEL_GROUPS.get((channel or "").strip().lower())
    if group is None:
        raise ValidationFailed({"channel": "Channel must be one of sms, mms, rcs or whatsapp."})
    return group


class ConsentEvent(Table, tablename="consent_event"):
    """One opt-in or opt-out, never updated or deleted; `account_id` received it."""

    id: Serial
    account_id = Integer(index=True)
    phone = Varchar(length=20, index=True)
    channel_group = Varchar(length=16, default="sms")
    action = Varchar(length=16)
    source = Varchar(length=16)
    user_id = Integer(null=True, default=None)
    message_id = Integer(null=True, default=None)
    note = Text(default="")
    batch = Varchar(length=64, default="", index=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)


class ConsentState(Table, tablename="consent_state"):
    """Derived: the deciding (latest) event per (scope account, phone, channel group).

    `key` is "scope|phone|group", unique, so one indexed IN list answers a whole chunk of
    recipients (Piccolo has no composite unique constraint).
    """

    id: Serial
    key = Varchar(length=64, unique=True, index=True)
    scope_account_id = Integer(index=True)
    phone = Varchar(length=20)
    channel_group = Varchar(length=16)
    status = Varchar(length=16)
    event_id = Integer()
    updated_at = Timestamptz(default=TimestamptzNow())
