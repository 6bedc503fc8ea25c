"""WhatsApp templates registered per provider integration: their numbered parameters
mapped to merge fields, their approval status (read from the provider where it offers
it, through the ApprovalReader port tasks/ implements), and rendering one for a recipient."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tenants.audit import record as audit
from tenants.clock import now
from tenants.db import first_or_404, is_unique_violation, transaction, view_of
from tenants.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from tenants.providers.integrations import KINDS, IntegrationConfig, get_integration
from tenants.rich.tables import WhatsAppTemplate
from tenants.templates.merge_fields import render

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
STATUSES = (
    "approved",
    "pending",
    "received",
    "rejected",
    "paused",
    "disabled",
    "unsubmitted",
    "unknown",
)
# Kinds whose templates are registered without a status, to be read from the provider
# (Twilio's Content API); elsewhere the person registering it states what the provider's
# console shows (Sinch's refresh then reads its Provisioning API, tasks.whatsapp_templates).
READS_APPROVAL = frozenset({"twilio"})
NAME = re.compile(r"[a-z0-9_]{1,512}")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PARAMETER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
MAX_TEMPLATE_BODY = 1024  # WhatsApp's limit for a template's body


@dataclass(frozen=True)
class TemplateView:
    id: int
    account_id: int
    integration_id: int
    name: str
    language: str
    category: str
    body: str
    parameter_fields: list[str]
    provider_ref: str
    status: str
    status_reason: str
    refreshed_at: datetime | None
    created_at: datetime

    @property
    def parameter_count(self) -> int:
        return len(self.parameter_fields)


@dataclass(frozen=True)
class TemplateInput:
    integration_id: int
    name: str
    language: str
    category: str
    body: str
    parameter_fields: Sequence[str] = ()
    provider_ref: str = ""
    status: str = "unknown"


class ApprovalReader(Protocol):
    """Reads a template's approval from its provider: (status, reason), or None when the
    provider does not know the template."""

    async def __call__(
        self, config: IntegrationConfig, template: TemplateView
    ) -> tuple[str, str] | None: ...


def _view(row: Mapping[str, Any]) -> TemplateView:
    return view_of(TemplateView, row, parameter_fields=json.loads(row["parameter_fields"] or "[]"))


def parameter_numbers(body: str) -> list[int]:
    """The distinct parameter numbers of a body, in ascending order."""
    return sorted({int(n) for n in PARAMETER.findall(body)})


def _check(data: TemplateInput, kind: str) -> None:
    errors = FieldErrors()
    if not NAME.fullmatch(data.name):
        errors.add("name", "Lower-case letters, digits and _ only (as WhatsApp names it).")
    if not LANGUAGE.fullmatch(data.language):
        errors.add("language", "A language code such as en or en_US.")
    if data.category not in CATEGORIES:
        errors.add("category", f"Choose one of {', '.join(CATEGORIES)}.")
    if not data.body.strip() or len(data.body) > MAX_TEMPLATE_BODY:
        errors.add("body", f"The body has 1 to {MAX_TEMPLATE_BODY} characters.")
    numbers = parameter_numbers(data.body)
    if numbers != list(range(1, len(numbers) + 1)):
        errors.add("body", "Number the parameters {{1}}, {{2}}... without gaps.")
    elif len(data.parameter_fields) != len(numbers):
        errors.add(
            "parameter_fields", f"Name a merge field for each of the {len(numbers)} parameters."
        )
    elif any(not FIELD.fullmatch(f) for f in data.parameter_fields):
        errors.add("parameter_fields", "A merge field is a name such as first_name.")
    if kind == "twilio" and not CONTENT_SID.fullmatch(data.provider_ref):
        errors.add("provider_ref", "Twilio needs the template's ContentSid (HX and 32 hex digits).")
    if kind not in READS_APPROVAL and data.status not in STATUSES:
        errors.add("status", f"Choose one of {', '.join(STATUSES)}.")
    errors.raise_if_any()


async def register_template(
    actor: audit.Actor, account_id: int, data: TemplateInput
) -> TemplateView:
    """Register a template on one of the account's own integrations that carries WhatsApp."""
    try:
        integration = await get_integration(account_id, data.integration_id)
    except NotFound:
        raise ValidationFailed({"integration_id": "No such provider integration."}) from None
    if "whatsapp" not in KINDS[integration.kind].channels:
        raise ValidationFailed({"integration_id": f"{integration.name} does not carry WhatsApp."})
    _check(data, integration.kind)
    status = "unknown" if integration.kind in READS_APPROVAL else data.status
    row = WhatsAppTemplate(
        account_id=account_id,
        integration_id=integration.id,
        key=f"{integration.id}|{data.name}|{data.language}",
        name=data.name,
        language=data.language,
        category=data.category,
        body=data.body,
        parameter_fields=json.dumps(list(data.parameter_fields)),
        provider_ref=data.provider_ref,
        status=status,
    )
    try:
        async with transaction():
            inserted = await WhatsAppTemplate.insert(row).returning(WhatsAppTemplate.id)
            template_id = int(inserted[0]["id"])
            await audit.record(
                actor, account_id=account_id, action="whatsapp_template.register",
                target_type="whatsapp_template", target_id=template_id,
                after={"name": data.name, "language": data.language, "status": status},
            )  # fmt: skip
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(
                "This integration already has a template with this name and language.",
                code="duplicate_template",
            ) from None
        raise
    return await get_template(account_id, template_id)


async def get_template(account_id: int, template_id: int) -> TemplateView:
    row = await first_or_404(
        WhatsAppTemplate.select().where(
            (WhatsAppTemplate.id == template_id) & (WhatsAppTemplate.account_id == account_id)
        ),
        f"WhatsApp template {template_id} not found",
    )
    return _view(row)


async def list_templates(account_id: int) -> list[TemplateView]:
    rows = (
        await WhatsAppTemplate.select()
        .where(WhatsAppTemplate.account_id == account_id)
        .order_by(WhatsAppTemplate.name)
    )
    return [_view(r) for r in rows]


async def find_template(integration_id: int, name: str, language: str) -> TemplateView | None:
    """The template a send names, on the integration that will carry it."""
    row = (
        await WhatsAppTemplate.select()
        .where(WhatsAppTemplate.key == f"{integration_id}|{name}|{language}")
        .first()
    )
    return _view(row) if row else None


async def usable_templates(integration_id: int) -> list[TemplateView]:
    """Approved templates of an integration (what the send page offers)."""
    rows = (
        await WhatsAppTemplate.select()
        .where(
            (WhatsAppTemplate.integration_id == integration_id)
            & (WhatsAppTemplate.status == "approved")
        )
        .order_by(WhatsAppTemplate.name)
    )
    return [_view(r) for r in rows]


async def record_approval(template_id: int, status: str, reason: str) -> None:
    """What the provider said about a template's approval (an unknown word is `unknown`)."""
    await WhatsAppTemplate.update(
        {
            WhatsAppTemplate.status: status if status in STATUSES else "unknown",
            WhatsAppTemplate.status_reason: reason[:500],
            WhatsAppTemplate.refreshed_at: now(),
        }
    ).where(WhatsAppTemplate.id == template_id)


def template_values(
    template: TemplateView, parameters: Mapping[str, str], contact: Mapping[str, str]
) -> list[str]:
    """The text of each numbered parameter for one recipient: the value the send gave for
    it (merge fields in it rendered), else the merge field it is mapped to."""
    values = []
    for number, field in enumerate(template.parameter_fields, start=1):
        given = parameters.get(str(number))
        values.append(render(given, contact) if given is not None else contact.get(field, ""))
    return values


def template_text(template: TemplateView, values: Sequence[str]) -> str:
    """The body as the recipient reads it (for the message page and the log)."""

    def substitute(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return values[index] if 0 <= index < len(values) else match.group(0)

    return PARAMETER.sub(substitute, template.body)
