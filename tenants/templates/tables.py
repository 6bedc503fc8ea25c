"""Tables of templates: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants.accounts.tables import Account

DRAFT, APPROVED, ARCHIVED = "draft", "approved", "archived"


NAME_MAX = 120


class Template(Table, tablename="template"):
    id: Serial
    account = ForeignKey(Account, index=True, db_column_name="account_id")
    name = Varchar(length=NAME_MAX)
    shared_down = Boolean(default=False)
    # draft: never approved; approved: has an approved version; archived: retired.
    status = Varchar(length=16, default=DRAFT, index=True)
    approved_version_id = Integer(null=True, default=None)
    # Transactional (a code, a receipt): sent through the account's quiet hours.
    quiet_exempt = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class TemplateVersion(Table, tablename="template_version"):
    id: Serial
    template = ForeignKey(Template, index=True, db_column_name="template_id")
    number = Integer()
    body = Text()
    status = Varchar(length=16, default=DRAFT)
    author_user_id = Integer(null=True, default=None)
    author_api_key_id = Integer(null=True, default=None)
    author_label = Varchar(length=200, default="system")
    approver_user_id = Integer(null=True, default=None)
    approver_label = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    approved_at = Timestamptz(null=True, default=None)


class TemplatePolicy(Table, tablename="template_policy"):
    """Per-account approval settings; an account without a row uses the defaults."""

    id: Serial
    account = ForeignKey(Account, unique=True, index=True, db_column_name="account_id")
    maker_checker = Boolean(default=False)
