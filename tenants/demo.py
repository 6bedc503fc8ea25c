"""The demo data of CONTRACT.md, seeded idempotently by `portal demo`."""

from __future__ import annotations

from tenants import accounts, users
from tenants.access import (
    BUILTIN_ROLES,
    CustomRole,
    PermissionOverride,
    Team,
    TeamMember,
    format_permissions,
)
from tenants.audit import SYSTEM
from tenants.db import transaction
from tenants.errors import NotFound

DEMO_PASSWORD = "demo-pass-123"

# slug, name, parent slug, consent_mode
DEMO_ACCOUNTS = [
    ("northwind", "Northwind Messaging", None, "inherit"),
    ("sydney", "Sydney Branch", "northwind", "inherit"),
    ("melbourne", "Melbourne Branch", "northwind", "isolated"),
    ("melbourne-events", "Melbourne Events", "melbourne", "inherit"),
]
# email, account slug, role
DEMO_USERS = [
    ("owner@northwind.test", "northwind", "Owner"),
    ("finance@northwind.test", "northwind", "Finance"),
    ("sender@sydney.test", "sydney", "Sender"),
    ("support@sydney.test", "sydney", "Support"),
    ("admin@melbourne.test", "melbourne", "Admin"),
    ("events@melbourne.test", "melbourne-events", "Sender"),
    ("sales@sydney.test", "sydney", "Viewer"),
]
# Access scenarios: a custom role the master defines for its tree, teams in Sydney, and
# one member of a team given a privilege beyond the team's role.
SALES_ROLE = ("northwind", "Sales", BUILTIN_ROLES["Sender"] - {"contacts.export"})
# team name, account slug, role, members
DEMO_TEAMS = [
    ("Sales team", "sydney", "Sales", ["sales@sydney.test"]),
    ("Front desk", "sydney", "Support", ["support@sydney.test"]),
]
# member, account slug, permission, effect, set by
DEMO_OVERRIDES = [
    ("sales@sydney.test", "sydney", "templates.approve", "grant", "owner@northwind.test"),
]
OPERATOR_EMAIL = "operator@portal.test"


async def _ensure_account(
    slug: str, name: str, parent_slug: str | None, consent_mode: str
) -> accounts.AccountView:
    try:
        return await accounts.get_account_by_slug(slug)
    except NotFound:
        pass
    if parent_slug is None:
        return await accounts.create_root_account(
            name=name, slug=slug, kind="master", consent_mode=consent_mode
        )
    parent = await accounts.get_account_by_slug(parent_slug)
    return await accounts.create_sub_account(
        actor=SYSTEM,
        within_account_id=parent.id,
        parent_id=parent.id,
        name=name,
        slug=slug,
        consent_mode=consent_mode,
    )


async def _ensure_user(email: str, *, password_hash: str, is_operator: bool = False) -> int:
    existing = await users.find_user_by_email(email)
    if existing:
        return existing.id
    created = await users.create_user(
        email=email,
        password=DEMO_PASSWORD,
        name=email.split("@")[0].title(),
        is_operator=is_operator,
        password_hash=password_hash,
    )
    return created.id


async def ensure_platform_account() -> accounts.AccountView:
    try:
        return await accounts.get_account_by_slug("platform")
    except NotFound:
        return await accounts.create_root_account(
            name="SMS Portal Platform", slug="platform", kind="platform"
        )


async def seed_demo() -> dict[str, int]:
    """Create whatever part of the demo data is missing; returns account ids by slug."""
    password_hash = users.hash_password(DEMO_PASSWORD)
    platform = await ensure_platform_account()
    ids = {"platform": platform.id}
    for slug, name, parent, mode in DEMO_ACCOUNTS:
        ids[slug] = (await _ensure_account(slug, name, parent, mode)).id
    operator_id = await _ensure_user(OPERATOR_EMAIL, password_hash=password_hash, is_operator=True)
    await users.add_membership(user_id=operator_id, account_id=platform.id, role="Owner")
    for email, slug, role in DEMO_USERS:
        user_id = await _ensure_user(email, password_hash=password_hash)
        await users.add_membership(user_id=user_id, account_id=ids[slug], role=role)
    await _seed_access(ids)
    return ids


async def _seed_access(ids: dict[str, int]) -> None:
    slug, name, permissions = SALES_ROLE
    async with transaction():
        if not await CustomRole.exists().where(
            (CustomRole.account == ids[slug]) & (CustomRole.name == name)
        ):
            await CustomRole.insert(
                CustomRole(
                    account=ids[slug],
                    name=name,
                    description="Sends and works with contacts; cannot export them",
                    permissions=format_permissions(permissions),
                )
            )
        for team_name, team_slug, role, members in DEMO_TEAMS:
            team = (
                await Team.select(Team.id)
                .where((Team.account == ids[team_slug]) & (Team.name == team_name))
                .first()
            )
            if team is None:
                rows = await Team.insert(
                    Team(account=ids[team_slug], name=team_name, role=role)
                ).returning(Team.id)
                team = rows[0]
            for email in members:
                user = await users.find_user_by_email(email)
                if user and not await TeamMember.exists().where(
                    (TeamMember.team == team["id"]) & (TeamMember.user == user.id)
                ):
                    await TeamMember.insert(TeamMember(team=team["id"], user=user.id))
        for email, o_slug, permission, effect, set_by in DEMO_OVERRIDES:
            user = await users.find_user_by_email(email)
            setter = await users.find_user_by_email(set_by)
            if user and not await PermissionOverride.exists().where(
                (PermissionOverride.user == user.id)
                & (PermissionOverride.account == ids[o_slug])
                & (PermissionOverride.permission == permission)
            ):
                await PermissionOverride.insert(
                    PermissionOverride(
                        user=user.id,
                        account=ids[o_slug],
                        permission=permission,
                        effect=effect,
                        set_by_user_id=setter.id if setter else None,
                        set_by_label=set_by,
                    )
                )
