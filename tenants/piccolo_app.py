"""Piccolo app `tenants`: every table of the domain; migrations live in ../migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from tenants.access.tables import (
    ApiKey,
    CustomRole,
    Invitation,
    Membership,
    PermissionOverride,
    SignInAttempt,
    SignInChallenge,
    SsoIdentity,
    SsoProvider,
    Team,
    TeamMember,
    TotpPolicy,
    User,
    UserSession,
    UserTotp,
)
from tenants.accounts.tables import Account
from tenants.audit.tables import AuditEvent
from tenants.branding.tables import AccountBranding
from tenants.consent.tables import (
    ConsentEvent,
    ConsentKeyword,
    ConsentReply,
    ConsentState,
    GlobalSuppression,
)
from tenants.contacts.tables import (
    Contact,
    ContactImport,
    ContactList,
    ContactListMember,
    ContactTag,
)
from tenants.credits.tables import (
    CreditTransfer,
    LedgerEntry,
    MonthlySpend,
    Notice,
    PriceRule,
    PurchaseOrder,
    Reservation,
    WalletSettings,
)
from tenants.messaging.tables import (
    Batch,
    Campaign,
    Conversation,
    InboundReply,
    InboundRoute,
    Message,
    MessageEvent,
    RateBucket,
)
from tenants.numbers.tables import Keyword, KeywordAction, PhoneNumber, SenderId
from tenants.platform.tables import Heartbeat
from tenants.providers.tables import ChannelDefault, ProviderIntegration, ProviderPermit
from tenants.templates.tables import Template, TemplatePolicy, TemplateVersion
from tenants.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookSubscription

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
        CustomRole,
        Team,
        TeamMember,
        PermissionOverride,
        Invitation,
        SsoProvider,
        SsoIdentity,
        UserTotp,
        TotpPolicy,
        SignInChallenge,
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
        PhoneNumber,
        SenderId,
        Keyword,
        KeywordAction,
        InboundRoute,
        InboundReply,
        Conversation,
        Batch,
        Message,
        MessageEvent,
        Campaign,
        RateBucket,
        LedgerEntry,
        CreditTransfer,
        PurchaseOrder,
        WalletSettings,
        MonthlySpend,
        Reservation,
        Notice,
        PriceRule,
        ProviderIntegration,
        ChannelDefault,
        ProviderPermit,
        WebhookSubscription,
        WebhookDelivery,
        WebhookAttempt,
    ],
    migration_dependencies=[],
    commands=[],
)
