"""Refreshing WhatsApp template approvals from the providers that tell them (Twilio's
Content API); the rules and the rows live in tenants.rich.templates."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.gateways import integration_gateway
from tasks.gateways.twilio import TwilioGateway
from tenants.messaging.outbox import TransientProviderError
from tenants.rich import templates as wa_templates


@dataclass
class RefreshOutcome:
    refreshed: int = 0
    unknown: int = 0  # the provider does not know the template
    unreachable: int = 0  # the provider could not be asked now
    not_read: int = 0  # the provider offers no approval API: status as registered


async def refresh_approvals(account_id: int, only: set[int] | None = None) -> RefreshOutcome:
    """Ask each template's provider (of the account's templates, or of those in `only`) for
    its approval status and record the answer."""
    outcome = RefreshOutcome()
    for template in await wa_templates.list_templates(account_id):
        if only and template.id not in only:
            continue
        gateway = await integration_gateway(template.integration_id)
        if not isinstance(gateway, TwilioGateway):
            outcome.not_read += 1
            continue
        try:
            answer = await gateway.template_approval(template.provider_ref)
        except TransientProviderError:
            outcome.unreachable += 1
            continue
        if answer is None:
            outcome.unknown += 1
            await wa_templates.record_approval(
                template.id, "unknown", "Twilio does not know this ContentSid."
            )
            continue
        await wa_templates.record_approval(template.id, *answer)
        outcome.refreshed += 1
    return outcome
