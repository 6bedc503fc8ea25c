"""Piccolo app `tenants`: every table of the domain; migrations live in ../migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from tenants.accounts import Account
from tenants.apikeys import ApiKey
from tenants.audit import AuditEvent
from tenants.branding import AccountBranding
from tenants.consent import (
    ConsentEvent,
    ConsentKeyword,
    ConsentReply,
    ConsentState,
    GlobalSuppression,
)
from tenants.contacts import Contact, ContactImport, ContactList, ContactListMember, ContactTag
from tenants.credits import (
    CreditTransfer,
    LedgerEntry,
    MonthlySpend,
    Notice,
    PriceRule,
    PurchaseOrder,
    Reservation,
    WalletSettings,
)
from tenants.health import Heartbeat
from tenants.sessions import SignInAttempt, UserSession
from tenants.templates import Template, TemplatePolicy, TemplateVersion
from tenants.users import Membership, User

MIGRATIONS_FOLDER = Path(__file__).resolve().parent.parent / "migrations"

APP_CONFIG = AppConfig(
    app_name="tenants",
    migrations_folder_path=str(MIGRATIONS_FOLDER),
    table_classes=[
        Account,
        User,
        Membership,
        UserSession,
        SignInAttempt,
        ApiKey,
        AuditEvent,
        Heartbeat,
        Template,
        TemplateVersion,
        TemplatePolicy,
        AccountBranding,
        ConsentEvent,
        ConsentState,
        GlobalSuppression,
        ConsentKeyword,
        ConsentReply,
        Contact,
        ContactTag,
        ContactList,
        ContactListMember,
        ContactImport,
        LedgerEntry,
        CreditTransfer,
        PurchaseOrder,
        WalletSettings,
        MonthlySpend,
        Reservation,
        Notice,
        PriceRule,
    ],
    migration_dependencies=[],
    commands=[],
)
