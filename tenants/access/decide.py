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
from datetime import UTC, datetime
from typing import Any

from tenants.access.tables import CustomRole, Membership
from tenants.accounts.tree import AccountView, get_account, get_accounts
from tenants.audit import record as audit
from tenants.errors import NotFound, PermissionDenied

# name -> what it lets a person do (shown on the permission matrix)
CATALOGUE: dict[str, str] = {
    "account.view": "See the account dashboard and switch into it",
    "accounts.manage": "Create, rename, suspend and reactivate sub-accounts",
    "credits.view": "Read the balance, the ledger and spend reports",
    "reports.view": "Read usage reports: counts of messages, segments and credits, no content",
    "credits.buy": "Buy credits for the account",
    "credits.allocate": "Allocate credits to sub-accounts and reclaim them",
    "pricing.manage": "Set prices for the subtree",
    "messages.send": "Send messages with free text",
    "messages.send_template": "Send messages from approved templates",
    "messages.view": "Read sent and received messages",
    "messages.export": "Export the messages list (with bodies) as CSV",
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
        "reports.view",
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
            "reports.view",
            "messages.send",
            "messages.send_template",
            "messages.view",
            "messages.export",
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
    "Finance": frozenset({"account.view", "credits.view", "credits.buy", "reports.view"}),
    "Viewer": frozenset(
        {
            "account.view",
            "credits.view",
            "reports.view",
            "messages.view",
            "contacts.view",
            "templates.view",
        }
    ),
}


# Permissions nobody can be handed by a role or an override.
NEVER_GRANTABLE: frozenset[str] = frozenset({"platform.operate"})
GRANTABLE: tuple[str, ...] = tuple(p for p in CATALOGUE if p not in NEVER_GRANTABLE)
OVERRIDE_EFFECTS = ("grant", "deny")


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


def _as_datetime(value: Any) -> datetime:
    # Raw queries on SQLite hand timestamps back as text.
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _account_with_ancestors(account_id: int) -> tuple[AccountView, list[AccountView]]:
    """The account and every account above it: two primary-key lookups (one at a root)."""
    account = await get_account(account_id)
    above = [i for i in account.ancestor_ids if i != account.id]
    return account, [*(await get_accounts(above) if above else []), account]


async def _person_rows(user_id: int, ancestor_ids: list[int]) -> list[dict[str, Any]]:
    """Memberships, team memberships and overrides of a person in the account and its
    ancestors, in one query; the nearest membership then picks which apply."""
    ids = ", ".join("{}" for _ in ancestor_ids)
    # Only placeholders are formatted in; every value travels as a parameter.
    sql = (
        "SELECT 'm' AS kind, m.account AS account_id, m.role AS a, '' AS b, '' AS c, "  # noqa: S608
        "CAST(NULL AS TIMESTAMPTZ) AS at FROM membership m "
        f'WHERE m."user" = {{}} AND m.account IN ({ids}) '
        "UNION ALL "
        "SELECT 't', t.account, t.role, t.name, '', CAST(NULL AS TIMESTAMPTZ) "
        "FROM team_member tm "
        "JOIN team t ON t.id = tm.team "
        f'WHERE tm."user" = {{}} AND t.account IN ({ids}) '
        "UNION ALL "
        "SELECT 'o', o.account, o.permission, o.effect, o.set_by_label, o.set_at "
        "FROM permission_override o "
        f'WHERE o."user" = {{}} AND o.account IN ({ids})'
    )
    args: list[Any] = []
    for _ in range(3):
        args += [user_id, *ancestor_ids]
    return await Membership.raw(sql, *args)


async def _user_sources(
    rows: list[dict[str, Any]], home: AccountView, role: str, home_ancestors: list[int]
) -> tuple[tuple[RoleSource, ...], tuple[Override, ...]]:
    """The membership role, team roles and overrides of a person in their home account."""
    teams = sorted(
        (r["b"], r["a"]) for r in rows if r["kind"] == "t" and r["account_id"] == home.id
    )
    perms = await resolve_roles(home_ancestors, {role, *(team_role for _, team_role in teams)})
    sources = [RoleSource(role=role, permissions=perms[role], via=f"membership in {home.name}")]
    sources += [
        RoleSource(role=team_role, permissions=perms[team_role], via=f"team {name}", team=name)
        for name, team_role in teams
    ]
    overrides = tuple(
        Override(permission=r["a"], effect=r["b"], set_by=r["c"], set_at=_as_datetime(r["at"]))
        for r in rows
        if r["kind"] == "o"
        and r["account_id"] == home.id
        and r["a"] in CATALOGUE
        and r["a"] not in NEVER_GRANTABLE
    )
    return tuple(sources), overrides


async def evaluate(principal: Principal, account_id: int) -> Grants:
    """Load what decides the principal's powers in the account.

    Indexed queries only: the account, its ancestors (none at a root), the person's
    memberships, teams and overrides along that path in one query, and custom roles only
    when one is held.
    """
    account, ancestors = await _account_with_ancestors(account_id)
    if principal.is_operator:
        return Grants(account=account, is_operator=True)
    suspended_rows = [a for a in ancestors if a.status == "suspended"]
    suspended = max(suspended_rows, key=lambda a: a.depth) if suspended_rows else None
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
        rows = (
            await _person_rows(principal.user_id, account.ancestor_ids)
            if principal.user_id is not None
            else []
        )
        by_id = {a.id: a for a in ancestors}
        memberships = [r for r in rows if r["kind"] == "m" and r["account_id"] in by_id]
        if not memberships:
            return Grants(
                account=account,
                blocked="not a member of this account or any account above it",
            )
        nearest = max(memberships, key=lambda r: by_id[r["account_id"]].depth)
        home = by_id[nearest["account_id"]]
        home_id = home.id
        role = nearest["a"]
        where = f"membership in {home.name}"
        home_ancestors = account.ancestor_ids[: account.ancestor_ids.index(home_id) + 1]
        sources, overrides = await _user_sources(rows, home, role, home_ancestors)
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
