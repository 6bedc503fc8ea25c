"""Tables of credits: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class LedgerEntry(Table, tablename="credit_ledger"):
    """One movement of credits on one account's wallet; rows are never updated."""

    id: Serial
    account_id = Integer(index=True)
    delta = Integer()
    balance_after = Integer()
    kind = Varchar(length=16, index=True)
    counterparty_id = Integer(null=True, default=None)
    # The account whose send it was (spend/refund): differs from account_id on a shared wallet.
    spender_id = Integer(null=True, default=None, index=True)
    reference = Varchar(length=200, default="")
    idempotency_key = Varchar(length=200, index=True)
    # account|spender|key: the database itself refuses a second row for the same request.
    unique_key = Varchar(length=420, unique=True)
    transfer_id = Integer(null=True, default=None)
    order_id = Integer(null=True, default=None)
    note = Text(default="")
    actor_user_id = Integer(null=True, default=None)
    actor_api_key_id = Integer(null=True, default=None)
    actor_label = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class CreditTransfer(Table, tablename="credit_transfer"):
    """Allocation, reclaim or automatic top-up: two ledger rows written together."""

    id: Serial
    kind = Varchar(length=16)
    from_account_id = Integer(index=True)
    to_account_id = Integer(index=True)
    amount = Integer()
    initiator_account_id = Integer()
    idempotency_key = Varchar(length=200)
    # initiator|key, and a fingerprint of the request so a reused key with another body is 409.
    unique_key = Varchar(length=420, unique=True)
    fingerprint = Varchar(length=64, default="")
    reference = Varchar(length=200, default="")
    actor_label = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())


class PurchaseOrder(Table, tablename="credit_order"):
    """A request to buy credits through a payment gateway; approval writes the purchase."""

    id: Serial
    account_id = Integer(index=True)
    amount = Integer()
    gateway = Varchar(length=32, default="invoice")
    status = Varchar(length=16, default="pending", index=True)
    reference = Varchar(length=200, default="")
    requested_by = Varchar(length=200, default="system")
    decided_by = Varchar(length=200, default="")
    decision_note = Text(default="")
    ledger_entry_id = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)


class WalletSettings(Table, tablename="wallet_settings"):
    """Per-account wallet options; an account without a row has its own wallet, no cap."""

    id: Serial
    account_id = Integer(unique=True)
    shared_wallet = Boolean(default=False)
    monthly_cap = Integer(null=True, default=None)
    low_balance_threshold = Integer(null=True, default=None)
    auto_top_up = Boolean(default=False)
    top_up_amount = Integer(default=0)


class MonthlySpend(Table, tablename="credit_month_spend"):
    """Credits an account spent in a calendar month of its own time zone, kept for the
    monthly cap."""

    id: Serial
    unique_key = Varchar(length=40, unique=True)  # account|YYYY-MM
    account_id = Integer()
    month = Varchar(length=7)
    spent = Integer(default=0)


class Reservation(Table, tablename="credit_reservation"):
    """What a send reserved and how much of it was refunded (refunds never exceed spend)."""

    id: Serial
    ledger_entry_id = Integer(unique=True)
    account_id = Integer(index=True)
    wallet_id = Integer()
    reference = Varchar(length=200, index=True)
    amount = Integer()
    refunded = Integer(default=0)
    month = Varchar(length=7)


class Notice(Table, tablename="notice"):
    """An in-app notice for the admins of `account_id` (e.g. a sub-account ran low)."""

    id: Serial
    account_id = Integer(index=True)
    subject_account_id = Integer(null=True, default=None)
    kind = Varchar(length=32)
    message = Text()
    created_at = Timestamptz(default=TimestamptzNow())
    dismissed_at = Timestamptz(null=True, default=None)


class PriceRule(Table, tablename="price_rule"):
    """Credits per segment for a channel and destination country ("*" = any other), set on
    an account for itself and its subtree; the platform account's rules are the defaults."""

    id: Serial
    account_id = Integer(index=True)
    channel = Varchar(length=16)
    country = Varchar(length=2)
    credits = Integer()
    unique_key = Varchar(length=40, unique=True)  # account|channel|country
