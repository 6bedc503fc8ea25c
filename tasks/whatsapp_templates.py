"""Refreshing WhatsApp template approvals from the providers that tell them (Twilio's
Content API, Sinch's Provisioning API); the rules and the rows live in
tenants.rich.templates."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.gateways import integration_gateway
from tasks.gateways.base import IntegrationGateway
from tasks.gateways.simulator import SimulatorGateway
from tasks.gateways.sinch import SinchConversationGateway
from tasks.gateways.twilio import TwilioGateway
from tenants.messaging.outbox import TransientProviderError
from tenants.rich import templates as wa_templates


@dataclass
class RefreshOutcome:
    refreshed: int = 0
    unknown: int = 0  # the provider does not know the template
    unreachable: int = 0  # the provider could not be asked now
    not_read: int = 0  # the provider offers no approval API: status as registered


NOT_READ = object()  # the provider offers no approval API
UNKNOWN = {
    "twilio": "Twilio does not know this ContentSid.",
    "sinch_conversation": "Sinch does not know this template name in this language.",
}


async def _ask(
    gateway: IntegrationGateway | SimulatorGateway, template: wa_templates.TemplateView
) -> tuple[str, str] | None | object:
    """The provider's (status, reason), None when it does not know the template, NOT_READ
    when it cannot tell."""
    if isinstance(gateway, TwilioGateway):
        return await gateway.template_approval(template.provider_ref)
    if isinstance(gateway, SinchConversationGateway):
        return await gateway.template_approval(template.name, template.language)
    return NOT_READ


async def refresh_approvals(account_id: int, only: set[int] | None = None) -> RefreshOutcome:
    """Ask each template's provider (of the account's templates, or of those in `only`) for
    its approval status and record the answer."""
    outcome = RefreshOutcome()
    for template in await wa_templates.list_templates(account_id):
        if only and template.id not in only:
            continue
        gateway = await integration_gateway(template.integration_id)
        try:
            answer = await _ask(gateway, template)
        except TransientProviderError:
            outcome.unreachable += 1
            continue
        if answer is NOT_READ:
            outcome.not_read += 1
        elif isinstance(answer, tuple):
            await wa_templates.record_approval(template.id, *answer)
            outcome.refreshed += 1
        else:
            outcome.unknown += 1
            await wa_templates.record_approval(
                template.id, "unknown", UNKNOWN.get(getattr(gateway, "kind", ""), "")
            )
    return outcome
