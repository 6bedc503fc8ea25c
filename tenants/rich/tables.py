"""Tables of rich messages: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class WhatsAppTemplate(Table, tablename="whatsapp_template"):
    """A WhatsApp message template registered on one provider integration: its numbered
    parameters ({{1}}, {{2}}...) each mapped to a merge field, and the approval status the
    provider last reported (or the registering person stated, where it reports none)."""

    id: Serial
    account_id = Integer(index=True)
    integration_id = Integer(index=True)
    # "<integration>|<name>|<language>": one template per name and language per integration.
    key = Varchar(length=600, unique=True)
    name = Varchar(length=512)
    language = Varchar(length=16)
    category = Varchar(length=24, default="UTILITY")
    body = Text(default="")
    parameter_fields = Text(default="[]")  # JSON list: the merge field of {{1}}, {{2}}...
    provider_ref = Varchar(length=64, default="")  # Twilio's ContentSid (HX...)
    status = Varchar(length=16, default="unknown")
    status_reason = Text(default="")
    refreshed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class RichContent(Table, tablename="message_rich"):
    """What an outbox message carries besides its text (a WhatsApp template with this
    recipient's parameters, an RCS card and its SMS fallback) and, for a tap, what was
    tapped; `delivered_channel` is the channel the provider reported delivering on."""

    id: Serial
    message_id = Integer(unique=True)
    account_id = Integer(index=True)
    kind = Varchar(length=16)  # template | card | tap
    payload = Text(default="{}")
    delivered_channel = Varchar(length=16, default="")
