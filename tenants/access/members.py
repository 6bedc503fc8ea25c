"""Managing who holds what in an account: member roles, teams, custom roles and per-user
overrides. Every change is audited in its own transaction.

Nobody hands out a permission they do not hold themselves: a role given to a member, a
team or a key, a custom role's permission set and a granted override must all lie
within the acting person's own grants (in their home account: a master's Owner holds
messages.send at home, so may give a Sender role in a sub-account whose messages the
Owner cannot read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenants.access.decide import (
    BUILTIN_ROLES,
    CATALOGUE,
    GRANTABLE,
    OVERRIDE_EFFECTS,
    Decision,
    Grants,
    Principal,
    custom_roles_visible,
    evaluate,
    format_permissions,
    parse_permissions,
    resolve_roles,
)
from tenants.access.tables import (
    ApiKey,
    CustomRole,
    Membership,
    PermissionOverride,
    Team,
    TeamMember,
    User,
)
from tenants.accounts.tree import AccountView
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import first_or_404, transaction
from tenants.errors import Conflict, FieldErrors, NotFound, PermissionDenied, ValidationFailed

ROLE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]{0,63}$")
OWNER_ROLES = ("Owner",)


@dataclass(frozen=True)
class RoleView:
    name: str
    permissions: frozenset[str]
    builtin: bool
    description: str = ""
    id: int | None = None
    account_id: int | None = None  # where a custom role is defined
    account_name: str = ""


@dataclass(frozen=True)
class MemberView:
    user_id: int
    email: str
    name: str
    role: str
    teams: tuple[str, ...]
    joined_at: datetime
    active: bool


@dataclass(frozen=True)
class TeamView:
    id: int
    name: str
    role: str
    members: tuple[tuple[int, str], ...]  # (user id, email)


@dataclass(frozen=True)
class MatrixRow:
    permission: str
    description: str
    allowed: bool
    reason: str
    override: str | None  # "grant", "deny" or None


# --- roles -------------------------------------------------------------------------


async def roles_for_account(account: AccountView) -> list[RoleView]:
    """Built-in roles, then the custom roles usable in the account (own and inherited)."""
    roles = [RoleView(name=n, permissions=p, builtin=True) for n, p in BUILTIN_ROLES.items()]
    custom = await custom_roles_visible(account.ancestor_ids)
    roles += [
        RoleView(
            name=row["name"],
            permissions=parse_permissions(row["permissions"]),
            builtin=False,
            description=row["description"],
            id=row["id"],
            account_id=row["account.id"],
            account_name=row["account.name"],
        )
        for row in sorted(custom.values(), key=lambda r: r["name"].lower())
    ]
    return roles


async def role_in_account(account: AccountView, name: str) -> RoleView | None:
    for role in await roles_for_account(account):
        if role.name == name:
            return role
    return None


def _missing_powers(grants: Grants, permissions: Iterable[str]) -> list[str]:
    return sorted(p for p in permissions if not grants.holds(p))


async def assignable_roles(grants: Grants) -> list[RoleView]:
    """Roles the actor may give in the working account: those within the actor's own
    powers (the ones `check_role_assignable` accepts)."""
    return [
        r
        for r in await roles_for_account(grants.account)
        if not _missing_powers(grants, r.permissions)
    ]


async def check_role_assignable(grants: Grants, role: str, field: str = "role") -> RoleView:
    """The role exists in the working account and gives nothing the actor lacks."""
    found = await role_in_account(grants.account, role)
    if found is None:
        raise ValidationFailed({field: f"Unknown role {role!r}."})
    missing = _missing_powers(grants, found.permissions)
    if missing:
        raise ValidationFailed(
            {
                field: f"You cannot give the role {role}: it includes permissions you do not "
                f"hold ({', '.join(missing)})."
            }
        )
    return found


async def _check_can_manage(grants: Grants, target_role: str, what: str) -> None:
    """Only people whose role lies within the actor's own powers can be changed by them."""
    perms = (await resolve_roles(grants.account.ancestor_ids, {target_role}))[target_role]
    missing = _missing_powers(grants, perms)
    if missing:
        raise PermissionDenied(
            f"You cannot change {what}: their role {target_role} holds permissions you do "
            f"not hold ({', '.join(missing)})."
        )


def _validate_permission_set(grants: Grants, permissions: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(permissions)
    unknown = sorted(p for p in chosen if p not in GRANTABLE)
    if unknown:
        raise ValidationFailed({"permissions": f"Unknown permissions: {', '.join(unknown)}."})
    if not chosen:
        raise ValidationFailed({"permissions": "Choose at least one permission."})
    missing = _missing_powers(grants, chosen)
    if missing:
        raise ValidationFailed(
            {
                "permissions": "You cannot put permissions you do not hold in a role: "
                + ", ".join(missing)
                + "."
            }
        )
    return chosen


@dataclass(frozen=True)
class _RoleFields:
    """A custom role's checked description (stripped) and permission set."""

    description: str
    permissions: frozenset[str]


def _collect_role_fields(
    errors: FieldErrors, grants: Grants, description: str, permissions: Iterable[str]
) -> _RoleFields:
    """Check what creating and editing a role share; refusals go into `errors`."""
    if len(description.strip()) > 200:
        errors.add("description", "Description must be at most 200 characters.")
    chosen: frozenset[str] = frozenset()
    with errors.collected():
        chosen = _validate_permission_set(grants, permissions)
    return _RoleFields(description=description.strip(), permissions=chosen)


def _check_role_name(errors: FieldErrors, name: str) -> None:
    if not ROLE_NAME_RE.match(name):
        errors.add(
            "name",
            "Name must start with a letter and use at most 64 letters, digits, spaces, "
            "dots, dashes or underscores.",
        )
    elif name.lower() in {n.lower() for n in BUILTIN_ROLES}:
        errors.add("name", f"{name} is a built-in role; choose another name.")


async def create_custom_role(
    actor: audit.Actor,
    grants: Grants,
    *,
    name: str,
    permissions: Iterable[str],
    description: str = "",
) -> RoleView:
    """Define a role in the working account; its whole subtree can use it."""
    account = grants.account
    name = (name or "").strip()
    errors = FieldErrors()
    _check_role_name(errors, name)
    fields = _collect_role_fields(errors, grants, description, permissions)
    errors.raise_if_any()
    async with transaction():
        await _refuse_role_name_in_tree(account, name)
        role_id = await _insert_custom_role(actor, account.id, name, fields)
        await audit.record(
            actor,
            account_id=account.id,
            action="role.create",
            target_type="role",
            target_id=role_id,
            after={
                "name": name,
                "permissions": sorted(fields.permissions),
                "description": description,
            },
        )
    return RoleView(
        name=name,
        permissions=fields.permissions,
        builtin=False,
        description=fields.description,
        id=role_id,
        account_id=account.id,
        account_name=account.name,
    )


async def _refuse_role_name_in_tree(account: AccountView, name: str) -> None:
    # One name means one role anywhere in the tree: above, here and below.
    clash = await CustomRole.exists().where(
        (CustomRole.name == name)
        & (
            CustomRole.account.is_in(account.ancestor_ids)
            | CustomRole.account.path.like(account.path + "%")
        )
    )
    if clash:
        raise ValidationFailed({"name": f"A role named {name} already exists in this tree."})


async def _insert_custom_role(
    actor: audit.Actor, account_id: int, name: str, fields: _RoleFields
) -> int:
    rows = await CustomRole.insert(
        CustomRole(
            account=account_id,
            name=name,
            description=fields.description,
            permissions=format_permissions(fields.permissions),
            created_by=actor.user_id,
        )
    ).returning(CustomRole.id)
    return int(rows[0]["id"])


async def _own_custom_role(account: AccountView, role_id: int) -> dict[str, Any]:
    row = await first_or_404(
        CustomRole.select().where((CustomRole.id == role_id) & (CustomRole.account == account.id)),
        "role not found",
    )
    return row


async def get_custom_role(account: AccountView, role_id: int) -> RoleView:
    row = await _own_custom_role(account, role_id)
    return RoleView(
        name=row["name"],
        permissions=parse_permissions(row["permissions"]),
        builtin=False,
        description=row["description"],
        id=row["id"],
        account_id=account.id,
        account_name=account.name,
    )


async def update_custom_role(
    actor: audit.Actor,
    grants: Grants,
    role_id: int,
    *,
    permissions: Iterable[str],
    description: str = "",
) -> RoleView:
    """Change a custom role's permissions (its name is fixed: members refer to it)."""
    account = grants.account
    errors = FieldErrors()
    fields = _collect_role_fields(errors, grants, description, permissions)
    async with transaction():
        row = await _own_custom_role(account, role_id)
        before = parse_permissions(row["permissions"])
        # Taking away powers the actor lacks would be as much an escalation as adding them.
        missing = _missing_powers(grants, before)
        if missing:
            raise PermissionDenied(
                f"The role {row['name']} holds permissions you do not hold ({', '.join(missing)})."
            )
        errors.raise_if_any()
        await CustomRole.update(
            {
                CustomRole.permissions: format_permissions(fields.permissions),
                CustomRole.description: fields.description,
                CustomRole.updated_at: now(),
            }
        ).where(CustomRole.id == role_id)
        await audit.record(
            actor,
            account_id=account.id,
            action="role.update",
            target_type="role",
            target_id=role_id,
            before={"permissions": sorted(before), "description": row["description"]},
            after={"permissions": sorted(fields.permissions), "description": fields.description},
        )
    return await get_custom_role(account, role_id)


async def role_usage(account: AccountView, name: str) -> int:
    """How many memberships, teams and active API keys in the subtree use the role name."""
    prefix = account.path + "%"
    members = await Membership.count().where(
        (Membership.role == name) & Membership.account.path.like(prefix)
    )
    teams = await Team.count().where((Team.role == name) & Team.account.path.like(prefix))
    keys = await ApiKey.count().where(
        (ApiKey.role == name) & ApiKey.account.path.like(prefix) & ApiKey.revoked_at.is_null()
    )
    return int(members) + int(teams) + int(keys)


async def delete_custom_role(actor: audit.Actor, grants: Grants, role_id: int) -> None:
    account = grants.account
    async with transaction():
        row = await _own_custom_role(account, role_id)
        missing = _missing_powers(grants, parse_permissions(row["permissions"]))
        if missing:
            raise PermissionDenied(
                f"The role {row['name']} holds permissions you do not hold ({', '.join(missing)})."
            )
        used = await role_usage(account, row["name"])
        if used:
            raise Conflict(
                f"The role {row['name']} is still used {used} time(s); give those members, "
                "teams and keys another role first.",
                code="role_in_use",
            )
        await CustomRole.delete().where(CustomRole.id == role_id)
        await audit.record(
            actor,
            account_id=account.id,
            action="role.delete",
            target_type="role",
            target_id=role_id,
            before={"name": row["name"], "permissions": row["permissions"].split()},
        )


# --- members -----------------------------------------------------------------------


async def list_members(account_id: int) -> list[MemberView]:
    rows = (
        await Membership.select(
            Membership.user.id,
            Membership.user.email,
            Membership.user.name,
            Membership.user.active,
            Membership.role,
            Membership.created_at,
        )
        .where(Membership.account == account_id)
        .order_by(Membership.user.email)
    )
    team_rows = await TeamMember.select(TeamMember.user, TeamMember.team.name).where(
        TeamMember.team.account == account_id
    )
    teams: dict[int, list[str]] = {}
    for t in team_rows:
        teams.setdefault(t["user"], []).append(t["team.name"])
    return [
        MemberView(
            user_id=r["user.id"],
            email=r["user.email"],
            name=r["user.name"],
            role=r["role"],
            teams=tuple(sorted(teams.get(r["user.id"], []))),
            joined_at=r["created_at"],
            active=r["user.active"],
        )
        for r in rows
    ]


async def get_member(account_id: int, user_id: int) -> MemberView:
    for member in await list_members(account_id):
        if member.user_id == user_id:
            return member
    raise NotFound("member not found")


async def _membership_row(account_id: int, user_id: int) -> dict[str, Any]:
    row = await first_or_404(
        Membership.select(Membership.id, Membership.role, Membership.user.email).where(
            (Membership.account == account_id) & (Membership.user == user_id)
        ),
        "member not found",
    )
    return row


async def _keep_an_owner(account: AccountView, user_id: int, role_before: str) -> None:
    """A master keeps at least one Owner: someone must be able to buy and manage."""
    if role_before not in OWNER_ROLES or not account.is_root:
        return
    owners = await Membership.count().where(
        (Membership.account == account.id)
        & Membership.role.is_in(list(OWNER_ROLES))
        & (Membership.user != user_id)
    )
    if not owners:
        raise Conflict(f"{account.name} must keep at least one Owner.", code="last_owner")


async def change_member_role(
    actor: audit.Actor, grants: Grants, user_id: int, role: str
) -> MemberView:
    account = grants.account
    async with transaction():
        row = await _membership_row(account.id, user_id)
        await _check_can_manage(grants, row["role"], row["user.email"])
        await check_role_assignable(grants, role)
        if row["role"] != role:
            await _keep_an_owner(account, user_id, row["role"])
            await Membership.update({Membership.role: role}).where(Membership.id == row["id"])
            await audit.record(
                actor,
                account_id=account.id,
                action="member.role",
                target_type="user",
                target_id=user_id,
                before={"email": row["user.email"], "role": row["role"]},
                after={"email": row["user.email"], "role": role},
            )
    return await get_member(account.id, user_id)


async def remove_member(actor: audit.Actor, grants: Grants, user_id: int) -> None:
    """Take a person out of the account: membership, its teams and its overrides."""
    account = grants.account
    async with transaction():
        row = await _membership_row(account.id, user_id)
        await _check_can_manage(grants, row["role"], row["user.email"])
        await _keep_an_owner(account, user_id, row["role"])
        team_ids = await Team.select(Team.id).where(Team.account == account.id)
        if team_ids:
            await TeamMember.delete().where(
                (TeamMember.user == user_id) & TeamMember.team.is_in([t["id"] for t in team_ids])
            )
        await PermissionOverride.delete().where(
            (PermissionOverride.user == user_id) & (PermissionOverride.account == account.id)
        )
        await Membership.delete().where(Membership.id == row["id"])
        await audit.record(
            actor,
            account_id=account.id,
            action="member.remove",
            target_type="user",
            target_id=user_id,
            before={"email": row["user.email"], "role": row["role"]},
        )


# --- teams -------------------------------------------------------------------------


async def list_teams(account_id: int) -> list[TeamView]:
    teams = (
        await Team.select(Team.id, Team.name, Team.role)
        .where(Team.account == account_id)
        .order_by(Team.name)
    )
    members = (
        await TeamMember.select(TeamMember.team, TeamMember.user.id, TeamMember.user.email)
        .where(TeamMember.team.account == account_id)
        .order_by(TeamMember.user.email)
    )
    by_team: dict[int, list[tuple[int, str]]] = {}
    for m in members:
        by_team.setdefault(m["team"], []).append((m["user.id"], m["user.email"]))
    return [
        TeamView(
            id=t["id"], name=t["name"], role=t["role"], members=tuple(by_team.get(t["id"], []))
        )
        for t in teams
    ]


async def _team_row(account_id: int, team_id: int) -> dict[str, Any]:
    row = await first_or_404(
        Team.select(Team.id, Team.name, Team.role).where(
            (Team.id == team_id) & (Team.account == account_id)
        ),
        "team not found",
    )
    return row


async def create_team(actor: audit.Actor, grants: Grants, *, name: str, role: str) -> TeamView:
    account = grants.account
    name = (name or "").strip()
    errors = FieldErrors()
    if not name:
        errors.add("name", "Name is required.")
    elif len(name) > 80:
        errors.add("name", "Name must be at most 80 characters.")
    with errors.collected():
        await check_role_assignable(grants, role)
    errors.raise_if_any()
    async with transaction():
        if await Team.exists().where((Team.account == account.id) & (Team.name == name)):
            raise ValidationFailed({"name": f"A team named {name} already exists here."})
        rows = await Team.insert(Team(account=account.id, name=name, role=role)).returning(Team.id)
        await audit.record(
            actor,
            account_id=account.id,
            action="team.create",
            target_type="team",
            target_id=rows[0]["id"],
            after={"name": name, "role": role},
        )
    return TeamView(id=rows[0]["id"], name=name, role=role, members=())


async def change_team_role(actor: audit.Actor, grants: Grants, team_id: int, role: str) -> None:
    account = grants.account
    async with transaction():
        team = await _team_row(account.id, team_id)
        await _check_can_manage(grants, team["role"], f"team {team['name']}")
        await check_role_assignable(grants, role)
        if team["role"] != role:
            await Team.update({Team.role: role}).where(Team.id == team_id)
            await audit.record(
                actor,
                account_id=account.id,
                action="team.role",
                target_type="team",
                target_id=team_id,
                before={"name": team["name"], "role": team["role"]},
                after={"name": team["name"], "role": role},
            )


async def delete_team(actor: audit.Actor, grants: Grants, team_id: int) -> None:
    account = grants.account
    async with transaction():
        team = await _team_row(account.id, team_id)
        await _check_can_manage(grants, team["role"], f"team {team['name']}")
        members = await TeamMember.select(TeamMember.user.email).where(TeamMember.team == team_id)
        await TeamMember.delete().where(TeamMember.team == team_id)
        await Team.delete().where(Team.id == team_id)
        await audit.record(
            actor,
            account_id=account.id,
            action="team.delete",
            target_type="team",
            target_id=team_id,
            before={
                "name": team["name"],
                "role": team["role"],
                "members": sorted(m["user.email"] for m in members),
            },
        )


async def add_team_member(actor: audit.Actor, grants: Grants, team_id: int, user_id: int) -> None:
    account = grants.account
    async with transaction():
        team = await _team_row(account.id, team_id)
        await check_role_assignable(grants, team["role"], field="user_id")
        try:
            member = await _membership_row(account.id, user_id)
        except NotFound:
            raise ValidationFailed(
                {"user_id": "Only members of this account can join its teams."}
            ) from None
        exists = await TeamMember.exists().where(
            (TeamMember.team == team_id) & (TeamMember.user == user_id)
        )
        if exists:
            return
        await TeamMember.insert(TeamMember(team=team_id, user=user_id))
        await audit.record(
            actor,
            account_id=account.id,
            action="team.member_add",
            target_type="team",
            target_id=team_id,
            after={"team": team["name"], "email": member["user.email"]},
        )


async def remove_team_member(
    actor: audit.Actor, grants: Grants, team_id: int, user_id: int
) -> None:
    account = grants.account
    async with transaction():
        team = await _team_row(account.id, team_id)
        rows = (
            await TeamMember.delete()
            .where((TeamMember.team == team_id) & (TeamMember.user == user_id))
            .returning(TeamMember.id)
        )
        if not rows:
            raise NotFound("team member not found")
        email = (await User.select(User.email).where(User.id == user_id).first() or {}).get(
            "email", str(user_id)
        )
        await audit.record(
            actor,
            account_id=account.id,
            action="team.member_remove",
            target_type="team",
            target_id=team_id,
            before={"team": team["name"], "email": email},
        )


# --- overrides and the permission matrix --------------------------------------------


async def set_override(
    actor: audit.Actor, grants: Grants, user_id: int, permission: str, effect: str
) -> None:
    """Grant or deny one permission to one member (`effect` "clear" removes the override)."""
    account = grants.account
    _check_override_request(grants, permission, effect)
    async with transaction():
        member = await _membership_row(account.id, user_id)
        await _check_can_manage(grants, member["role"], member["user.email"])
        existing = await _override_row(account.id, user_id, permission)
        if _override_unchanged(existing, effect):
            return
        change = _OverrideChange(user_id=user_id, permission=permission, effect=effect)
        await _write_override(actor, account.id, change, existing)
        before = {"permission": permission, "effect": existing["effect"]} if existing else None
        after = None if effect == "clear" else {"permission": permission, "effect": effect}
        await audit.record(
            actor,
            account_id=account.id,
            action="override.clear" if effect == "clear" else f"override.{effect}",
            target_type="user",
            target_id=user_id,
            before={"email": member["user.email"], **before} if before else None,
            after={"email": member["user.email"], **after} if after else None,
        )


@dataclass(frozen=True)
class _OverrideChange:
    """One member's override for one permission: grant, deny, or clear."""

    user_id: int
    permission: str
    effect: str


def _check_override_request(grants: Grants, permission: str, effect: str) -> None:
    if permission not in GRANTABLE:
        raise ValidationFailed({"permission": f"Unknown permission {permission!r}."})
    if effect not in (*OVERRIDE_EFFECTS, "clear"):
        raise ValidationFailed({"effect": "Effect must be grant, deny or clear."})
    # Granting, or lifting a deny, hands the power out: the actor must hold it.
    if effect != "deny" and not grants.holds(permission):
        raise PermissionDenied(f"You cannot grant {permission}: you do not hold it yourself.")


async def _override_row(account_id: int, user_id: int, permission: str) -> dict[str, Any] | None:
    return (
        await PermissionOverride.select(PermissionOverride.id, PermissionOverride.effect)
        .where(
            (PermissionOverride.user == user_id)
            & (PermissionOverride.account == account_id)
            & (PermissionOverride.permission == permission)
        )
        .first()
    )


def _override_unchanged(existing: dict[str, Any] | None, effect: str) -> bool:
    if effect == "clear":
        return existing is None
    return existing is not None and existing["effect"] == effect


async def _write_override(
    actor: audit.Actor, account_id: int, change: _OverrideChange, existing: dict[str, Any] | None
) -> None:
    if change.effect == "clear":
        assert existing is not None
        await PermissionOverride.delete().where(PermissionOverride.id == existing["id"])
    elif existing is None:
        await PermissionOverride.insert(
            PermissionOverride(
                user=change.user_id,
                account=account_id,
                permission=change.permission,
                effect=change.effect,
                set_by_user_id=actor.user_id,
                set_by_label=actor.label,
                set_at=now(),
            )
        )
    else:
        await PermissionOverride.update(
            {
                PermissionOverride.effect: change.effect,
                PermissionOverride.set_by_user_id: actor.user_id,
                PermissionOverride.set_by_label: actor.label,
                PermissionOverride.set_at: now(),
            }
        ).where(PermissionOverride.id == existing["id"])


async def member_grants(account_id: int, user_id: int) -> Grants:
    """What a member holds in the account (the user must be a direct member)."""
    row = await _membership_row(account_id, user_id)
    user = await User.select(User.is_operator).where(User.id == user_id).first()
    principal = Principal(
        kind="user",
        label=row["user.email"],
        user_id=user_id,
        is_operator=bool(user and user["is_operator"]),
    )
    return await evaluate(principal, account_id)


def matrix_row(grants: Grants, permission: str) -> MatrixRow:
    decision: Decision = grants.decide(permission)
    override = grants.override_for(permission)
    return MatrixRow(
        permission=permission,
        description=CATALOGUE[permission],
        allowed=decision.allowed,
        reason=decision.reason,
        override=override.effect if override else None,
    )


async def permission_matrix(account_id: int, user_id: int) -> list[MatrixRow]:
    """Every permission of the catalogue for one member: allowed or not, and why."""
    grants = await member_grants(account_id, user_id)
    return [matrix_row(grants, p) for p in CATALOGUE]
