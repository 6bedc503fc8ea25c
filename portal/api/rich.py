"""/api/v1/whatsapp: templates registered per provider integration (register, list,
refresh their approval from the provider) and the customer service window per recipient;
plus the `template` and `card` shapes a send takes (POST /messages)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from msgspec import Meta, Struct

from portal.api.schemas import Id, Line, Text, documented
from portal.auth import current_grants, request_actor
from tasks.whatsapp_templates import refresh_approvals
from tenants.accounts.tree import default_region
from tenants.errors import ValidationFailed
from tenants.numbers.numbers import default_sender, resolve_sender
from tenants.phones import normalize_phone
from tenants.rich import content as rich_content
from tenants.rich import templates as wa_templates
from tenants.rich.content import Card, RichRequest, Suggestion, TemplateChoice
from tenants.rich.templates import TemplateInput, TemplateView


class TemplateIn(Struct):
    """A WhatsApp template to send: its registered name and language, and values for its
    numbered parameters ({"1": "Jane"}); a parameter left out takes its merge field."""

    name: Line
    language: Line
    parameters: Annotated[dict[Line, Text], Meta(max_length=100)] = {}


class SuggestionIn(Struct):
    text: Line
    kind: Line = "reply"  # reply | url | dial
    value: Line = ""


class CardIn(Struct):
    """An RCS rich card; `fallback_text` is the SMS a handset without RCS gets."""

    title: Text
    description: Text = ""
    media_url: Line = ""
    suggestions: Annotated[list[SuggestionIn], Meta(max_length=10)] = []
    fallback_text: Text = ""


def rich_request(template: TemplateIn | None, card: CardIn | None) -> RichRequest | None:
    if template is None and card is None:
        return None
    return RichRequest(
        template=TemplateChoice(template.name, template.language, dict(template.parameters))
        if template
        else None,
        card=Card(
            card.title,
            card.description,
            card.media_url,
            tuple(Suggestion(s.kind, s.text, s.value) for s in card.suggestions),
            card.fallback_text,
        )
        if card
        else None,
    )


class WhatsAppTemplateOut(Struct):
    id: int
    integration_id: int
    name: str
    language: str
    category: str
    body: str
    parameter_fields: list[str]
    content_sid: str
    status: str
    status_reason: str
    refreshed_at: str | None


class WhatsAppTemplateCreate(Struct):
    integration_id: Id
    name: Line
    language: Line
    body: Text
    category: Line = "UTILITY"
    parameter_fields: Annotated[list[Line], Meta(max_length=100)] = []
    content_sid: Line = ""
    status: Line = "unknown"  # where the provider offers no approval API


class RefreshIn(Struct):
    template_ids: Annotated[list[Id], Meta(max_length=1000)] = []  # empty: every template


class RefreshOut(Struct):
    refreshed: int
    unknown: int
    unreachable: int
    not_read: int
    templates: list[WhatsAppTemplateOut]


class WindowIn(Struct):
    to: Annotated[list[Line], Meta(min_length=1, max_length=1000)]
    sender: Line = ""


class WindowOut(Struct):
    to: str
    window_open: bool
    closes_at: str | None
    requires: str  # "free_text_or_template" inside the window, "template" outside


def template_out(t: TemplateView) -> WhatsAppTemplateOut:
    return WhatsAppTemplateOut(
        id=t.id,
        integration_id=t.integration_id,
        name=t.name,
        language=t.language,
        category=t.category,
        body=t.body,
        parameter_fields=t.parameter_fields,
        content_sid=t.provider_ref,
        status=t.status,
        status_reason=t.status_reason,
        refreshed_at=t.refreshed_at.isoformat() if t.refreshed_at else None,
    )


async def window_rows(account_id: int, to: list[str], sender: str) -> list[WindowOut]:
    """Each recipient's customer service window with the sender the send would use."""
    chosen = (
        (await resolve_sender(account_id, sender)).value
        if sender
        else await default_sender(account_id)
    )
    region = await default_region(account_id)
    phones = []
    for index, raw in enumerate(to):
        phone = normalize_phone(raw, region)
        if phone is None:
            raise ValidationFailed({f"to[{index}]": f"{raw!r} is not a phone number."})
        phones.append(phone)
    return [
        WindowOut(
            to=phone,
            window_open=closes is not None,
            closes_at=closes.isoformat() if closes else None,
            requires="free_text_or_template" if closes else "template",
        )
        for phone, closes in await rich_content.whatsapp_sender_window(chosen, phones)
    ]


class WhatsAppApi(Controller):
    path = "/whatsapp"

    @get("/templates", opt={"permission": "messages.send_template"}, **documented())
    async def list_templates(self, request: Request[Any, Any, Any]) -> list[WhatsAppTemplateOut]:
        account = current_grants(request).account
        return [template_out(t) for t in await wa_templates.list_templates(account.id)]

    @post("/templates", opt={"permission": "providers.manage"}, status_code=201, **documented(409))
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[WhatsAppTemplateCreate]
    ) -> WhatsAppTemplateOut:
        account = current_grants(request).account
        view = await wa_templates.register_template(
            request_actor(request),
            account.id,
            TemplateInput(
                integration_id=data.integration_id,
                name=data.name.strip(),
                language=data.language.strip(),
                category=data.category.strip().upper(),
                body=data.body,
                parameter_fields=[f.strip() for f in data.parameter_fields],
                provider_ref=data.content_sid.strip(),
                status=data.status.strip().lower(),
            ),
        )
        return template_out(view)

    @post(
        "/templates/refresh",
        opt={"permission": "providers.manage"},
        status_code=200,
        **documented(),
    )
    async def refresh(
        self, request: Request[Any, Any, Any], data: JSONBody[RefreshIn]
    ) -> RefreshOut:
        account = current_grants(request).account
        outcome = await refresh_approvals(account.id, only=set(data.template_ids))
        views = await wa_templates.list_templates(account.id)
        return RefreshOut(
            refreshed=outcome.refreshed,
            unknown=outcome.unknown,
            unreachable=outcome.unreachable,
            not_read=outcome.not_read,
            templates=[template_out(t) for t in views],
        )

    @post("/window", opt={"permission": "messages.send_template"}, status_code=200, **documented())
    async def window(
        self, request: Request[Any, Any, Any], data: JSONBody[WindowIn]
    ) -> list[WindowOut]:
        """Which recipients may get free text now (inside the 24-hour window) and which need
        a template; nothing is sent or charged."""
        account = current_grants(request).account
        return await window_rows(account.id, list(data.to), data.sender.strip())
