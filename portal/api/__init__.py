"""JSON API /api/v1: HTTP Basic with an API key; one module per resource."""

from litestar import Router

from portal.api.accounts import AccountsApi
from portal.api.consent import ConsentApi
from portal.api.contacts import ContactsApi
from portal.api.credits import CreditsApi
from portal.api.integrations import IntegrationsApi
from portal.api.keywords import KeywordsApi
from portal.api.messages import CampaignResultsApi, MessagesApi
from portal.api.numbers import NumbersApi
from portal.api.recurring import QuietHoursApi, RecurringApi, TemplateQuietExemptApi
from portal.api.reports import ConsentReportApi, ReportsApi
from portal.api.rich import WhatsAppApi
from portal.api.schemas import check_body_strictly
from portal.api.segments import SegmentsApi
from portal.api.templates import TemplatesApi

api_router = Router(
    path="/api/v1",
    before_request=check_body_strictly,
    route_handlers=[
        AccountsApi,
        ConsentApi,
        ContactsApi,
        CreditsApi,
        TemplatesApi,
        SegmentsApi,
        MessagesApi,
        CampaignResultsApi,
        NumbersApi,
        KeywordsApi,
        IntegrationsApi,
        ReportsApi,
        ConsentReportApi,
        WhatsAppApi,
        RecurringApi,
        QuietHoursApi,
        TemplateQuietExemptApi,
    ],
)
