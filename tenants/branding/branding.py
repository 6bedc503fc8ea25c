"""White-label branding per account, inherited down the tree.

Each field is effective from the nearest account on the path (the account itself, then
its ancestors) that sets it; if none does, from the platform account's own branding, and
failing that from the built-in defaults. Logos live in the database so every portal
process can serve them, addressed by the SHA-256 of their bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import phonenumbers

from tenants.accounts.tree import AccountView, default_region, get_account, get_in_subtree
from tenants.audit import record as audit
from tenants.branding.logos import LogoFile, inspect_logo
from tenants.branding.tables import MAX_PRODUCT_NAME, AccountBranding
from tenants.clock import now
from tenants.db import is_unique_violation, transaction
from tenants.errors import ValidationFailed

TEXT_FIELDS = (
    "product_name",
    "primary_color",
    "accent_color",
    "support_email",
    "support_phone",
    "login_host",
    "link_domain",
)
FIELDS = ("product_name", "logo", *TEXT_FIELDS[1:])
LABELS = {
    "product_name": "Product name",
    "logo": "Logo",
    "primary_color": "Primary colour",
    "accent_color": "Accent colour",
    "support_email": "Support email",
    "support_phone": "Support phone",
    "login_host": "Login host name",
    "link_domain": "Short link domain",
}
BUILT_IN_DEFAULTS: dict[str, Any] = {
    "product_name": "SMS Portal",
    "logo": None,
    "primary_color": "#1f5eff",
    "accent_color": "#0b8043",
    "support_email": None,
    "support_phone": None,
    "login_host": None,
    "link_domain": None,
}
BUILT_IN_SOURCE = "built-in default"
# WCAG 2.x AA for normal-size text; the header and buttons put white text on these colours.
AA_CONTRAST = 4.5

_COLOUR_RE = re.compile(r"^#(?:[0-9a-f]{3}|[0-9a-f]{6})$")
_EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[a-z]{2,}$", re.IGNORECASE)
_HOST_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Logo:
    """A stored logo (addressed by digest); `inline` holds the bytes of an unsaved preview."""

    digest: str
    content_type: str
    width: int | None
    height: int | None
    inline: LogoFile | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BrandValue:
    """One field's effective value and where it comes from."""

    value: Any
    source_account_id: int | None
    source_name: str
    own: bool  # set by the account itself (an override "use inherited" can clear)


@dataclass(frozen=True)
class EffectiveBranding:
    account_id: int | None
    values: dict[str, BrandValue]

    def __getitem__(self, name: str) -> BrandValue:
        return self.values[name]

    @property
    def product_name(self) -> str:
        return str(self.values["product_name"].value)

    @property
    def primary_color(self) -> str:
        return str(self.values["primary_color"].value)

    @property
    def accent_color(self) -> str:
        return str(self.values["accent_color"].value)

    @property
    def support_email(self) -> str | None:
        return self.values["support_email"].value  # type: ignore[no-any-return]

    @property
    def support_phone(self) -> str | None:
        return self.values["support_phone"].value  # type: ignore[no-any-return]

    @property
    def login_host(self) -> str | None:
        return self.values["login_host"].value  # type: ignore[no-any-return]

    @property
    def link_domain(self) -> str | None:
        return self.values["link_domain"].value  # type: ignore[no-any-return]

    @property
    def logo(self) -> Logo | None:
        return self.values["logo"].value  # type: ignore[no-any-return]

    def contrast_warnings(self) -> dict[str, str]:
        return contrast_warnings(
            {"primary_color": self.primary_color, "accent_color": self.accent_color}
        )

    def login_url(self, base_url: str) -> str:
        """Where this account's people sign in: the login host if one is set, else base_url.

        Invitation and notification links use it so they carry the reseller's brand.
        """
        parts = urlsplit(base_url)
        if self.login_host:
            parts = parts._replace(netloc=self.login_host)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/login"))


# --- colours ---------------------------------------------------------------------------


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2.x contrast ratio of two #rrggbb colours (1 to 21)."""
    a, b = relative_luminance(foreground), relative_luminance(background)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def contrast_warnings(colours: Mapping[str, str | None]) -> dict[str, str]:
    """A warning per colour on which white text misses WCAG AA (saving is still allowed)."""
    warnings: dict[str, str] = {}
    for name, colour in colours.items():
        if not colour:
            continue
        ratio = contrast_ratio("#ffffff", colour)
        if ratio < AA_CONTRAST:
            warnings[name] = (
                f"White text on {colour} has a contrast of {ratio:.1f}:1; WCAG AA asks for "
                f"{AA_CONTRAST}:1. Choose a darker colour so the header and buttons stay readable."
            )
    return warnings


# --- validation ------------------------------------------------------------------------


def normalise_host(host: str) -> str:
    """A Host header or typed host name, lower case, without port or trailing dot."""
    host = (host or "").strip().lower()
    if host.startswith("["):  # IPv6 literal: never a login host name
        return host
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def _clean_colour(value: str) -> str | None:
    value = value.strip().lower()
    if not value.startswith("#"):
        value = "#" + value
    if not _COLOUR_RE.match(value):
        return None
    if len(value) == 4:
        value = "#" + "".join(ch * 2 for ch in value[1:])
    return value


def validate_fields(values: Mapping[str, str], *, region: str = "AU") -> tuple[dict, dict]:
    """Clean the submitted text fields: "" means "inherit" (stored as NULL).

    Returns (clean values, errors by field); only the fields present are looked at.
    """
    clean: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for name in TEXT_FIELDS:
        if name not in values:
            continue
        raw = (values[name] or "").strip()
        if not raw:
            clean[name] = None
            continue
        if name == "product_name":
            if len(raw) > MAX_PRODUCT_NAME:
                errors[name] = f"Product name must be at most {MAX_PRODUCT_NAME} characters."
            elif any(ord(ch) < 32 for ch in raw):
                errors[name] = "Product name may not contain control characters."
            else:
                clean[name] = raw
        elif name in ("primary_color", "accent_color"):
            colour = _clean_colour(raw)
            if colour is None:
                errors[name] = "Enter a colour as #RRGGBB, for example #1f5eff."
            else:
                clean[name] = colour
        elif name == "support_email":
            if len(raw) > 254 or not _EMAIL_RE.match(raw):
                errors[name] = "Enter a valid email address, for example help@example.com."
            else:
                clean[name] = raw
        elif name == "support_phone":
            phone = _clean_phone(raw, region)
            if phone is None:
                errors[name] = "Enter a phone number, for example +61 2 9000 0000."
            else:
                clean[name] = phone
        elif name in ("login_host", "link_domain"):
            host = clean_host_name(raw)
            if host is None:
                example = "portal.example.com" if name == "login_host" else "go.example.com"
                errors[name] = f"Enter a host name such as {example} (no https://, port or path)."
            else:
                clean[name] = host
    return clean, errors


def clean_host_name(raw: str) -> str | None:
    """A typed host name (`portal.example.com`), lower case, or None when it is not one:
    no scheme, port, path or IP address."""
    host = normalise_host(raw)
    labels = host.split(".")
    if (
        "/" in raw
        or ":" in raw
        or len(host) > 253
        or len(labels) < 2
        or not all(_HOST_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return None
    return host


def _clean_phone(raw: str, region: str) -> str | None:
    if len(raw) > 32:
        return None
    try:
        number = phonenumbers.parse(raw, region or "AU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# --- reading ---------------------------------------------------------------------------

_OWN_COLUMNS = (
    AccountBranding.account,
    AccountBranding.product_name,
    AccountBranding.primary_color,
    AccountBranding.accent_color,
    AccountBranding.support_email,
    AccountBranding.support_phone,
    AccountBranding.login_host,
    AccountBranding.link_domain,
    AccountBranding.logo_digest,
    AccountBranding.logo_content_type,
    AccountBranding.logo_width,
    AccountBranding.logo_height,
)


def _row_value(row: Mapping[str, Any], name: str) -> Any:
    if name != "logo":
        return row.get(name)
    if not row.get("logo_digest"):
        return None
    return Logo(
        digest=row["logo_digest"],
        content_type=row["logo_content_type"],
        width=row["logo_width"],
        height=row["logo_height"],
    )


def _resolve(
    account_id: int | None, chain: list[tuple[int | None, str, Mapping[str, Any]]]
) -> EffectiveBranding:
    """`chain`: (account id, name, own settings) from nearest to farthest, platform last."""
    values: dict[str, BrandValue] = {}
    for name in FIELDS:
        for source_id, source_name, row in chain:
            value = _row_value(row, name)
            if value is not None:
                values[name] = BrandValue(
                    value,
                    source_id,
                    source_name,
                    own=account_id is not None and source_id == account_id,
                )
                break
        else:
            values[name] = BrandValue(BUILT_IN_DEFAULTS[name], None, BUILT_IN_SOURCE, own=False)
    return EffectiveBranding(account_id=account_id, values=values)


async def _chain(ancestor_ids: list[int]) -> list[tuple[int | None, str, Mapping[str, Any]]]:
    """Own settings of the path (nearest first), then the platform account's (one query)."""
    rows = await AccountBranding.select(
        *_OWN_COLUMNS,
        AccountBranding.account.name.as_alias("account_name"),
        AccountBranding.account.kind.as_alias("account_kind"),
    ).where(
        AccountBranding.account.is_in(ancestor_ids or [0])
        | (AccountBranding.account.kind == "platform")
    )
    by_account = {r["account"]: r for r in rows}
    chain: list[tuple[int | None, str, Mapping[str, Any]]] = [
        (i, by_account[i]["account_name"], by_account[i])
        for i in reversed(ancestor_ids)
        if i in by_account
    ]
    chain += [
        (r["account"], f"{r['account_name']} (platform)", r)
        for r in rows
        if r["account_kind"] == "platform" and r["account"] not in ancestor_ids
    ]
    return chain


async def effective_branding_of(account: AccountView) -> EffectiveBranding:
    """Like effective_branding, for an account already loaded (saves a query per page)."""
    return _resolve(account.id, await _chain(account.ancestor_ids))


async def effective_branding(account_id: int) -> EffectiveBranding:
    """Every field's effective value for the account and the account it comes from."""
    return await effective_branding_of(await get_account(account_id))


async def platform_branding() -> EffectiveBranding:
    """What a page outside any account shows: the platform's branding, else built-in."""
    return _resolve(None, await _chain([]))


async def branding_for_host(host: str) -> EffectiveBranding | None:
    """The effective branding of the account whose login host name is `host` (port ignored)."""
    name = normalise_host(host)
    if not name:
        return None
    row = (
        await AccountBranding.select(AccountBranding.account)
        .where(AccountBranding.login_host == name)
        .first()
    )
    if row is None:
        return None
    return await effective_branding(row["account"])


async def own_settings(account_id: int) -> dict[str, Any]:
    """The account's own overrides (None = inherited) as stored, for the settings form."""
    row = (
        await AccountBranding.select(*_OWN_COLUMNS)
        .where(AccountBranding.account == account_id)
        .first()
    )
    return {name: _row_value(row, name) if row else None for name in FIELDS}


@dataclass(frozen=True)
class StoredLogo:
    content: bytes
    content_type: str
    digest: str


async def get_logo(digest: str) -> StoredLogo | None:
    """The logo with this digest, whichever account uploaded it (logos are public assets)."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
        return None
    row = (
        await AccountBranding.select(AccountBranding.logo_bytes, AccountBranding.logo_content_type)
        .where(AccountBranding.logo_digest == digest)
        .first()
    )
    if row is None or row["logo_bytes"] is None:
        return None
    return StoredLogo(bytes(row["logo_bytes"]), row["logo_content_type"], digest)


# --- writing ---------------------------------------------------------------------------


def _audit_view(settings: Mapping[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in settings.items() if k != "logo"}
    logo = settings.get("logo")
    view["logo"] = f"{logo.content_type} {logo.digest[:12]}" if logo else None
    return view


def _logo_columns(logo: LogoFile | None) -> dict[Any, Any]:
    return {
        AccountBranding.logo_digest: logo.digest if logo else None,
        AccountBranding.logo_content_type: logo.content_type if logo else None,
        AccountBranding.logo_width: logo.width if logo else None,
        AccountBranding.logo_height: logo.height if logo else None,
        AccountBranding.logo_bytes: logo.content if logo else None,
    }


_HOST_TAKEN = "That host name is already used by another account."


@dataclass(frozen=True)
class _BrandingInput:
    """The checked form of one update: cleaned text fields and the logo to store or clear."""

    clean: dict[str, Any]
    logo: LogoFile | None
    clear_logo: bool


async def update_branding(
    *,
    actor: audit.Actor,
    within_account_id: int,
    account_id: int,
    values: Mapping[str, str],
    logo: bytes | None = None,
    clear_logo: bool = False,
) -> EffectiveBranding:
    """Set the account's own branding in one transaction.

    `values` holds text fields; a present field set to "" goes back to inheriting, an
    absent one is left alone. `logo` is an uploaded file (checked by its bytes);
    `clear_logo` goes back to the inherited logo. Any invalid field stores nothing.
    """
    unknown = set(values) - set(TEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown branding fields: {sorted(unknown)}")
    target = await get_in_subtree(within_account_id, account_id)
    checked = await _checked_input(account_id, values, logo, clear_logo)
    try:
        async with transaction():
            await _refuse_taken_host(account_id, checked.clean.get("login_host"))
            before = await own_settings(account_id)
            changes = _changed_columns(before, checked)
            if changes:
                await _write_columns(account_id, changes)
                await _audit_update(actor, account_id, before, await own_settings(account_id))
    except ValidationFailed:
        raise
    except Exception as exc:
        # Two accounts claiming one host name at the same moment: the unique index decides.
        if is_unique_violation(exc):
            raise ValidationFailed({"login_host": _HOST_TAKEN}) from None
        raise
    return await effective_branding_of(target)


async def _checked_input(
    account_id: int, values: Mapping[str, str], logo: bytes | None, clear_logo: bool
) -> _BrandingInput:
    """Every field checked at once, so one refusal names all the bad fields."""
    clean, errors = validate_fields(values, region=await default_region(account_id))
    logo_file: LogoFile | None = None
    if logo and not clear_logo:
        try:
            logo_file = inspect_logo(logo)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return _BrandingInput(clean, logo_file, clear_logo)


async def _refuse_taken_host(account_id: int, login_host: str | None) -> None:
    if login_host and await AccountBranding.exists().where(
        (AccountBranding.login_host == login_host) & (AccountBranding.account != account_id)
    ):
        raise ValidationFailed({"login_host": _HOST_TAKEN})


def _changed_columns(before: Mapping[str, Any], checked: _BrandingInput) -> dict[Any, Any]:
    """The columns whose value differs from what the account stores now."""
    changes: dict[Any, Any] = {
        AccountBranding._meta.get_column_by_name(k): v
        for k, v in checked.clean.items()
        if v != before[k]
    }
    if checked.clear_logo and before["logo"] is not None:
        changes |= _logo_columns(None)
    elif checked.logo is not None and (
        before["logo"] is None or before["logo"].digest != checked.logo.digest
    ):
        changes |= _logo_columns(checked.logo)
    return changes


async def _write_columns(account_id: int, changes: dict[Any, Any]) -> None:
    await AccountBranding.insert(AccountBranding(account=account_id)).on_conflict(
        target=AccountBranding.account, action="DO NOTHING"
    )
    changes[AccountBranding.updated_at] = now()
    await AccountBranding.update(changes).where(AccountBranding.account == account_id)


async def _audit_update(
    actor: audit.Actor, account_id: int, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    changed = [k for k in FIELDS if before[k] != after[k]]
    await audit.record(
        actor,
        account_id=account_id,
        action="branding.update",
        target_type="account",
        target_id=account_id,
        before=_audit_view({k: before[k] for k in changed}),
        after=_audit_view({k: after[k] for k in changed}),
    )


async def clear_override(
    *, actor: audit.Actor, within_account_id: int, account_id: int, field_name: str
) -> EffectiveBranding:
    """ "Use inherited": drop the account's own value for one field."""
    if field_name not in FIELDS:
        raise ValidationFailed({"field": f"Unknown branding field {field_name!r}."})
    if field_name == "logo":
        return await update_branding(
            actor=actor,
            within_account_id=within_account_id,
            account_id=account_id,
            values={},
            clear_logo=True,
        )
    return await update_branding(
        actor=actor,
        within_account_id=within_account_id,
        account_id=account_id,
        values={field_name: ""},
    )


async def preview_branding(
    account_id: int,
    values: Mapping[str, str],
    *,
    logo: bytes | None = None,
    clear_logo: bool = False,
) -> tuple[EffectiveBranding, dict[str, str]]:
    """What the account would look like with these settings; stores nothing.

    Invalid fields are left out of the preview and reported in the errors.
    """
    account = await get_account(account_id)
    clean, errors = validate_fields(
        {k: v for k, v in values.items() if k in TEXT_FIELDS},
        region=await default_region(account_id),
    )
    chain = await _chain(account.ancestor_ids)
    own = dict(next((row for i, _, row in chain if i == account_id), {}))
    own |= {name: value for name, value in clean.items() if name not in errors}
    uploaded: LogoFile | None = None
    if clear_logo:
        own["logo_digest"] = None
    elif logo:
        try:
            uploaded = inspect_logo(logo)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        else:
            own |= {
                "logo_digest": uploaded.digest,
                "logo_content_type": uploaded.content_type,
                "logo_width": uploaded.width,
                "logo_height": uploaded.height,
            }
    others = [entry for entry in chain if entry[0] != account_id]
    effective = _resolve(account_id, [(account_id, account.name, own), *others])
    if uploaded is not None and effective.logo is not None:
        # Not stored yet, so the preview carries the bytes instead of a URL.
        shown = replace(effective["logo"], value=replace(effective.logo, inline=uploaded))
        effective = EffectiveBranding(account_id, {**effective.values, "logo": shown})
    return effective, errors
