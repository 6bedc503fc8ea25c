"""Invitations: an admin invites an email to an account with a role (and teams); the
invitee follows a single-use, expiring link, sets a password (or confirms theirs) and
lands in the account. Only the token's hash is stored."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenants import mail
from tenants.access import users
from tenants.access.decide import Grants
from tenants.access.members import check_role_assignable
from tenants.access.tables import Invitation, Membership, Team, TeamMember, User, token_hash
from tenants.access.users import EMAIL_RE
from tenants.accounts.tree import get_account
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import first_or_404, transaction
from tenants.errors import Conflict, FieldErrors, NotFound, ValidationFailed

INVITATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class NewInvitation:
    id: int
    email: str
    token: str  # shown once (inside the link), never stored
    expires_at: datetime


@dataclass(frozen=True)
class InvitationView:
    id: int
    account_id: int
    account_name: str
    email: str
    role: str
    teams: tuple[str, ...]
    invited_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    existing_user: bool = False

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now():
            return "expired"
        return "pending"


@dataclass(frozen=True)
class Accepted:
    user_id: int
    email: str
    account_id: int
    role: str


def invitation_path(token: str) -> str:
    return f"/invite/{token}"


def _team_id_list(text: str) -> list[int]:
    return [int(t) for t in text.split() if t.isascii() and t.isdigit()]


async def _views(rows: list[dict[str, Any]]) -> list[InvitationView]:
    team_ids = sorted({t for r in rows for t in _team_id_list(r["team_ids"])})
    names = (
        {
            t["id"]: t["name"]
            for t in await Team.select(Team.id, Team.name).where(Team.id.is_in(team_ids))
        }
        if team_ids
        else {}
    )
    return [
        InvitationView(
            id=r["id"],
            account_id=r["account.id"],
            account_name=r["account.name"],
            email=r["email"],
            role=r["role"],
            teams=tuple(names[t] for t in _team_id_list(r["team_ids"]) if t in names),
            invited_by=r["invited_by_label"],
            created_at=r["created_at"],
            expires_at=r["expires_at"],
            accepted_at=r["accepted_at"],
            revoked_at=r["revoked_at"],
        )
        for r in rows
    ]


_COLUMNS = (
    Invitation.id,
    Invitation.account.id,
    Invitation.account.name,
    Invitation.email,
    Invitation.role,
    Invitation.team_ids,
    Invitation.invited_by_label,
    Invitation.created_at,
    Invitation.expires_at,
    Invitation.accepted_at,
    Invitation.revoked_at,
)


async def list_invitations(account_id: int) -> list[InvitationView]:
    rows = (
        await Invitation.select(*_COLUMNS)
        .where(Invitation.account == account_id)
        .order_by(Invitation.id, ascending=False)
    )
    return await _views(rows)


async def _validate_teams(account_id: int, team_ids: list[int]) -> list[int]:
    if not team_ids:
        return []
    found = await Team.select(Team.id).where((Team.account == account_id) & Team.id.is_in(team_ids))
    if len(found) != len(set(team_ids)):
        raise ValidationFailed({"teams": "Choose teams of this account."})
    return sorted({t["id"] for t in found})


@dataclass(frozen=True)
class _Invite:
    """A checked invitation request: who, with which role, into which teams."""

    email: str
    role: str
    team_ids: list[int]


async def invite_user(
    actor: audit.Actor,
    grants: Grants,
    *,
    email: str,
    role: str,
    team_ids: list[int] | None = None,
) -> NewInvitation:
    """Invite an email to the working account with a role (and teams)."""
    account = grants.account
    invite = await _checked_invite(grants, users.normalize_email(email), role, team_ids or [])
    token = secrets.token_urlsafe(32)
    expires_at = now() + INVITATION_LIFETIME
    async with transaction():
        await _refuse_member_or_pending(account.id, account.name, invite.email)
        invitation_id = await _insert_invitation(actor, account.id, invite, token, expires_at)
        await audit.record(
            actor,
            account_id=account.id,
            action="invitation.create",
            target_type="invitation",
            target_id=invitation_id,
            after={"email": invite.email, "role": invite.role, "teams": invite.team_ids},
        )
    return NewInvitation(id=invitation_id, email=invite.email, token=token, expires_at=expires_at)


async def _checked_invite(grants: Grants, email: str, role: str, team_ids: list[int]) -> _Invite:
    errors = FieldErrors()
    if not EMAIL_RE.match(email):
        errors.add("email", "Enter a valid email address.")
    with errors.collected():
        await check_role_assignable(grants, role)
    teams: list[int] = []
    with errors.collected():
        teams = await _validate_teams(grants.account.id, list(team_ids))
        # Joining a team hands out its role as well.
        for team in (
            await Team.select(Team.role).where(Team.id.is_in(teams)).order_by(Team.id)
            if teams
            else []
        ):
            await check_role_assignable(grants, team["role"], field="teams")
    errors.raise_if_any()
    return _Invite(email=email, role=role, team_ids=teams)


async def _refuse_member_or_pending(account_id: int, account_name: str, email: str) -> None:
    member = await Membership.exists().where(
        (Membership.account == account_id) & (Membership.user.email == email)
    )
    if member:
        raise ValidationFailed({"email": f"{email} is already a member of {account_name}."})
    pending = await Invitation.exists().where(
        (Invitation.account == account_id)
        & (Invitation.email == email)
        & Invitation.accepted_at.is_null()
        & Invitation.revoked_at.is_null()
        & (Invitation.expires_at > now())
    )
    if pending:
        raise ValidationFailed(
            {"email": f"{email} already has a pending invitation; issue a new link instead."}
        )


async def _insert_invitation(
    actor: audit.Actor, account_id: int, invite: _Invite, token: str, expires_at: datetime
) -> int:
    rows = await Invitation.insert(
        Invitation(
            account=account_id,
            email=invite.email,
            role=invite.role,
            team_ids=" ".join(str(t) for t in invite.team_ids),
            token_hash=token_hash(token),
            invited_by_user_id=actor.user_id,
            invited_by_label=actor.label,
            expires_at=expires_at,
        )
    ).returning(Invitation.id)
    return int(rows[0]["id"])


async def _own_invitation(account_id: int, invitation_id: int) -> dict[str, Any]:
    row = await first_or_404(
        Invitation.select(*_COLUMNS).where(
            (Invitation.id == invitation_id) & (Invitation.account == account_id)
        ),
        "invitation not found",
    )
    return row


async def renew_invitation(actor: audit.Actor, grants: Grants, invitation_id: int) -> NewInvitation:
    """A fresh link (and expiry) for an invitation not yet accepted; the old link dies."""
    account = grants.account
    token = secrets.token_urlsafe(32)
    expires_at = now() + INVITATION_LIFETIME
    async with transaction():
        row = await _own_invitation(account.id, invitation_id)
        await check_role_assignable(grants, row["role"])
        if row["accepted_at"] is not None:
            raise Conflict("This invitation was already accepted.", code="invitation_used")
        await Invitation.update(
            {
                Invitation.token_hash: token_hash(token),
                Invitation.expires_at: expires_at,
                Invitation.revoked_at: None,
            }
        ).where(Invitation.id == invitation_id)
        await audit.record(
            actor,
            account_id=account.id,
            action="invitation.renew",
            target_type="invitation",
            target_id=invitation_id,
            before={"email": row["email"], "expires_at": row["expires_at"]},
            after={"email": row["email"], "expires_at": expires_at},
        )
    return NewInvitation(id=invitation_id, email=row["email"], token=token, expires_at=expires_at)


async def revoke_invitation(actor: audit.Actor, grants: Grants, invitation_id: int) -> None:
    account = grants.account
    async with transaction():
        row = await _own_invitation(account.id, invitation_id)
        if row["accepted_at"] is not None or row["revoked_at"] is not None:
            return
        await Invitation.update({Invitation.revoked_at: now()}).where(
            Invitation.id == invitation_id
        )
        await audit.record(
            actor,
            account_id=account.id,
            action="invitation.revoke",
            target_type="invitation",
            target_id=invitation_id,
            before={"email": row["email"], "status": "pending"},
            after={"email": row["email"], "status": "revoked"},
        )


async def find_invitation(token: str) -> InvitationView:
    """The invitation behind a link, whatever its status; NotFound for an unknown link."""
    row = (
        await Invitation.select(*_COLUMNS).where(Invitation.token_hash == token_hash(token)).first()
    )
    if row is None:
        raise NotFound("invitation not found")
    view = (await _views([row]))[0]
    existing = await users.find_user_by_email(view.email)
    return InvitationView(**{**view.__dict__, "existing_user": existing is not None})


def unusable_error(view: InvitationView) -> Conflict:
    messages = {
        "accepted": "This invitation was already used.",
        "revoked": "This invitation was withdrawn.",
        "expired": "This invitation has expired; ask for a new link.",
    }
    return Conflict(
        messages.get(view.status, "This invitation cannot be used."),
        code=f"invitation_{view.status}",
    )


async def _join(row: dict[str, Any], user_id: int, email: str, ip: str | None) -> Accepted:
    """Membership and teams for an accepted invitation (inside the caller's transaction)."""
    account_id = row["account"]
    await users.add_membership(user_id=user_id, account_id=account_id, role=row["role"])
    teams = _team_id_list(row["team_ids"])
    if teams:
        # Teams deleted since the invitation are skipped.
        still = await Team.select(Team.id).where(
            (Team.account == account_id) & Team.id.is_in(teams)
        )
        for team in still:
            if not await TeamMember.exists().where(
                (TeamMember.team == team["id"]) & (TeamMember.user == user_id)
            ):
                await TeamMember.insert(TeamMember(team=team["id"], user=user_id))
    await audit.record(
        audit.Actor(user_id=user_id, label=email, ip=ip),
        account_id=account_id,
        action="invitation.accept",
        target_type="invitation",
        target_id=row["id"],
        before={"status": "pending"},
        after={"status": "accepted", "email": email, "role": row["role"], "teams": teams},
    )
    return Accepted(user_id=user_id, email=email, account_id=account_id, role=row["role"])


async def _claim(where: Any) -> dict[str, Any] | None:
    """Mark one usable invitation accepted in one statement (single use under concurrency)."""
    rows = (
        await Invitation.update({Invitation.accepted_at: now()})
        .where(
            where
            & Invitation.accepted_at.is_null()
            & Invitation.revoked_at.is_null()
            & (Invitation.expires_at > now())
        )
        .returning(
            Invitation.id,
            Invitation.account,
            Invitation.email,
            Invitation.role,
            Invitation.team_ids,
        )
    )
    return rows[0] if rows else None


async def accept_invitation(
    token: str, *, password: str, name: str = "", ip: str | None = None
) -> Accepted:
    """Accept with a new password (new user) or the existing user's own password."""
    view = await find_invitation(token)
    if view.status != "pending":
        raise unusable_error(view)
    existing = (
        await User.select(User.id, User.password_hash, User.active)
        .where(User.email == view.email)
        .first()
    )
    if existing is not None:
        if not existing["active"]:
            raise Conflict("This user is disabled.", code="user_disabled")
        if not existing["password_hash"] or not users.verify_password(
            existing["password_hash"], password
        ):
            raise ValidationFailed({"password": "That is not the password of this user."})
    elif len(password) < users.MIN_PASSWORD:
        raise ValidationFailed(
            {"password": f"Password must be at least {users.MIN_PASSWORD} characters."}
        )
    async with transaction():
        row = await _claim(Invitation.token_hash == token_hash(token))
        if row is None:
            raise unusable_error(await find_invitation(token))
        if existing is not None:
            user_id = existing["id"]
        else:
            created = await users.create_user(email=view.email, password=password, name=name)
            user_id = created.id
        await Invitation.update({Invitation.accepted_user_id: user_id}).where(
            Invitation.id == row["id"]
        )
        return await _join(row, user_id, view.email, ip)


async def accept_pending_for_email(
    root_account_id: int, email: str, *, ip: str | None = None
) -> Accepted | None:
    """Single sign-on's first sign-in: accept the newest usable invitation of this email in
    the tree (creating the user, who signs in through the provider, not a password)."""
    root = await get_account(root_account_id)
    email = users.normalize_email(email)
    async with transaction():
        candidate = (
            await Invitation.select(Invitation.id)
            .where(
                (Invitation.email == email)
                & Invitation.account.path.like(root.path + "%")
                & Invitation.accepted_at.is_null()
                & Invitation.revoked_at.is_null()
                & (Invitation.expires_at > now())
            )
            .order_by(Invitation.id, ascending=False)
            .first()
        )
        if candidate is None:
            return None
        row = await _claim(Invitation.id == candidate["id"])
        if row is None:
            return None
        found = await users.find_user_by_email(email)
        if found is None:
            # Nobody knows this password: the person signs in through the provider.
            found = await users.create_user(email=email, password=secrets.token_urlsafe(32))
        await Invitation.update({Invitation.accepted_user_id: found.id}).where(
            Invitation.id == row["id"]
        )
        return await _join(row, found.id, email, ip)


async def email_invitation(invitation_id: int, link: str) -> bool:
    """Send the invitation link by SMTP if configured and the invitation is still pending."""
    settings = mail.mail_settings()
    if settings is None:
        return False
    row = await Invitation.select(*_COLUMNS).where(Invitation.id == invitation_id).first()
    if row is None:
        return False
    view = (await _views([row]))[0]
    if view.status != "pending":
        return False
    body = (
        f"{view.invited_by} invited you to {view.account_name} as {view.role}.\n\n"
        f"Open this link to join (valid until {view.expires_at:%Y-%m-%d %H:%M} UTC, "
        f"single use):\n{link}\n"
    )
    await asyncio.to_thread(
        mail.send_mail,
        settings,
        to=view.email,
        subject=f"You are invited to {view.account_name}",
        body=body,
    )
    return True
