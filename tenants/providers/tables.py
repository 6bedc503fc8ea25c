"""Tables of providers: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

NAME_MAX = 80
BASE_URL_MAX = 300


class ProviderIntegration(Table, tablename="provider_integration"):
    """One configured provider account, owned by the platform or by a master."""

    id: Serial
    account_id = Integer(index=True)
    kind = Varchar(length=32)
    name = Varchar(length=NAME_MAX)
    status = Varchar(length=16, default="active")
    settings = Text(default="{}")  # the fields that are not secret, as JSON
    secrets_sealed = Text(default="")  # the secret fields, JSON sealed by secrets_box
    secret_hints = Text(default="{}")  # field -> last characters, for the page
    callback_sealed = Text(default="")  # the secret segment of the callback URLs, sealed
    rate_limit = Integer(default=0)  # segments per second; 0 = the platform's default
    # Another origin for the provider's API (a regional endpoint, an emulator); "" = public.
    api_base_url = Varchar(length=BASE_URL_MAX, default="")
    last_test_at = Timestamptz(null=True, default=None)
    last_test_ok = Boolean(null=True, default=None)
    last_test_message = Text(default="")
    created_by = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ChannelDefault(Table, tablename="channel_default"):
    """An account's own choice of provider for one channel (absent = inherit from above).
    `integration_id` NULL means the built-in simulator, chosen on purpose."""

    id: Serial
    account_id = Integer(index=True)
    channel = Varchar(length=16)
    key = Varchar(length=40, unique=True)  # "<account_id>:<channel>"
    integration_id = Integer(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class ProviderPermit(Table, tablename="provider_permit"):
    """The operator's permission for a master to add provider integrations of its own."""

    id: Serial
    account_id = Integer(unique=True)
    allowed = Boolean(default=False)
    updated_at = Timestamptz(default=TimestamptzNow())
