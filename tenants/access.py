"""Access control: the permission catalogue, built-in and custom roles, teams, per-user
overrides, and the one function that decides whether a principal (a person or an API key)
may do something in an account, with a reason a person can read.

A person's grants in an account come from their nearest membership (in the account or
the closest ancestor): the membership's role, the roles of the teams they belong to in
that account, and the overrides set on them there. Overrides beat roles (deny beats
grant). Management powers reach down the subtree; a sub-account's data (contacts,
messages, inbound) is not readable from above unless `subaccounts.read_data` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from tenants import audit
from tenants.accounts import Account, AccountView, get_account, suspended_ancestor
from tenants.errors import NotFound, PermissionDenied
from tenants.users import Membership, User

# name -> what it lets a person do (shown on the permission matrix)
CATALOGUE: dict[str, str] = {
    "account.view": "See the account dashboard and switch into it",
    "accounts.manage": "Create, rename, suspend and reactivate sub-accounts",
    "credits.view": "Read the balance, the ledger and spend reports",
    "credits.buy": "Buy credits for the account",
    "credits.allocate": "Allocate credits to sub-accounts and reclaim them",
    "pricing.manage": "Set prices for the subtree",
    "messages.send": "Send messages with free text",
    "messages.send_template": "Send messages from approved templates",
    "messages.view": "Read sent and received messages",
    "campaigns.manage": "Create, pause, resume and cancel campaigns",
    "contacts.view": "Read contacts",
    "contacts.manage": "Create, edit and import contacts",
    "contacts.export": "Export contact lists",
    "consent.manage": "Record opt-outs and opt-ins by hand",
    "templates.view": "Read templates",
    "templates.manage": "Write and share templates",
    "templates.approve": "Approve templates for sending",
    "numbers.manage": "Assign numbers and sender IDs",
    "keywords.manage": "Claim keywords and set their actions",
    "users.manage": "Invite users, manage teams and overrides",
    "roles.manage": "Define custom roles",
    "api_keys.manage": "Create and revoke API keys",
    "audit.view": "Read the audit log",
    "branding.manage": "Set the account's branding",
    "settings.manage": "Change account settings",
    "providers.manage": "Configure provider integrations and webhooks",
    "subaccounts.read_data": "Read the contacts and messages of sub-accounts",
    "platform.operate": "Platform operator powers (masters, providers, suppression)",
}

# Powers that reach from a membership in an account down to every descendant.
REACHES_DOWN: frozenset[str] = frozenset(
    {
        "account.view",
        "accounts.manage",
        "credits.view",
        "credits.allocate",
        "pricing.manage",
        "templates.view",
        "templates.manage",
        "templates.approve",
        "numbers.manage",
        "keywords.manage",
        "users.manage",
        "roles.manage",
        "api_keys.manage",
        "audit.view",
        "branding.manage",
        "settings.manage",
        "providers.manage",
    }
)
# Data permissions that `subaccounts.read_data` extends down the subtree.
SUBTREE_DATA: frozenset[str] = frozenset({"messages.view", "contacts.view"})
# What an admin above a suspended account may still do in it: look, and reactivate.
# (People whose own account lies inside a suspended subtree can do nothing at all.)
ALLOWED_WHILE_SUSPENDED: frozenset[str] = frozenset(
    {"account.view", "accounts.manage", "credits.view", "audit.view"}
)

# Reading sub-accounts' data is never implied by a built-in role: it is granted on purpose.
_ALL = frozenset(CATALOGUE) - {"platform.operate", "subaccounts.read_data"}
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "Owner": _ALL,
    "Admin": _ALL - {"credits.buy"},
    "Sender": frozenset(
        {
            "account.view",
            "credits.view",
            "messages.send",
            "messages.send_template",
            "messages.view",
            "campaigns.manage",
            "contacts.view",
            "contacts.manage",
            "contacts.export",
            "templates.view",
            "templates.manage",
        }
    ),
    "Support": frozenset(
        {
            "account.view",
            "messages.send_template",
            "messages.view",
            "contacts.view",
            "templates.view",
        }
    ),
    "Finance": frozenset({"account.view", "credits.view", "credits.buy"}),
    "Viewer": frozenset(
        {"account.view", "credits.view", "messages.view", "contacts.view", "templates.view"}
    ),
}


# Permissions nobody can be handed by a role or an override.
NEVER_GRANTABLE: frozenset[str] = frozenset({"platform.operate"})
GRANTABLE: tuple[str, ...] = tuple(p for p in CATALOGUE if p not in NEVER_GRANTABLE)
OVERRIDE_EFFECTS = ("grant", "deny")


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


def parse_permissions(text: str) -> frozenset[str]:
    """Stored permission sets, keeping only names still in the catalogue."""
    return frozenset(p for p in text.split() if p in CATALOGUE and p not in NEVER_GRANTABLE)


def format_permissions(permissions: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(permissions))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in person, or an API key acting for its account."""

    kind: str  # "user" or "api_key"
    label: str
    user_id: int | None = None
    api_key_id: int | None = None
    is_operator: bool = False
    key_account_id: int | None = None
    key_role: str | None = None

    def actor(self, ip: str | None = None) -> audit.Actor:
        return audit.Actor(
            user_id=self.user_id, api_key_id=self.api_key_id, label=self.label, ip=ip
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class RoleSource:
    """One role a principal holds in its home account, and how ("membership in X",
    "team Support", "API key Y")."""

    role: str
    permissions: frozenset[str]
    via: str
    team: str | None = None

    def describe(self) -> str:
        if self.team is not None:
            return f"role {self.role} via team {self.team}"
        return f"role {self.role} ({self.via})"


@dataclass(frozen=True)
class Override:
    permission: str
    effect: str  # "grant" or "deny"
    set_by: str
    set_at: datetime

    def describe(self) -> str:
        day = self.set_at.date().isoformat()
        if self.effect == "deny":
            return f"denied by user override set by {self.set_by} on {day}"
        return f"granted by override set by {self.set_by} on {day}"


def role_permissions(role: str) -> frozenset[str]:
    """A built-in role's permissions (custom roles are resolved per account)."""
    return BUILTIN_ROLES.get(role, frozenset())


async def _nearest_membership(user_id: int, account: AccountView) -> dict | None:
    rows = await Membership.select(
        Membership.account.id, Membership.account.name, Membership.account.depth, Membership.role
    ).where((Membership.user == user_id) & (Membership.account.is_in(account.ancestor_ids)))
    if not rows:
        return None
    return max(rows, key=lambda r: r["account.depth"])


async def custom_roles_visible(
    ancestor_ids: list[int], names: set[str] | None = None
) -> dict[str, dict]:
    """Custom roles usable in the account whose ancestors (root first, itself last) are
    given: the nearest definition of each name wins."""
    query = CustomRole.select(
        CustomRole.id,
        CustomRole.name,
        CustomRole.description,
        CustomRole.permissions,
        CustomRole.account.id,
        CustomRole.account.name,
        CustomRole.account.depth,
    ).where(CustomRole.account.is_in(ancestor_ids))
    if names is not None:
        if not names:
            return {}
        query = query.where(CustomRole.name.is_in(sorted(names)))
    found: dict[str, dict] = {}
    for row in sorted(await query, key=lambda r: r["account.depth"]):
        found[row["name"]] = row
    return found


async def resolve_roles(ancestor_ids: list[int], names: set[str]) -> dict[str, frozenset[str]]:
    """Permissions of each role name as seen from an account (one query at most).

    An unknown name (e.g. a deleted custom role) resolves to no permissions at all.
    """
    resolved = {n: BUILTIN_ROLES[n] for n in names if n in BUILTIN_ROLES}
    custom = names - set(resolved)
    if custom:
        rows = await custom_roles_visible(ancestor_ids, custom)
        for name in custom:
            row = rows.get(name)
            resolved[name] = parse_permissions(row["permissions"]) if row else frozenset()
    return resolved


@dataclass(frozen=True)
class Grants:
    """What a principal holds in one account, evaluated once; `decide` is then pure."""

    account: AccountView
    is_operator: bool = False
    blocked: str | None = None  # why nothing is granted at all
    suspended_by: str | None = None
    role: str = ""
    where: str = ""
    home_id: int | None = None
    role_grants: frozenset[str] = frozenset()  # union of every role source
    sources: tuple[RoleSource, ...] = ()
    overrides: tuple[Override, ...] = field(default=())

    def override_for(self, permission: str) -> Override | None:
        """The override that decides `permission`, if any: a deny beats a grant."""
        matching = [o for o in self.overrides if o.permission == permission]
        for o in matching:
            if o.effect == "deny":
                return o
        return matching[0] if matching else None

    def _at_home(self, permission: str) -> tuple[bool, str]:
        """Whether the principal holds `permission` in its home account, and why."""
        override = self.override_for(permission)
        if override is not None:
            return override.effect == "grant", override.describe()
        for source in self.sources:
            if permission in source.permissions:
                return True, source.describe()
        held = "; ".join(s.describe() for s in self.sources) or f"role {self.role} ({self.where})"
        if len(self.sources) <= 1:
            return False, f"{held} does not include {permission}"
        return False, f"none of {held} includes {permission}"

    def holds(self, permission: str) -> bool:
        """Whether the principal holds `permission` in its own right (in its home account),
        whether or not it reaches this account: what it may hand out to others here."""
        if self.is_operator:
            return True
        if self.blocked or permission in NEVER_GRANTABLE:
            return False
        return self._at_home(permission)[0]

    def decide(self, permission: str) -> Decision:
        if permission not in CATALOGUE:
            raise ValueError(f"unknown permission {permission!r}")
        if self.is_operator:
            return Decision(True, "platform operator")
        if permission == "platform.operate":
            return Decision(False, "only the platform operator has this power")
        if self.blocked:
            return Decision(False, self.blocked)
        if self.suspended_by and permission not in ALLOWED_WHILE_SUSPENDED:
            return Decision(False, f"account {self.suspended_by} is suspended")
        held, reason = self._at_home(permission)
        if not held:
            return Decision(False, reason)
        if self.home_id == self.account.id:
            return Decision(True, reason)
        if permission in REACHES_DOWN:
            return Decision(True, f"{reason}, reaching down the subtree")
        if permission in SUBTREE_DATA and self._at_home("subaccounts.read_data")[0]:
            return Decision(True, f"{reason}, with subaccounts.read_data")
        return Decision(False, "a sub-account's data is not readable from above")

    def allowed(self) -> frozenset[str]:
        return frozenset(p for p in CATALOGUE if self.decide(p).allowed)


async def _user_sources(
    user_id: int, home_id: int, home_name: str, role: str, home_ancestors: list[int]
) -> tuple[tuple[RoleSource, ...], tuple[Override, ...]]:
    """The membership role, team roles and overrides of a person in their home account."""
    teams = (
        await TeamMember.select(TeamMember.team.name, TeamMember.team.role)
        .where((TeamMember.user == user_id) & (TeamMember.team.account == home_id))
        .order_by(TeamMember.team.name)
    )
    override_rows = await PermissionOverride.select(
        PermissionOverride.permission,
        PermissionOverride.effect,
        PermissionOverride.set_by_label,
        PermissionOverride.set_at,
    ).where((PermissionOverride.user == user_id) & (PermissionOverride.account == home_id))
    perms = await resolve_roles(home_ancestors, {role, *(t["team.role"] for t in teams)})
    sources = [RoleSource(role=role, permissions=perms[role], via=f"membership in {home_name}")]
    sources += [
        RoleSource(
            role=t["team.role"],
            permissions=perms[t["team.role"]],
            via=f"team {t['team.name']}",
            team=t["team.name"],
        )
        for t in teams
    ]
    overrides = tuple(
        Override(
            permission=o["permission"],
            effect=o["effect"],
            set_by=o["set_by_label"],
            set_at=o["set_at"],
        )
        for o in override_rows
        if o["permission"] in CATALOGUE and o["permission"] not in NEVER_GRANTABLE
    )
    return tuple(sources), overrides


async def evaluate(principal: Principal, account_id: int) -> Grants:
    """Load what decides the principal's powers in the account.

    A few indexed queries: the account, suspended ancestors, the nearest membership, its
    teams, its overrides and (only when a custom role is involved) custom roles.
    """
    account = await get_account(account_id)
    if principal.is_operator:
        return Grants(account=account, is_operator=True)
    suspended = await suspended_ancestor(account)
    suspended_by = suspended.name if suspended else None
    overrides: tuple[Override, ...] = ()
    if principal.kind == "api_key":
        home_id = principal.key_account_id
        role = principal.key_role or ""
        where = f"API key {principal.label}"
        if home_id not in account.ancestor_ids:
            return Grants(account=account, blocked="outside the caller's account tree")
        home_ancestors = account.ancestor_ids[: account.ancestor_ids.index(home_id) + 1]
        perms = await resolve_roles(home_ancestors, {role})
        sources: tuple[RoleSource, ...] = (
            RoleSource(role=role, permissions=perms[role], via=where),
        )
    else:
        membership = (
            await _nearest_membership(principal.user_id, account)
            if principal.user_id is not None
            else None
        )
        if membership is None or principal.user_id is None:
            return Grants(
                account=account,
                blocked="not a member of this account or any account above it",
            )
        home_id = membership["account.id"]
        role = membership["role"]
        where = f"membership in {membership['account.name']}"
        home_ancestors = account.ancestor_ids[: account.ancestor_ids.index(home_id) + 1]
        sources, overrides = await _user_sources(
            principal.user_id, home_id, membership["account.name"], role, home_ancestors
        )
    if suspended is not None and account.ancestor_ids.index(home_id) >= suspended.depth:
        # The caller's own account lies inside the suspended subtree: nothing works there.
        return Grants(account=account, blocked=f"account {suspended.name} is suspended")
    return Grants(
        account=account,
        suspended_by=suspended_by,
        role=role,
        where=where,
        home_id=home_id,
        role_grants=frozenset().union(*(s.permissions for s in sources)),
        sources=sources,
        overrides=overrides,
    )


async def decide(principal: Principal, account_id: int, permission: str) -> Decision:
    """May `principal` use `permission` in account `account_id`, and why."""
    if permission not in CATALOGUE:
        raise ValueError(f"unknown permission {permission!r}")
    try:
        grants = await evaluate(principal, account_id)
    except NotFound:
        return Decision(False, "no such account")
    return grants.decide(permission)


async def require(principal: Principal, account_id: int, permission: str) -> None:
    decision = await decide(principal, account_id, permission)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
