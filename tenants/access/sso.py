"""Single sign-on: a master's OpenID Connect provider for its tree (client secret kept
encrypted), the flow's state (state, nonce, PKCE verifier, sealed in a cookie), what the
verified ID token's claims must say, and linking people to the provider.

The HTTP side (discovery, the authorization URL, redeeming the code, the provider's keys
and the ID token's signature, issuer, audience, expiry and nonce) goes through an
`OidcFlow` (the port below), implemented in tasks/ with Authlib and joserfc.

A person may sign in through the provider when they are already a member of an account
in the tree, or hold a pending invitation there (the first sign-in accepts it); anyone
else is refused.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from tenants import secrets_box
from tenants.access import invitations, users
from tenants.access.decide import Grants
from tenants.access.tables import Membership, SsoIdentity, SsoProvider
from tenants.accounts.tree import AccountView, get_account, get_account_by_slug
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import transaction, view_of
from tenants.errors import Conflict, DomainError, NotFound, ValidationFailed

FLOW_LIFETIME_SECONDS = 600
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class SsoFailed(DomainError):
    """The provider's answer could not be trusted or the flow broke; nobody signs in."""

    code = "sso_failed"


class SsoRefused(DomainError):
    """The provider vouched for someone who has no place in this tree."""

    code = "sso_refused"


@dataclass(frozen=True)
class ProviderView:
    id: int
    account_id: int
    account_name: str
    account_slug: str
    issuer: str
    client_id: str
    enabled: bool


@dataclass(frozen=True)
class OidcClient:
    """This portal as a client of the provider: what the OidcFlow needs to talk to it."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str


class OidcFlow(Protocol):
    """The provider's side of the authorization-code flow with PKCE S256. Both raise
    SsoFailed when the provider cannot be reached or its answer cannot be trusted."""

    async def authorization_url(
        self, client: OidcClient, *, state: str, nonce: str, code_verifier: str
    ) -> str: ...

    async def verified_claims(
        self, client: OidcClient, *, code: str, code_verifier: str, nonce: str
    ) -> dict[str, Any]:
        """Redeem the code and return the ID token's claims once its signature, issuer,
        audience (and authorized party), expiry, subject and nonce were checked."""
        ...


@dataclass(frozen=True)
class StartedFlow:
    authorize_url: str
    state_blob: str  # encrypted; kept by the browser in a cookie until the callback


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    email: str
    account_id: int  # where the person starts working
    next_path: str


def validate_issuer(issuer: str) -> str | None:
    """HTTPS, or plain HTTP to a loopback host (development and tests)."""
    parsed = urlparse(issuer)
    if parsed.scheme == "https" and parsed.hostname:
        return None
    if parsed.scheme == "http" and parsed.hostname in LOOPBACK_HOSTS:
        return None
    return "The issuer must be an https:// URL."


def _view(row: dict[str, Any]) -> ProviderView:
    return view_of(
        ProviderView,
        row,
        account_id=row["account.id"],
        account_name=row["account.name"],
        account_slug=row["account.slug"],
    )


_COLUMNS = (
    SsoProvider.id,
    SsoProvider.account.id,
    SsoProvider.account.name,
    SsoProvider.account.slug,
    SsoProvider.issuer,
    SsoProvider.client_id,
    SsoProvider.enabled,
)


async def provider_for_account(root_account_id: int) -> ProviderView | None:
    row = await SsoProvider.select(*_COLUMNS).where(SsoProvider.account == root_account_id).first()
    return _view(row) if row else None


async def provider_for_tree(account: AccountView) -> ProviderView | None:
    """The provider of the master at the root of the account's tree, if any."""
    return await provider_for_account(account.ancestor_ids[0])


async def provider_for_slug(slug: str) -> ProviderView:
    """The enabled provider of the master with this slug; NotFound otherwise."""
    try:
        account = await get_account_by_slug((slug or "").strip().lower())
    except NotFound:
        raise NotFound("no single sign-on for this organisation") from None
    provider = await provider_for_account(account.id) if account.is_root else None
    if provider is None or not provider.enabled:
        raise NotFound("no single sign-on for this organisation")
    return provider


@dataclass(frozen=True)
class _ProviderSettings:
    """What the master asked for, trimmed and checked; a blank secret keeps the stored one."""

    issuer: str
    client_id: str
    client_secret: str
    enabled: bool


async def configure_provider(
    actor: audit.Actor,
    grants: Grants,
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    enabled: bool = True,
) -> ProviderView:
    """Set the master's provider; a blank secret keeps the stored one."""
    account = grants.account
    if not account.is_root:
        raise Conflict("Single sign-on is configured by the master account.", code="not_master")
    wanted = _ProviderSettings(
        issuer=(issuer or "").strip().rstrip("/"),
        client_id=(client_id or "").strip(),
        client_secret=client_secret,
        enabled=enabled,
    )
    existing = await provider_for_account(account.id)
    _validate_provider(wanted, has_stored_secret=existing is not None)
    async with transaction():
        if existing is None:
            await _insert_provider(account.id, wanted)
        else:
            await _update_provider(existing.id, wanted)
        await _audit_configure(actor, account.id, existing, wanted)
    provider = await provider_for_account(account.id)
    assert provider is not None
    return provider


def _validate_provider(wanted: _ProviderSettings, *, has_stored_secret: bool) -> None:
    errors: dict[str, str] = {}
    issuer_problem = (
        validate_issuer(wanted.issuer) if wanted.issuer else "The issuer URL is required."
    )
    if issuer_problem:
        errors["issuer"] = issuer_problem
    if not wanted.client_id:
        errors["client_id"] = "The client id is required."
    elif len(wanted.client_id) > 255:
        errors["client_id"] = "The client id must be at most 255 characters."
    if not wanted.client_secret and not has_stored_secret:
        errors["client_secret"] = "The client secret is required."
    if errors:
        raise ValidationFailed(errors)


async def _insert_provider(account_id: int, wanted: _ProviderSettings) -> None:
    await SsoProvider.insert(
        SsoProvider(
            account=account_id,
            issuer=wanted.issuer,
            client_id=wanted.client_id,
            client_secret=secrets_box.encrypt(wanted.client_secret),
            enabled=wanted.enabled,
        )
    )


async def _update_provider(provider_id: int, wanted: _ProviderSettings) -> None:
    values: dict[Any, Any] = {
        SsoProvider.issuer: wanted.issuer,
        SsoProvider.client_id: wanted.client_id,
        SsoProvider.enabled: wanted.enabled,
        SsoProvider.updated_at: now(),
    }
    if wanted.client_secret:
        values[SsoProvider.client_secret] = secrets_box.encrypt(wanted.client_secret)
    await SsoProvider.update(values).where(SsoProvider.id == provider_id)


async def _audit_configure(
    actor: audit.Actor,
    account_id: int,
    existing: ProviderView | None,
    wanted: _ProviderSettings,
) -> None:
    after: dict[str, Any] = {
        "issuer": wanted.issuer,
        "client_id": wanted.client_id,
        "enabled": wanted.enabled,
    }
    if wanted.client_secret:
        after["client_secret"] = "changed"
    await audit.record(
        actor,
        account_id=account_id,
        action="sso.configure",
        target_type="sso_provider",
        target_id=account_id,
        before=(
            {
                "issuer": existing.issuer,
                "client_id": existing.client_id,
                "enabled": existing.enabled,
            }
            if existing
            else None
        ),
        after=after,
    )


async def _client_secret(provider_id: int) -> str:
    row = (
        await SsoProvider.select(SsoProvider.client_secret)
        .where(SsoProvider.id == provider_id)
        .first()
    )
    if row is None:
        raise SsoFailed("The single sign-on provider is no longer configured.")
    return secrets_box.decrypt(row["client_secret"])


async def _oidc_client(provider: ProviderView, redirect_uri: str) -> OidcClient:
    return OidcClient(
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=await _client_secret(provider.id),
        redirect_uri=redirect_uri,
    )


async def begin_sign_in(
    provider: ProviderView, *, redirect_uri: str, next_path: str, oidc: OidcFlow
) -> StartedFlow:
    """The provider's authorization URL and the encrypted state to check at the callback."""
    client = await _oidc_client(provider, redirect_uri)
    # A PKCE verifier has 43 to 128 characters; 64 random bytes give 86.
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    url = await oidc.authorization_url(client, state=state, nonce=nonce, code_verifier=verifier)
    blob = secrets_box.encrypt(
        json.dumps(
            {
                "p": provider.id,
                "s": state,
                "n": nonce,
                "v": verifier,
                "r": redirect_uri,
                "next": next_path,
            }
        )
    )
    return StartedFlow(authorize_url=url, state_blob=blob)


async def complete_sign_in(
    state_blob: str, *, state: str, code: str, oidc: OidcFlow, ip: str | None = None
) -> SignedIn:
    """Check the callback against the stored flow, redeem the code, verify the ID token
    and find (or link) the person."""
    try:
        flow = json.loads(secrets_box.decrypt(state_blob, max_age_seconds=FLOW_LIFETIME_SECONDS))
    except (secrets_box.SecretUnreadable, ValueError):
        raise SsoFailed("This sign-in attempt expired; start again.") from None
    if not state or not secrets.compare_digest(str(flow.get("s", "")), state):
        raise SsoFailed("The sign-in answer does not match this browser's attempt.")
    if not code:
        raise SsoFailed("The provider sent no authorization code.")
    row = await SsoProvider.select(*_COLUMNS).where(SsoProvider.id == flow["p"]).first()
    if row is None or not row["enabled"]:
        raise SsoFailed("Single sign-on is no longer configured for this organisation.")
    provider = _view(row)
    client = await _oidc_client(provider, flow["r"])
    claims = await oidc.verified_claims(client, code=code, code_verifier=flow["v"], nonce=flow["n"])
    email = users.normalize_email(str(claims.get("email") or ""))
    if not email:
        raise SsoRefused("The provider did not tell us your email address.")
    if claims.get("email_verified") is False:
        raise SsoRefused(f"The provider has not verified {email}.")
    user_id, account_id = await link_identity(provider, str(claims["sub"]), email, ip=ip)
    return SignedIn(user_id=user_id, email=email, account_id=account_id, next_path=flow["next"])


async def _tree_membership(user_id: int, root: AccountView) -> int | None:
    """The shallowest account of the tree the user is a member of."""
    rows = await Membership.select(Membership.account.id, Membership.account.depth).where(
        (Membership.user == user_id) & Membership.account.path.like(root.path + "%")
    )
    if not rows:
        return None
    # Shallowest first; of siblings at one depth, the oldest account (the same every time).
    return min(rows, key=lambda r: (r["account.depth"], r["account.id"]))["account.id"]


async def link_identity(
    provider: ProviderView, subject: str, email: str, *, ip: str | None = None
) -> tuple[int, int]:
    """(user id, account id) for a verified provider identity; SsoRefused for strangers."""
    root = await get_account(provider.account_id)
    linked = (
        await SsoIdentity.select(SsoIdentity.user.id, SsoIdentity.user.active)
        .where((SsoIdentity.provider == provider.id) & (SsoIdentity.subject == subject))
        .first()
    )
    if linked is not None:
        account_id = await _tree_membership(linked["user.id"], root)
        if not linked["user.active"] or account_id is None:
            raise SsoRefused(f"{email} no longer has access to {root.name}.")
        return linked["user.id"], account_id
    user = await users.find_user_by_email(email)
    account_id = await _tree_membership(user.id, root) if user else None
    async with transaction():
        if user is None or account_id is None:
            accepted = await invitations.accept_pending_for_email(root.id, email, ip=ip)
            if accepted is None:
                raise SsoRefused(
                    f"{email} has no account and no invitation at {root.name}. "
                    "Ask an administrator to invite you."
                )
            user = await users.get_user(accepted.user_id)
            account_id = accepted.account_id
        if not user.active:
            raise SsoRefused(f"{email} is disabled.")
        await SsoIdentity.insert(
            SsoIdentity(provider=provider.id, subject=subject, user=user.id, email=email)
        )
        await audit.record(
            audit.Actor(user_id=user.id, label=email, ip=ip),
            account_id=account_id,
            action="sso.link",
            target_type="user",
            target_id=user.id,
            after={"issuer": provider.issuer, "subject": subject, "email": email},
        )
    return user.id, account_id
