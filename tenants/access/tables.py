"""Tables of access: rows only; this module imports only other tables and db."""

from __future__ import annotations

import hashlib

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants.accounts.tables import Account


class CustomRole(Table, tablename="custom_role"):
    """A named permission set defined in an account and usable in its whole subtree."""

    id: Serial
    account = ForeignKey(Account, index=True)
    name = Varchar(length=64)
    description = Varchar(length=200, default="")
    permissions = Text(default="")  # space-separated catalogue names
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Team(Table, tablename="team"):
    """A department inside one account; its members hold its role there."""

    id: Serial
    account = ForeignKey(Account, index=True)
    name = Varchar(length=80)
    role = Varchar(length=64, default="Viewer")
    created_at = Timestamptz(default=TimestamptzNow())


class User(Table, tablename="portal_user"):
    id: Serial
    email = Varchar(length=254, unique=True, index=True)
    name = Varchar(length=120, default="")
    password_hash = Varchar(length=255, default="")
    is_operator = Boolean(default=False)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    # The account sign-in lands in, chosen by a person with several memberships; None:
    # the shallowest one. An API key's account is its own and never reads this.
    default_account_id = Integer(null=True, default=None)


class TeamMember(Table, tablename="team_member"):
    id: Serial
    team = ForeignKey(Team, index=True)
    user = ForeignKey(User, index=True)
    added_at = Timestamptz(default=TimestamptzNow())


class PermissionOverride(Table, tablename="permission_override"):
    """Grants or denies one permission to one member of one account; beats every role."""

    id: Serial
    user = ForeignKey(User, index=True)
    account = ForeignKey(Account, index=True)
    permission = Varchar(length=64)
    effect = Varchar(length=8)  # "grant" or "deny"
    set_by_user_id = Integer(null=True, default=None)
    set_by_label = Varchar(length=200, default="system")
    set_at = Timestamptz(default=TimestamptzNow())


class Membership(Table, tablename="membership"):
    id: Serial
    user = ForeignKey(User, index=True)
    account = ForeignKey(Account, index=True)
    role = Varchar(length=64, default="Viewer")
    created_at = Timestamptz(default=TimestamptzNow())


class ApiKey(Table, tablename="api_key"):
    id: Serial
    key_id = Varchar(length=40, unique=True, index=True)
    secret_hash = Varchar(length=255)
    account = ForeignKey(Account, index=True)
    name = Varchar(length=120)
    role = Varchar(length=64, default="Sender")
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class SignInAttempt(Table, tablename="signin_attempt"):
    id: Serial
    email = Varchar(length=254, index=True)
    ip = Varchar(length=64, default="")
    success = Boolean(default=False)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    user_id = Integer(null=True, default=None)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserSession(Table, tablename="user_session"):
    id: Serial
    token_hash = Varchar(length=64, unique=True, index=True)
    user = ForeignKey(User, index=True)
    account = ForeignKey(Account, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(default=TimestamptzNow())


class Invitation(Table, tablename="invitation"):
    id: Serial
    account = ForeignKey(Account, index=True)
    email = Varchar(length=254, index=True)
    role = Varchar(length=64)
    team_ids = Varchar(length=400, default="")  # space-separated team ids of the account
    token_hash = Varchar(length=64, unique=True, index=True)
    invited_by_user_id = Integer(null=True, default=None)
    invited_by_label = Varchar(length=200, default="system")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(default=TimestamptzNow())
    accepted_at = Timestamptz(null=True, default=None)
    accepted_user_id = Integer(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class UserTotp(Table, tablename="user_totp"):
    id: Serial
    user = ForeignKey(User, unique=True, index=True)
    secret = Text()  # base32 seed, encrypted with the secrets box
    confirmed_at = Timestamptz(null=True, default=None)
    last_step = Integer(default=0)  # the newest accepted time step: each code works once
    created_at = Timestamptz(default=TimestamptzNow())


class TotpPolicy(Table, tablename="totp_policy"):
    """Set on a master (root) account; applies to its whole tree."""

    id: Serial
    account = ForeignKey(Account, unique=True, index=True)
    require_for_admins = Boolean(default=False)
    updated_at = Timestamptz(default=TimestamptzNow())


class SignInChallenge(Table, tablename="signin_challenge"):
    """A sign-in whose first factor passed and that waits for the TOTP code."""

    id: Serial
    token_hash = Varchar(length=64, unique=True, index=True)
    user = ForeignKey(User, index=True)
    account_id = Integer(null=True, default=None)
    next_path = Varchar(length=500, default="/")
    attempts = Integer(default=0)
    expires_at = Timestamptz(default=TimestamptzNow())


class SsoProvider(Table, tablename="sso_provider"):
    id: Serial
    account = ForeignKey(Account, unique=True, index=True)  # a master: its tree signs in
    issuer = Varchar(length=500)
    client_id = Varchar(length=255)
    client_secret = Text()  # encrypted with the secrets box
    enabled = Boolean(default=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class SsoIdentity(Table, tablename="sso_identity"):
    """A provider's subject linked to a user at their first single sign-on."""

    id: Serial
    provider = ForeignKey(SsoProvider, index=True)
    subject = Varchar(length=255)
    user = ForeignKey(User, index=True)
    email = Varchar(length=254, default="")
    linked_at = Timestamptz(default=TimestamptzNow())


class CacheVersion(Table, tablename="cache_version"):
    """One row whose counter database triggers bump on every write that changes who may
    do what or how a page looks (sessions, people, accounts apart from their balance,
    memberships, teams, roles, overrides, branding): every `portal serve` process reads it
    once per request and keeps what it resolved while the counter stands still."""

    id: Serial
    n = Integer(default=0)
