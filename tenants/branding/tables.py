"""Tables of branding: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Bytea, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants.accounts.tables import Account

MAX_PRODUCT_NAME = 60


class AccountBranding(Table, tablename="account_branding"):
    """One account's own settings; a NULL column means "inherit"."""

    id: Serial
    account = ForeignKey(Account, unique=True, index=True, on_delete=OnDelete.cascade)
    product_name = Varchar(length=MAX_PRODUCT_NAME, null=True, default=None)
    primary_color = Varchar(length=7, null=True, default=None)
    accent_color = Varchar(length=7, null=True, default=None)
    support_email = Varchar(length=254, null=True, default=None)
    support_phone = Varchar(length=32, null=True, default=None)
    login_host = Varchar(length=253, null=True, default=None, unique=True)
    # The host of the account's tracked short links (its DNS points at the portal).
    link_domain = Varchar(length=253, null=True, default=None)
    logo_digest = Varchar(length=64, null=True, default=None, index=True)
    logo_content_type = Varchar(length=40, null=True, default=None)
    logo_width = Integer(null=True, default=None)
    logo_height = Integer(null=True, default=None)
    logo_bytes = Bytea(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())
