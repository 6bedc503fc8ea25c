"""Access control: the permission catalogue, built-in roles and the one function that
decides whether a principal (a person or an API key) may do something in an account.

Management powers held in an account reach down its subtree; a sub-account's data
(contacts, messages, inbound) is not readable from above unless a permission says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenants import audit
from tenants.accounts import AccountView, get_account, suspended_ancestor
from tenants.errors import NotFound, PermissionDenied
from tenants.users import Membership

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


def role_permissions(role: str) -> frozenset[str]:
    return BUILTIN_ROLES.get(role, frozenset())


async def _nearest_membership(user_id: int, account: AccountView) -> dict | None:
    rows = await Membership.select(
        Membership.account.id, Membership.account.name, Membership.account.depth, Membership.role
    ).where((Membership.user == user_id) & (Membership.account.is_in(account.ancestor_ids)))
    if not rows:
        return None
    return max(rows, key=lambda r: r["account.depth"])


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
    role_grants: frozenset[str] = frozenset()

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
        if permission not in self.role_grants:
            return Decision(False, f"role {self.role} ({self.where}) does not include {permission}")
        if self.home_id == self.account.id:
            return Decision(True, f"role {self.role} ({self.where})")
        if permission in REACHES_DOWN:
            return Decision(True, f"role {self.role} ({self.where}) reaches down the subtree")
        if permission in SUBTREE_DATA and "subaccounts.read_data" in self.role_grants:
            return Decision(True, f"role {self.role} ({self.where}) with subaccounts.read_data")
        return Decision(False, "a sub-account's data is not readable from above")

    def allowed(self) -> frozenset[str]:
        return frozenset(p for p in CATALOGUE if self.decide(p).allowed)


async def evaluate(principal: Principal, account_id: int) -> Grants:
    """Load what decides the principal's powers in the account (a few queries)."""
    account = await get_account(account_id)
    if principal.is_operator:
        return Grants(account=account, is_operator=True)
    suspended = await suspended_ancestor(account)
    suspended_by = suspended.name if suspended else None
    if principal.kind == "api_key":
        home_id = principal.key_account_id
        role = principal.key_role or ""
        where = f"API key {principal.label}"
    else:
        membership = (
            await _nearest_membership(principal.user_id, account)
            if principal.user_id is not None
            else None
        )
        if membership is None:
            return Grants(
                account=account,
                blocked="not a member of this account or any account above it",
            )
        home_id = membership["account.id"]
        role = membership["role"]
        where = f"membership in {membership['account.name']}"
    if home_id not in account.ancestor_ids:
        return Grants(account=account, blocked="outside the caller's account tree")
    if suspended is not None and account.ancestor_ids.index(home_id) >= suspended.depth:
        # The caller's own account lies inside the suspended subtree: nothing works there.
        return Grants(account=account, blocked=f"account {suspended.name} is suspended")
    return Grants(
        account=account,
        suspended_by=suspended_by,
        role=role,
        where=where,
        home_id=home_id,
        role_grants=role_permissions(role),
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
