"""Tables of tracked links: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

CODE_LENGTH = 12


class ShortLink(Table, tablename="short_link"):
    """One URL of one sent message: the code in the short link stands for `url`. Campaign
    and batch are copied from the message so a campaign's figures are one indexed query."""

    id: Serial
    code = Varchar(length=CODE_LENGTH, unique=True)
    account_id = Integer(index=True)
    message_id = Integer(index=True)
    batch_id = Integer(index=True)
    campaign_id = Integer(null=True, default=None, index=True)
    url = Text()
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class LinkClick(Table, tablename="link_click"):
    """One request for a short link: when, and a coarse class of the user agent ("iPhone
    Safari", "bot"); never the address it came from."""

    id: Serial
    link_id = Integer(index=True)
    account_id = Integer(index=True)
    message_id = Integer(index=True)
    batch_id = Integer(index=True)
    campaign_id = Integer(null=True, default=None)
    agent = Varchar(length=40, default="other")
    # Link-preview fetchers (WhatsApp, iMessage, Slack...) are kept apart from people.
    bot = Boolean(default=False)
    at = Timestamptz(default=TimestamptzNow())
