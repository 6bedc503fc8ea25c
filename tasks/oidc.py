"""OpenID Connect HTTP: discovery, the authorization URL and the code exchange with PKCE
S256 through Authlib's AsyncOAuth2Client, the provider's keys, and the ID token verified
with joserfc. Implements tenants.access.sso.OidcFlow; the domain decides who signs in."""

from __future__ import annotations

from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tenants.access.sso import OidcClient, SsoFailed

HTTP_TIMEOUT_SECONDS = 10.0
SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
CLOCK_LEEWAY_SECONDS = 30


def _oauth_client(client: OidcClient) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        scope="openid email profile",
        redirect_uri=client.redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


async def _get_json(oauth: AsyncOAuth2Client, url: str, what: str) -> dict[str, Any]:
    try:
        # Discovery and keys are public: no access token goes with them.
        response = await oauth.request("GET", url, withhold_token=True)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SsoFailed(
            f"The provider's {what} could not be read ({type(exc).__name__})."
        ) from None
    if not isinstance(data, dict):
        raise SsoFailed(f"The provider's {what} is not a JSON object.")
    return data


async def _discover(oauth: AsyncOAuth2Client, issuer: str) -> dict[str, Any]:
    meta = await _get_json(
        oauth, f"{issuer}/.well-known/openid-configuration", "discovery document"
    )
    if meta.get("issuer", "").rstrip("/") != issuer:
        raise SsoFailed("The provider's discovery document names another issuer.")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str):
            raise SsoFailed(f"The provider's discovery document has no {key}.")
    return meta


def verify_id_token(
    id_token: str, jwks: dict[str, Any], *, issuer: str, client_id: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims after its signature and claims were checked (SsoFailed)."""
    try:
        key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        token = jwt.decode(id_token, key_set, algorithms=SIGNING_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise SsoFailed(f"The provider's ID token was refused ({type(exc).__name__}).") from None
    claims = dict(token.claims)
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise SsoFailed("The provider's ID token was issued to another party.")
    return claims


class AuthlibOidc:
    """The OidcFlow of the portal: every call discovers the provider afresh (a sign-in is
    rare; a changed provider configuration takes effect at once)."""

    async def authorization_url(
        self, client: OidcClient, *, state: str, nonce: str, code_verifier: str
    ) -> str:
        async with _oauth_client(client) as oauth:
            meta = await _discover(oauth, client.issuer)
            url, _ = oauth.create_authorization_url(
                meta["authorization_endpoint"],
                state=state,
                nonce=nonce,
                code_verifier=code_verifier,
            )
        return str(url)

    async def verified_claims(
        self, client: OidcClient, *, code: str, code_verifier: str, nonce: str
    ) -> dict[str, Any]:
        async with _oauth_client(client) as oauth:
            meta = await _discover(oauth, client.issuer)
            try:
                token = await oauth.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=code_verifier
                )
            except (OAuthError, httpx.HTTPError, ValueError) as exc:
                raise SsoFailed(f"The provider refused the code ({type(exc).__name__}).") from None
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise SsoFailed("The provider sent no ID token.")
            jwks = await _get_json(oauth, meta["jwks_uri"], "signing keys")
        return verify_id_token(
            id_token, jwks, issuer=client.issuer, client_id=client.client_id, nonce=nonce
        )


OIDC = AuthlibOidc()
