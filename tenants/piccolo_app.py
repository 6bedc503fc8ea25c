"""Piccolo app `tenants`: every table of the domain; migrations live in ../migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from tenants.access import CustomRole, PermissionOverride, Team, TeamMember
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
from tenants.customer_webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription
from tenants.health import Heartbeat
from tenants.inbound import Conversation, InboundReply, InboundRoute
from tenants.invitations import Invitation
from tenants.keywords import Keyword, KeywordAction
from tenants.messages import Batch, Campaign, Message, MessageEvent, RateBucket
from tenants.numbers import PhoneNumber, SenderId
from tenants.providers import ChannelDefault, ProviderIntegration, ProviderPermit
from tenants.sessions import SignInAttempt, UserSession
from tenants.sso import SsoIdentity, SsoProvider
from tenants.templates import Template, TemplatePolicy, TemplateVersion
from tenants.totp import SignInChallenge, TotpPolicy, UserTotp
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
