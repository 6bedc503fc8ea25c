"""Provider integrations: which providers (simulator, Sinch, MessageMedia, Twilio) the
platform operator and, when the operator allows it, a master configure; their settings and
sealed credentials (shown once, never again); the provider each account uses per channel
(chosen in Settings > Channels, inherited down the tree); their callback URLs; and tying
provider callbacks back to our messages (tenants.providers.callbacks).

A message carries the key of the integration chosen when it was accepted (`simulator` for
the built-in one, `integration:<id>` otherwise), so its callbacks and retries go to the
provider that really has it even if the account's choice changes later.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenants import secrets_box
from tenants.accounts.tables import Account
from tenants.accounts.tree import AccountView, get_account
from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import after_commit, first_or_404, flag, run_sql, shared_read, transaction, view_of
from tenants.errors import Conflict, FieldErrors, NotFound, PermissionDenied, ValidationFailed
from tenants.messaging.messages import CHANNELS
from tenants.phones import sender_problem
from tenants.providers.signing import normalised_public_key, public_key_problem
from tenants.providers.tables import (
    BASE_URL_MAX,
    NAME_MAX,
    ChannelDefault,
    ProviderIntegration,
    ProviderPermit,
)
from tenants.settings import get_settings

BUILTIN = "simulator"
KEY_PREFIX = "integration:"
STATUSES = ("active", "disabled")
# What a Settings > Channels form field may say besides an integration id.
INHERIT, USE_BUILTIN = "inherit", "simulator"


# --- the kinds of provider and their fields -------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    help: str = ""
    secret: bool = False
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()  # (value, label)
    pattern: str | None = None
    pattern_message: str = ""
    sender: bool = False  # validated like a sender ID or number
    max_length: int = 500
    # How a typed value is kept (before it is checked), and a check of its own.
    normalise: Callable[[str], str] | None = None
    problem: Callable[[str], str | None] | None = None

    def check(self, value: str) -> str | None:
        """The message to show next to the field, or None when the value is fine."""
        if not value:
            return f"{self.label} is required." if self.required else None
        if len(value) > self.max_length:
            return f"{self.label} is at most {self.max_length} characters."
        if self.choices and value not in {v for v, _ in self.choices}:
            return f"Choose one of: {', '.join(label for _, label in self.choices)}."
        if self.pattern and not re.fullmatch(self.pattern, value):
            return self.pattern_message or f"{self.label} does not look right."
        if self.sender:
            return sender_problem(value)
        if self.problem:
            return self.problem(value)
        return None


@dataclass(frozen=True)
class ProviderKind:
    kind: str
    label: str
    channels: frozenset[str]
    fields: tuple[Field, ...]
    about: str = ""
    # How the provider's callbacks are verified, in words for the integration page.
    verification: str = ""
    # (field, the field it needs): when the first is given, the second is required.
    needs: tuple[tuple[str, str], ...] = ()

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def secret_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.secret)

    @property
    def plain_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.secret)


REGIONS = (("us", "US"), ("eu", "EU"))
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

KINDS: dict[str, ProviderKind] = {
    k.kind: k
    for k in (
        ProviderKind(
            kind="simulator",
            label="Built-in simulator",
            channels=frozenset(CHANNELS),
            fields=(),
            about="Submits nothing outside the machine; posts realistic callbacks back.",
            verification="The simulator's shared secret (X-Simulator-Secret).",
        ),
        ProviderKind(
            kind="sinch_sms",
            label="Sinch SMS (REST batches API)",
            channels=frozenset({"sms", "mms"}),
            fields=(
                Field(
                    "service_plan_id",
                    "Service plan ID",
                    "SMS > APIs > REST configuration in the Sinch dashboard.",
                    pattern=r"[A-Za-z0-9]{8,64}",
                    pattern_message="A service plan ID is 8 to 64 letters and digits.",
                ),
                Field(
                    "api_token",
                    "API token",
                    "The REST API token of the service plan (sent as a Bearer token).",
                    secret=True,
                    pattern=r"[A-Za-z0-9]{16,128}",
                    pattern_message="An API token is 16 to 128 letters and digits.",
                ),
                Field("region", "Region", "Where the service plan is hosted.", choices=REGIONS),
                Field(
                    "default_sender",
                    "Default sender",
                    "Used when a message names no sender; leave empty to use the service plan's default originator.",
                    required=False,
                    sender=True,
                ),
                Field(
                    "callback_secret",
                    "Callback secret",
                    "Optional. Sinch signs SMS callbacks only once your Sinch account manager "
                    "enables callback signing: then enter the secret here and every delivery "
                    "report and inbound message must carry a valid x-sinch-webhook-signature "
                    "(HMAC-SHA256 of body.nonce.timestamp, at most 5 minutes old). Empty: "
                    "callbacks are checked by the secret segment of their URL only.",
                    secret=True,
                    required=False,
                ),
            ),
            about="Batches of up to 100 recipients of the same text per request; per-recipient delivery reports.",
            verification=(
                "A secret segment in the callback URL (Sinch posts to the URL of each batch); "
                "with a callback secret, also Sinch's HMAC-SHA256 signature and a 5 minute "
                "replay window on its timestamp."
            ),
        ),
        ProviderKind(
            kind="sinch_conversation",
            label="Sinch Conversation API (RCS, WhatsApp)",
            channels=frozenset({"rcs", "whatsapp", "sms"}),
            fields=(
                Field(
                    "project_id",
                    "Project ID",
                    "Shown on the Access keys page of the Sinch dashboard.",
                    pattern=UUID,
                    pattern_message="A project ID looks like 123e4567-e89b-12d3-a456-426614174000.",
                ),
                Field(
                    "app_id",
                    "App ID",
                    "The Conversation API app that holds the RCS / WhatsApp channel credentials.",
                    pattern=r"[0-9A-Za-z]{26}",
                    pattern_message="An app ID has 26 letters and digits.",
                ),
                Field(
                    "key_id",
                    "Access key",
                    "The access key ID (OAuth2 client id).",
                    pattern=UUID,
                    pattern_message="An access key looks like 123e4567-e89b-12d3-a456-426614174000.",
                ),
                Field(
                    "key_secret",
                    "Access secret",
                    "Shown once by Sinch when the key is created (OAuth2 client secret).",
                    secret=True,
                    pattern=r"\S{8,200}",
                    pattern_message="An access secret has at least 8 characters and no spaces.",
                ),
                Field(
                    "region", "Region", "The Conversation API region of the app.", choices=REGIONS
                ),
                Field(
                    "webhook_secret",
                    "Webhook secret",
                    "Optional: the secret of the app's webhook (the one set on the webhook in "
                    "the Sinch dashboard). Inbound messages arrive on that webhook signed with "
                    "it: x-sinch-webhook-signature, HMAC-SHA256 of body.nonce.timestamp, "
                    "refused when older than 5 minutes.",
                    secret=True,
                    required=False,
                ),
                Field(
                    "callback_secret",
                    "Secret for overridden callback URLs",
                    "Optional: the app's secret_for_overridden_callback_urls. Delivery reports "
                    "go to each message's own callback URL and Sinch signs those with this "
                    "separate secret. Either configured secret is accepted on any callback; "
                    "with neither, callbacks are checked by the secret segment of their URL.",
                    secret=True,
                    required=False,
                ),
                Field(
                    "sender_id",
                    "Reply-to sender",
                    "Optional: the number or sender customers reply to (inbound messages are routed by it).",
                    required=False,
                    sender=True,
                ),
            ),
            about="One request per message (messages:send) with an OAuth2 client-credentials token.",
            verification=(
                "A secret segment in the callback URL, and Sinch's HMAC-SHA256 webhook "
                "signature (with a 5 minute replay window) when a webhook secret or a secret "
                "for overridden callback URLs is set."
            ),
        ),
        ProviderKind(
            kind="messagemedia",
            label="MessageMedia (Messages API)",
            channels=frozenset({"sms", "mms"}),
            fields=(
                Field(
                    "api_key",
                    "API key",
                    "From the MessageMedia hub (HTTP Basic user name).",
                    pattern=r"[A-Za-z0-9]{8,64}",
                    pattern_message="An API key is 8 to 64 letters and digits.",
                ),
                Field(
                    "api_secret",
                    "API secret",
                    "The key's secret (HTTP Basic password).",
                    secret=True,
                    pattern=r"\S{8,128}",
                    pattern_message="An API secret has 8 to 128 characters and no spaces.",
                ),
                Field(
                    "default_sender",
                    "Default sender",
                    "Used when a message names no sender; empty uses MessageMedia's shared numbers.",
                    required=False,
                    sender=True,
                ),
                Field(
                    "signature_public_key",
                    "Signature public key",
                    "Optional: the public_key of the account's enabled signature key (MessageMedia's "
                    "Signature Key API, POST /v1/iam/signature_keys, then PATCH "
                    "/v1/iam/signature_keys/enabled). With it every delivery report and reply must "
                    "carry a valid X-MessageMedia-Signature. Empty: callbacks are checked by the "
                    "secret segment of their URL only, so keep that URL private.",
                    required=False,
                    max_length=4000,
                    normalise=normalised_public_key,
                    problem=public_key_problem,
                ),
                Field(
                    "signature_digest",
                    "Signature digest",
                    "The digest chosen when the signature key was created.",
                    required=False,
                    choices=(("sha224", "SHA224"), ("sha256", "SHA256"), ("sha512", "SHA512")),
                ),
            ),
            about="Up to 100 messages per request; delivery reports and replies by callback.",
            verification=(
                "A secret segment in the callback URL: MessageMedia posts delivery reports "
                "and replies to the callback URL each message names. With a signature public "
                "key, also MessageMedia's X-MessageMedia-Signature: the RSA (PKCS#1 v1.5) "
                "signature of the request line, the Date header and the raw body with the "
                "key's digest. Replies arrive on the status URL too and are read as inbound."
            ),
            needs=(("signature_public_key", "signature_digest"),),
        ),
        ProviderKind(
            kind="twilio",
            label="Twilio (Messages API)",
            channels=frozenset({"sms", "mms", "whatsapp"}),
            fields=(
                Field(
                    "account_sid",
                    "Account SID",
                    "Starts with AC; on the Twilio console's dashboard.",
                    pattern=r"AC[0-9a-fA-F]{32}",
                    pattern_message="An account SID is AC followed by 32 hexadecimal digits.",
                ),
                Field(
                    "auth_token",
                    "Auth token",
                    "Signs Twilio's callbacks too (X-Twilio-Signature).",
                    secret=True,
                    pattern=r"[0-9a-fA-F]{32}",
                    pattern_message="An auth token is 32 hexadecimal digits.",
                ),
                Field(
                    "messaging_service_sid",
                    "Messaging service SID",
                    "Optional: send through a messaging service (MG...) instead of a fixed number.",
                    required=False,
                    pattern=r"MG[0-9a-fA-F]{32}",
                    pattern_message="A messaging service SID is MG followed by 32 hexadecimal digits.",
                ),
                Field(
                    "default_sender",
                    "Default sender",
                    "Used when a message names no sender (a Twilio number or approved sender ID).",
                    required=False,
                    sender=True,
                ),
            ),
            about="One form-encoded request per message; WhatsApp through the whatsapp: address prefix.",
            verification=(
                "Twilio's X-Twilio-Signature (HMAC-SHA1 with the auth token over the URL, with "
                "or without its default port, and the sorted form fields; for JSON bodies the "
                "bodySHA256 in the URL) and a secret segment in the URL."
            ),
        ),
    )
}


# --- tables -----------------------------------------------------------------------------------


# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntegrationView:
    id: int
    account_id: int
    kind: str
    name: str
    status: str
    settings: dict[str, str]
    secret_hints: dict[str, str]
    rate_limit: int
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_message: str
    created_at: datetime
    updated_at: datetime
    owner_name: str = ""
    api_base_url: str = ""  # "" = the provider's public API

    @property
    def key(self) -> str:
        return provider_key(self.id)

    @property
    def spec(self) -> ProviderKind:
        return KINDS[self.kind]

    @property
    def kind_label(self) -> str:
        return self.spec.label

    @property
    def channels(self) -> frozenset[str]:
        return self.spec.channels

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class IntegrationConfig:
    """Everything a gateway needs, secrets in clear: only for gateways, never for pages."""

    id: int
    kind: str
    name: str
    status: str
    settings: dict[str, str]
    secrets: dict[str, str]
    callback_token: str
    rate_limit: int
    updated_at: datetime
    api_base_url: str = ""  # "" = the provider's public API

    @property
    def key(self) -> str:
        return provider_key(self.id)

    @property
    def version(self) -> str:
        """Changes whenever the settings or credentials do (gateways are cached by it)."""
        return f"{self.id}:{self.updated_at.isoformat()}:{self.status}"

    def value(self, name: str) -> str:
        return self.settings.get(name) or self.secrets.get(name) or ""

    def status_url(self) -> str:
        return callback_urls(self.id, self.callback_token, self.kind)["status"]

    def inbound_url(self) -> str:
        return callback_urls(self.id, self.callback_token, self.kind)["inbound"]


@dataclass(frozen=True)
class CreatedIntegration:
    integration: IntegrationView
    # The secrets as entered, to show once on the confirmation; never readable again.
    shown_once: dict[str, str] = field(default_factory=dict)


def provider_key(integration_id: int) -> str:
    return f"{KEY_PREFIX}{integration_id}"


def integration_id_of(key: str) -> int | None:
    if key.startswith(KEY_PREFIX):
        try:
            return int(key[len(KEY_PREFIX) :])
        except ValueError:
            return None
    return None


def portal_base_url() -> str:
    return get_settings().web.base_url


def callback_urls(integration_id: int, token: str, kind: str) -> dict[str, str]:
    """Where the provider posts status reports and inbound messages (copied into its console)."""
    base = portal_base_url()
    if kind == "simulator":
        return {
            "status": f"{base}/hooks/simulator/status",
            "inbound": f"{base}/hooks/simulator/inbound",
        }
    prefix = f"{base}/hooks/providers/{integration_id}/{token}"
    return {"status": f"{prefix}/status", "inbound": f"{prefix}/inbound"}


def hint(secret: str) -> str:
    """What the page shows of a stored secret: its length class and last characters."""
    if not secret:
        return ""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"••••{tail}"


def _loads(text: str) -> dict[str, str]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _view(row: dict[str, Any], owner_name: str = "") -> IntegrationView:
    return view_of(
        IntegrationView,
        row,
        settings=_loads(row["settings"]),
        secret_hints=_loads(row["secret_hints"]),
        owner_name=owner_name,
    )


VIEW_COLUMNS = (
    ProviderIntegration.id,
    ProviderIntegration.account_id,
    ProviderIntegration.kind,
    ProviderIntegration.name,
    ProviderIntegration.status,
    ProviderIntegration.settings,
    ProviderIntegration.secret_hints,
    ProviderIntegration.rate_limit,
    ProviderIntegration.last_test_at,
    ProviderIntegration.last_test_ok,
    ProviderIntegration.last_test_message,
    ProviderIntegration.created_at,
    ProviderIntegration.updated_at,
    ProviderIntegration.api_base_url,
)


# --- who may own integrations -----------------------------------------------------------------


async def platform_account_ids() -> list[int]:
    async def load() -> tuple[int, ...]:
        rows = await Account.select(Account.id).where(Account.kind == "platform")
        return tuple(r["id"] for r in rows)

    return list(await shared_read(("platform_account_ids",), load, settled=True))


async def master_may_own(account_id: int) -> bool:
    return await flag(ProviderPermit.allowed, ProviderPermit.account_id == account_id)


async def ownership_refusal(account: AccountView, *, is_operator: bool = False) -> str | None:
    """Why this account may not own provider integrations, or None when it may."""
    if account.kind == "platform":
        return None
    if account.kind != "master":
        return "Provider integrations belong to the platform or to a master account; this account uses the ones its master chooses."
    if is_operator or await master_may_own(account.id):
        return None
    return "The platform operator has not allowed this master to add its own provider integrations; it uses the platform's."


async def _require_owner(account_id: int, *, is_operator: bool) -> AccountView:
    account = await get_account(account_id)
    refusal = await ownership_refusal(account, is_operator=is_operator)
    if refusal:
        raise PermissionDenied(refusal)
    return account


async def set_master_permit(actor: audit.Actor, *, master_id: int, allowed: bool) -> None:
    """The operator allows (or stops) a master adding integrations of its own."""
    async with transaction():
        master = await get_account(master_id)
        if master.kind != "master":
            raise ValidationFailed(
                {"account_id": "Only master accounts can be allowed their own providers."}
            )
        before = await master_may_own(master_id)
        existing = await ProviderPermit.exists().where(ProviderPermit.account_id == master_id)
        if existing:
            await ProviderPermit.update(
                {ProviderPermit.allowed: allowed, ProviderPermit.updated_at: now()}
            ).where(ProviderPermit.account_id == master_id)
        else:
            await ProviderPermit.insert(ProviderPermit(account_id=master_id, allowed=allowed))
        if before != allowed:
            await audit.record(
                actor,
                account_id=master_id,
                action="providers.permit",
                target_type="account",
                target_id=master_id,
                before={"allowed": before},
                after={"allowed": allowed},
            )


async def master_permits() -> dict[int, bool]:
    rows = await ProviderPermit.select(ProviderPermit.account_id, ProviderPermit.allowed)
    return {r["account_id"]: bool(r["allowed"]) for r in rows}


# --- validation ---------------------------------------------------------------------------------


def validate_values(
    kind: str, values: Mapping[str, str], *, existing_secrets: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Split and check a form's values for `kind`: (settings, secrets). On an update a blank
    secret keeps the stored one. Raises ValidationFailed naming each bad field."""
    spec = KINDS.get(kind)
    if spec is None:
        raise ValidationFailed({"kind": f"Choose a provider: {', '.join(KINDS)}."})
    errors: dict[str, str] = {}
    settings: dict[str, str] = {}
    sealed: dict[str, str] = {}
    for f in spec.fields:
        raw = values.get(f.name)
        value = (raw if isinstance(raw, str) else "").strip()
        if f.secret and not value and existing_secrets is not None and existing_secrets.get(f.name):
            sealed[f.name] = existing_secrets[f.name]
            continue
        if f.choices:
            value = value.lower()
        if f.normalise:
            value = f.normalise(value)
        problem = f.check(value)
        if problem:
            errors[f.name] = problem
            continue
        if value:
            (sealed if f.secret else settings)[f.name] = value
    for given, needed in spec.needs:
        if given in settings and needed not in settings and needed not in errors:
            errors[needed] = (
                f"{spec.field(needed).label} is required with {spec.field(given).label.lower()}."
            )
    if errors:
        raise ValidationFailed(errors)
    return settings, sealed


def _validate_name(name: str) -> str:
    clean = (name or "").strip()
    if not 0 < len(clean) <= NAME_MAX:
        raise ValidationFailed({"name": f"A name has 1 to {NAME_MAX} characters."})
    return clean


BASE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?$")


def _validate_base_url(raw: str | None) -> str:
    """An origin (and optional path root) in place of the provider's public API."""
    clean = (raw or "").strip().rstrip("/")
    if not clean:
        return ""
    if len(clean) > BASE_URL_MAX or not BASE_URL.match(clean):
        raise ValidationFailed(
            {
                "api_base_url": f"An http(s) URL such as https://api.example.com, at most {BASE_URL_MAX} characters."
            }
        )
    return clean


def _validate_rate(raw: Any) -> int:
    if raw in (None, ""):
        return 0
    try:
        rate = int(str(raw).strip())
    except ValueError:
        raise ValidationFailed(
            {"rate_limit": "Give a whole number of segments per second (0 for the default)."}
        ) from None
    if not 0 <= rate <= 100_000:
        raise ValidationFailed(
            {"rate_limit": "Between 0 (the default) and 100,000 segments per second."}
        )
    return rate


# --- integrations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _IntegrationInput:
    """A checked form for an integration: name, settings, secrets, rate limit, API base URL."""

    name: str
    settings: dict[str, str]
    sealed: dict[str, str]
    rate_limit: int
    api_base_url: str

    def stored(self) -> dict[str, Any]:
        """The columns these values are stored in; secrets sealed, a hint of each kept."""
        return {
            "name": self.name,
            "settings": json.dumps(self.settings, sort_keys=True),
            "secrets_sealed": secrets_box.encrypt(json.dumps(self.sealed, sort_keys=True)),
            "secret_hints": json.dumps(
                {k: hint(v) for k, v in self.sealed.items()}, sort_keys=True
            ),
            "rate_limit": self.rate_limit,
            "api_base_url": self.api_base_url,
        }


def _checked_input(
    kind: str,
    name: str,
    values: Mapping[str, str],
    rate_limit: Any,
    api_base_url: str | None,
    *,
    existing_secrets: Mapping[str, str] | None = None,
    stored_base_url: str = "",
) -> _IntegrationInput:
    """Create and update check the same fields; one refusal names every bad one. A None
    `api_base_url` keeps `stored_base_url`."""
    errors = FieldErrors()
    base_url, clean_name, rate = stored_base_url, "", 0
    settings: dict[str, str] = {}
    sealed: dict[str, str] = {}
    with errors.collected():
        if api_base_url is not None:
            base_url = _validate_base_url(api_base_url)
    with errors.collected():
        clean_name = _validate_name(name)
    with errors.collected():
        settings, sealed = validate_values(kind, values, existing_secrets=existing_secrets)
    with errors.collected():
        rate = _validate_rate(rate_limit)
    errors.raise_if_any()
    return _IntegrationInput(
        name=clean_name, settings=settings, sealed=sealed, rate_limit=rate, api_base_url=base_url
    )


async def create_integration(
    actor: audit.Actor,
    *,
    account_id: int,
    kind: str,
    name: str,
    values: Mapping[str, str],
    rate_limit: Any = None,
    is_operator: bool = False,
    api_base_url: str = "",
) -> CreatedIntegration:
    """Add an integration owned by `account_id` (the platform, or a permitted master);
    `api_base_url` points its gateway at another host ("" = the provider's public API)."""
    checked = _checked_input(kind, name, values, rate_limit, api_base_url)
    token = secrets.token_urlsafe(24)
    async with transaction():
        await _require_owner(account_id, is_operator=is_operator)
        rows = await ProviderIntegration.insert(
            ProviderIntegration(
                account_id=account_id,
                kind=kind,
                status="active",
                callback_sealed=secrets_box.encrypt(token),
                created_by=actor.label,
                **checked.stored(),
            )
        ).returning(ProviderIntegration.id)
        integration_id = rows[0]["id"]
        await audit.record(
            actor,
            account_id=account_id,
            action="provider.create",
            target_type="provider_integration",
            target_id=integration_id,
            after={
                "kind": kind,
                "name": checked.name,
                "settings": checked.settings,
                # names only: values never reach the audit log
                "secrets": sorted(checked.sealed),
                "rate_limit": checked.rate_limit,
                "api_base_url": checked.api_base_url,
            },
        )
        view = await get_integration(account_id, integration_id)
    return CreatedIntegration(integration=view, shown_once=dict(checked.sealed))


async def get_integration(account_id: int, integration_id: int) -> IntegrationView:
    """An integration owned by this account; any other is NotFound."""
    row = await first_or_404(
        ProviderIntegration.select(*VIEW_COLUMNS).where(
            (ProviderIntegration.id == integration_id)
            & (ProviderIntegration.account_id == account_id)
        ),
        f"provider integration {integration_id} not found",
    )
    return _view(row)


async def list_owned(account_id: int) -> list[IntegrationView]:
    rows = (
        await ProviderIntegration.select(*VIEW_COLUMNS)
        .where(ProviderIntegration.account_id == account_id)
        .order_by(ProviderIntegration.name)
    )
    return [_view(r) for r in rows]


async def _owned_secrets(integration_id: int) -> dict[str, str]:
    row = (
        await ProviderIntegration.select(ProviderIntegration.secrets_sealed)
        .where(ProviderIntegration.id == integration_id)
        .first()
    )
    if not row or not row["secrets_sealed"]:
        return {}
    return _loads(secrets_box.decrypt(row["secrets_sealed"]))


async def update_integration(
    actor: audit.Actor,
    *,
    account_id: int,
    integration_id: int,
    name: str,
    values: Mapping[str, str],
    rate_limit: Any = None,
    api_base_url: str | None = None,
) -> CreatedIntegration:
    """Change the name, settings or credentials; a secret left blank is kept as it was, and
    so is the API base URL when `api_base_url` is None. Returns the secrets that were
    replaced, to show once."""
    before = await get_integration(account_id, integration_id)
    existing = await _owned_secrets(integration_id)
    checked = _checked_input(
        before.kind,
        name,
        values,
        rate_limit,
        api_base_url,
        existing_secrets=existing,
        stored_base_url=before.api_base_url,
    )
    replaced = {k: v for k, v in checked.sealed.items() if existing.get(k) != v}
    async with transaction():
        await get_integration(account_id, integration_id)
        await ProviderIntegration.update(**checked.stored(), updated_at=now()).where(
            ProviderIntegration.id == integration_id
        )
        await _forget_on_commit(integration_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="provider.update",
            target_type="provider_integration",
            target_id=integration_id,
            before={
                "name": before.name,
                "settings": before.settings,
                "rate_limit": before.rate_limit,
                "api_base_url": before.api_base_url,
            },
            after={
                "name": checked.name,
                "settings": checked.settings,
                "rate_limit": checked.rate_limit,
                "api_base_url": checked.api_base_url,
                "replaced_secrets": sorted(replaced),
            },
        )
        view = await get_integration(account_id, integration_id)
    return CreatedIntegration(integration=view, shown_once=replaced)


async def set_integration_status(
    actor: audit.Actor, *, account_id: int, integration_id: int, status: str
) -> IntegrationView:
    """Enable or disable. Messages waiting for a disabled integration fail and are refunded."""
    if status not in STATUSES:
        raise ValidationFailed({"status": "Choose active or disabled."})
    async with transaction():
        before = await get_integration(account_id, integration_id)
        if before.status != status:
            await ProviderIntegration.update(
                {ProviderIntegration.status: status, ProviderIntegration.updated_at: now()}
            ).where(ProviderIntegration.id == integration_id)
            await _forget_on_commit(integration_id)
            await audit.record(
                actor,
                account_id=account_id,
                action="provider.enable" if status == "active" else "provider.disable",
                target_type="provider_integration",
                target_id=integration_id,
                before={"status": before.status},
                after={"status": status},
            )
        return await get_integration(account_id, integration_id)


async def record_test(
    actor: audit.Actor, *, account_id: int, integration_id: int, ok: bool, message: str
) -> IntegrationView:
    async with transaction():
        await get_integration(account_id, integration_id)
        await ProviderIntegration.update(
            {
                ProviderIntegration.last_test_at: now(),
                ProviderIntegration.last_test_ok: ok,
                ProviderIntegration.last_test_message: message[:500],
            }
        ).where(ProviderIntegration.id == integration_id)
        await audit.record(
            actor,
            account_id=account_id,
            action="provider.test",
            target_type="provider_integration",
            target_id=integration_id,
            after={"ok": ok, "message": message[:200]},
        )
        return await get_integration(account_id, integration_id)


async def load_config(integration_id: int) -> IntegrationConfig:
    """The integration with its secrets in clear (gateways only). NotFound if it is gone."""
    row = await first_or_404(
        ProviderIntegration.select().where(ProviderIntegration.id == integration_id),
        f"provider integration {integration_id} not found",
    )
    return IntegrationConfig(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        status=row["status"],
        settings=_loads(row["settings"]),
        secrets=_loads(secrets_box.decrypt(row["secrets_sealed"])) if row["secrets_sealed"] else {},
        callback_token=secrets_box.decrypt(row["callback_sealed"])
        if row["callback_sealed"]
        else "",
        rate_limit=row["rate_limit"],
        updated_at=row["updated_at"],
        api_base_url=row["api_base_url"],
    )


# Callbacks come thousands a second for a handful of integrations: each process keeps the
# configurations it read (secrets decrypted) for CALLBACK_CONFIG_SECONDS, and forgets one
# as soon as this process changes it (forget_config). A change made by another process is
# seen within that time at most; the callback token itself never changes.
CALLBACK_CONFIG_SECONDS = 5.0
_callback_configs: dict[int, tuple[float, IntegrationConfig]] = {}


def forget_config(integration_id: int | None = None) -> None:
    """Drop the cached configuration of one integration (None: all of them)."""
    if integration_id is None:
        _callback_configs.clear()
    else:
        _callback_configs.pop(integration_id, None)


async def _cached_config(integration_id: int, token: str) -> IntegrationConfig:
    """The cached configuration when its callback token is this one, else read again."""
    cached = _callback_configs.get(integration_id)
    if (
        cached is not None
        and cached[0] > time.monotonic()
        and secrets.compare_digest(cached[1].callback_token.encode(), (token or "").encode())
    ):
        return cached[1]
    config = await load_config(integration_id)
    _callback_configs[integration_id] = (time.monotonic() + CALLBACK_CONFIG_SECONDS, config)
    return config


async def _forget_on_commit(integration_id: int) -> None:
    """Now (a reader between now and the commit would cache the old row again) and once
    the change has committed."""
    forget_config(integration_id)
    await after_commit(f"provider-config:{integration_id}", lambda: forget_config(integration_id))


async def config_for_callback(integration_id: int, token: str) -> IntegrationConfig:
    """The integration a callback URL names, if its secret segment matches; anything else
    is NotFound, so a guessed URL learns nothing."""
    try:
        config = await _cached_config(integration_id, token)
    except NotFound:
        raise NotFound("not found") from None
    if not config.callback_token or not secrets.compare_digest(
        config.callback_token.encode(), (token or "").encode()
    ):
        raise NotFound("not found")
    return config


async def callback_urls_of(view: IntegrationView) -> dict[str, str]:
    config = await load_config(view.id)
    return callback_urls(view.id, config.callback_token, view.kind)


# --- which provider an account uses per channel -------------------------------------------------


async def _usable_owner_ids(account: AccountView) -> list[int]:
    """Accounts whose integrations this account may choose: the platform and its ancestors."""
    return [*(await platform_account_ids()), *account.ancestor_ids]


async def available_integrations(
    account_id: int, channel: str | None = None
) -> list[IntegrationView]:
    """Active integrations this account may choose (the platform's and its masters'); kept
    across an inbound group's blocks while cache_version stands."""

    async def load() -> tuple[IntegrationView, ...]:
        account = await get_account(account_id)
        owners = await _usable_owner_ids(account)
        rows = (
            await ProviderIntegration.select(*VIEW_COLUMNS)
            .where(
                ProviderIntegration.account_id.is_in(owners)
                & (ProviderIntegration.status == "active")
            )
            .order_by(ProviderIntegration.name)
        )
        names = {
            a["id"]: a["name"]
            for a in await Account.select(Account.id, Account.name).where(Account.id.is_in(owners))
        }
        return tuple(_view(r, names.get(r["account_id"], "")) for r in rows)

    views = await shared_read(("available_integrations", account_id), load, settled=True)
    return [v for v in views if channel is None or channel in v.channels]


@dataclass(frozen=True)
class ChannelSetting:
    """One row of Settings > Channels."""

    channel: str
    own_choice: str  # INHERIT, USE_BUILTIN or an integration id as text
    effective: IntegrationView | None  # None: the built-in simulator
    decided_by: str  # the account whose choice applies ("" = nobody chose: the default)
    options: list[IntegrationView]
    refusal: str = ""  # why a send on this channel is refused now ("" = it is carried)

    @property
    def effective_label(self) -> str:
        if self.refusal:
            return "None: sends are refused"
        return self.effective.name if self.effective else KINDS["simulator"].label


async def _choices(account_ids: Sequence[int]) -> dict[tuple[int, str], int | None]:
    if not account_ids:
        return {}

    async def load() -> dict[tuple[int, str], int | None]:
        rows = await ChannelDefault.select(
            ChannelDefault.account_id, ChannelDefault.channel, ChannelDefault.integration_id
        ).where(ChannelDefault.account_id.is_in(list(account_ids)))
        return {(r["account_id"], r["channel"]): r["integration_id"] for r in rows}

    return dict(await shared_read(("channel_choices", tuple(account_ids)), load, settled=True))


async def _active_integrations(ids: Iterable[int]) -> dict[int, IntegrationView]:
    wanted = tuple(sorted({i for i in ids if i is not None}))
    if not wanted:
        return {}

    async def load() -> dict[int, IntegrationView]:
        rows = await ProviderIntegration.select(*VIEW_COLUMNS).where(
            ProviderIntegration.id.is_in(list(wanted)) & (ProviderIntegration.status == "active")
        )
        return {r["id"]: _view(r) for r in rows}

    return dict(await shared_read(("active_integrations", wanted), load, settled=True))


async def _chain(account: AccountView) -> list[int]:
    """Whose channel choices apply, nearest first: the account, up its tree, the platform."""
    platform_ids = await platform_account_ids()
    return list(reversed(account.ancestor_ids)) + [
        p for p in platform_ids if p not in account.ancestor_ids
    ]


async def _resolve_channels(
    account: AccountView,
) -> dict[str, tuple[IntegrationView | None, int | None]]:
    """channel -> (integration or None for the built-in, account whose choice decided it).

    The nearest account (itself, then up the tree, then the platform's own choice) with a
    usable choice wins; a choice of a disabled integration is passed over."""
    chain = await _chain(account)
    choices = await _choices(chain)
    integrations = await _active_integrations(v for v in choices.values() if v is not None)
    resolved: dict[str, tuple[IntegrationView | None, int | None]] = {}
    for channel in CHANNELS:
        resolved[channel] = (None, None)
        for owner in chain:
            if (owner, channel) not in choices:
                continue
            chosen = choices[(owner, channel)]
            if chosen is None:
                resolved[channel] = (None, owner)
                break
            integration = integrations.get(chosen)
            if integration is not None and channel in integration.channels:
                resolved[channel] = (integration, owner)
                break
    return resolved


async def provider_for(account_id: int, channel: str) -> str:
    """The provider key a new message of this account and channel is submitted through."""
    account = await get_account(account_id)
    integration, _ = (await _resolve_channels(account))[channel]
    return integration.key if integration else BUILTIN


async def _passed_over(account: AccountView, channel: str, decided_by: int | None) -> str:
    """The name of the nearest real integration chosen for the channel that resolution
    passed over (disabled, or no longer offering it) before the choice that decided; ""."""
    chain = await _chain(account)
    choices = await _choices(chain)
    for owner in chain:
        if owner == decided_by:
            break
        chosen = choices.get((owner, channel))
        if chosen is not None:
            row = await (
                ProviderIntegration.select(ProviderIntegration.name, ProviderIntegration.kind)
                .where(ProviderIntegration.id == chosen)
                .first()
            )
            if row is not None and row["kind"] != BUILTIN:
                return str(row["name"])
    return ""


async def carrier_for(account_id: int, channel: str) -> str:
    """The provider key a send of this channel goes through, checked before anything is
    charged. The built-in simulator only when it was chosen outright, or when no real
    provider stands behind the account at all (the demo set-up); otherwise a real provider
    that cannot carry the channel is a ValidationFailed naming `channel`, never a silent
    fall-back to the simulator (which sends nothing)."""
    account = await get_account(account_id)
    integration, decided_by = (await _resolve_channels(account))[channel]
    if integration is not None:
        return integration.key
    label = channel.upper() if channel != "whatsapp" else "WhatsApp"
    skipped = await _passed_over(account, channel, decided_by)
    if skipped:
        raise ValidationFailed(
            {
                "channel": f"{skipped} is chosen for {label} but cannot carry it now (disabled "
                "or not offering it); choose another provider in Settings > Channels."
            }
        )
    if decided_by is not None:
        return BUILTIN
    real = [v for v in await available_integrations(account_id) if v.kind != BUILTIN]
    if not real:
        return BUILTIN
    if any(channel in v.channels for v in real):
        raise ValidationFailed(
            {"channel": f"No provider is chosen for {label}; choose one in Settings > Channels."}
        )
    raise ValidationFailed(
        {"channel": f"No provider this account may use can carry {label} messages."}
    )


async def channel_settings(account_id: int) -> list[ChannelSetting]:
    account = await get_account(account_id)
    resolved = await _resolve_channels(account)
    own = await _choices([account_id])
    options = await available_integrations(account_id)
    names = {
        a["id"]: a["name"]
        for a in await Account.select(Account.id, Account.name).where(
            Account.id.is_in([o for _, o in resolved.values() if o is not None] or [0])
        )
    }
    settings = []
    for channel in CHANNELS:
        integration, owner = resolved[channel]
        if (account_id, channel) in own:
            chosen = own[(account_id, channel)]
            own_choice = USE_BUILTIN if chosen is None else str(chosen)
        else:
            own_choice = INHERIT
        settings.append(
            ChannelSetting(
                channel=channel,
                own_choice=own_choice,
                effective=integration,
                decided_by=names.get(owner, "") if owner is not None else "",
                options=[o for o in options if channel in o.channels],
                refusal=await _refusal(account_id, channel),
            )
        )
    return settings


async def _refusal(account_id: int, channel: str) -> str:
    try:
        await carrier_for(account_id, channel)
    except ValidationFailed as refused:
        return str(refused.errors.get("channel", ""))
    return ""


async def set_channel_default(
    actor: audit.Actor, *, account_id: int, channel: str, choice: str
) -> None:
    """`choice`: INHERIT (drop the account's own choice), USE_BUILTIN, or an integration id
    the account may use that offers this channel."""
    if channel not in CHANNELS:
        raise ValidationFailed({"channel": f"Choose one of {', '.join(CHANNELS)}."})
    choice = (choice or "").strip()
    integration_id: int | None = None
    if choice not in (INHERIT, USE_BUILTIN):
        try:
            integration_id = int(choice)
        except ValueError:
            raise ValidationFailed({channel: "Choose a provider from the list."}) from None
        usable = {v.id: v for v in await available_integrations(account_id)}
        picked = usable.get(integration_id)
        if picked is None:
            raise ValidationFailed({channel: "That provider is not available to this account."})
        if channel not in picked.channels:
            raise ValidationFailed({channel: f"{picked.name} does not offer {channel.upper()}."})
    key = f"{account_id}:{channel}"
    async with transaction():
        before = (
            await ChannelDefault.select(ChannelDefault.integration_id)
            .where(ChannelDefault.key == key)
            .first()
        )
        before_choice = INHERIT if before is None else (before["integration_id"] or USE_BUILTIN)
        after_choice: Any = INHERIT if choice == INHERIT else (integration_id or USE_BUILTIN)
        if before_choice == after_choice:
            return
        if choice == INHERIT:
            await ChannelDefault.delete().where(ChannelDefault.key == key)
        elif before is None:
            await ChannelDefault.insert(
                ChannelDefault(
                    account_id=account_id, channel=channel, key=key, integration_id=integration_id
                )
            )
        else:
            await ChannelDefault.update(
                {ChannelDefault.integration_id: integration_id, ChannelDefault.updated_at: now()}
            ).where(ChannelDefault.key == key)
        await audit.record(
            actor,
            account_id=account_id,
            action="channels.provider",
            target_type="channel",
            target_id=channel,
            before={"provider": before_choice},
            after={"provider": after_choice},
        )


async def rate_limit_of(key: str) -> int:
    """Segments per second configured for an integration key (0 = the platform default)."""
    integration_id = integration_id_of(key)
    if integration_id is None:
        return 0
    row = (
        await ProviderIntegration.select(ProviderIntegration.rate_limit)
        .where(ProviderIntegration.id == integration_id)
        .first()
    )
    return int(row["rate_limit"]) if row else 0


async def messages_waiting(key: str) -> int:
    """Outbox messages not yet handed to this integration (shown before disabling it)."""
    rows = await run_sql(
        "SELECT COUNT(*) AS n FROM message WHERE provider = {} AND status = 'enqueued'", key
    )
    return int(rows[0]["n"]) if rows else 0


def ensure_kind(kind: str) -> ProviderKind:
    spec = KINDS.get(kind)
    if spec is None:
        raise ValidationFailed({"kind": "Choose a provider from the list."})
    return spec


def conflict_if_disabled(view: IntegrationView) -> None:
    if not view.active:
        raise Conflict(f"{view.name} is disabled; enable it first.", code="integration_disabled")
