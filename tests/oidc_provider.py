"""A small OpenID Connect provider for tests, served by uvicorn on loopback in a thread:
discovery, authorize (auto-approves `next_email`), token (checks the client secret and
PKCE S256) and JWKS. Keys and ID tokens are made with joserfc; `mode` makes it misbehave
on purpose (bad signature, wrong nonce/audience/issuer, expired token)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, get, post
from litestar.response import Redirect

CLIENT_ID = "portal-client"
CLIENT_SECRET = "portal-client-secret"


@dataclass
class ProviderState:
    issuer: str = ""
    next_email: str = "someone@example.test"
    next_subject: str = "subject-1"
    email_verified: bool = True
    mode: str = "ok"  # ok | bad_signature | wrong_nonce | wrong_audience | wrong_issuer | expired
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"}, private=True
        )
    )
    rogue_key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"}, private=True
        )
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_app(state: ProviderState) -> Litestar:
    @get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": state.issuer,
            "authorization_endpoint": f"{state.issuer}/authorize",
            "token_endpoint": f"{state.issuer}/token",
            "jwks_uri": f"{state.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @get("/authorize")
    async def authorize(request: Request) -> Response[Any]:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256":
            return Response({"error": "invalid_request"}, status_code=400)
        if "openid" not in (q.get("scope") or "").split():
            return Response({"error": "invalid_scope"}, status_code=400)
        code = secrets.token_urlsafe(16)
        state.codes[code] = {
            "challenge": q.get("code_challenge"),
            "nonce": q.get("nonce"),
            "redirect_uri": q.get("redirect_uri"),
            "email": state.next_email,
            "subject": state.next_subject,
        }
        target = f"{q.get('redirect_uri')}?{urlencode({'code': code, 'state': q.get('state')})}"
        return Redirect(path=target, status_code=302)

    @post("/token")
    async def token(request: Request) -> Response[Any]:
        form = dict(await request.form())
        state.token_requests.append(form)
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if auth != expected:
            return Response({"error": "invalid_client"}, status_code=401)
        grant = state.codes.pop(str(form.get("code")), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return Response({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return Response({"error": "invalid_grant"}, status_code=400)
        if _s256(str(form.get("code_verifier", ""))) != grant["challenge"]:
            return Response(
                {"error": "invalid_grant", "error_description": "PKCE"}, status_code=400
            )
        issued = int(time.time())
        claims = {
            "iss": state.issuer if state.mode != "wrong_issuer" else "http://127.0.0.1:1/other",
            "sub": grant["subject"],
            "aud": CLIENT_ID if state.mode != "wrong_audience" else "someone-else",
            "iat": issued,
            "exp": issued + (300 if state.mode != "expired" else -3600),
            "nonce": grant["nonce"] if state.mode != "wrong_nonce" else "another-nonce",
            "email": grant["email"],
            "email_verified": state.email_verified,
        }
        key = state.rogue_key if state.mode == "bad_signature" else state.key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
        return Response(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )

    @get("/jwks")
    async def jwks() -> dict[str, Any]:
        return KeySet([state.key]).as_dict(private=False)

    return Litestar(route_handlers=[discovery, authorize, token, jwks])


class LocalOidcProvider:
    """Starts on 127.0.0.1 with a free port; `stop()` shuts it down."""

    def __init__(self) -> None:
        self.state = ProviderState()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.state.issuer = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            build_app(self.state), log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def issuer(self) -> str:
        return self.state.issuer

    def start(self) -> LocalOidcProvider:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OIDC provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def reset(self) -> None:
        self.state.next_email = "someone@example.test"
        self.state.next_subject = "subject-" + secrets.token_hex(4)
        self.state.email_verified = True
        self.state.mode = "ok"
        self.state.codes.clear()
        self.state.token_requests.clear()
