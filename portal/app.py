"""The app factory: registers every controller, the API, hooks, guard and error table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from portal.api import api_router
from portal.auth import AuthMiddleware, permission_guard
from portal.controllers.accounts import AccountsController
from portal.controllers.api_keys import ApiKeysController
from portal.controllers.audit import AuditController
from portal.controllers.branding import BrandingController
from portal.controllers.campaigns import CampaignsController
from portal.controllers.channels import ChannelsController
from portal.controllers.composer import ComposerController
from portal.controllers.consent import ConsentController
from portal.controllers.contacts import ContactsController
from portal.controllers.credits import CreditsController
from portal.controllers.dashboard import DashboardController
from portal.controllers.favicon import favicon
from portal.controllers.health import HealthController
from portal.controllers.hooks import (
    IntegrationHooksController,
    ProviderHooksController,
    simulator_mount,
)
from portal.controllers.inbox import InboxController
from portal.controllers.invitations import InvitationController
from portal.controllers.keywords import KeywordsController
from portal.controllers.links import link_router
from portal.controllers.media import media_file
from portal.controllers.messages import MessagesController
from portal.controllers.my_accounts import MyAccountsController
from portal.controllers.numbers import NumbersController
from portal.controllers.orders import OrdersController
from portal.controllers.platform import PlatformController
from portal.controllers.providers import ProvidersController
from portal.controllers.recurring import QuietHoursController, RecurringController
from portal.controllers.reports import ConsentReportController, ReportsController
from portal.controllers.roles import RolesController
from portal.controllers.security import SecurityController, TwoFactorController
from portal.controllers.send import SendController
from portal.controllers.session import SessionController
from portal.controllers.sso import SsoController
from portal.controllers.teams import TeamsController
from portal.controllers.templates import TemplatesController
from portal.controllers.users import UsersController
from portal.controllers.webhooks import WebhooksController
from portal.controllers.whatsapp import WhatsAppTemplatesController
from portal.errors import EXCEPTION_HANDLERS, send_request_id
from portal.forms import refuse_control_characters
from portal.security_headers import security_headers_hook
from portal.workers import InProcessScheduler, InProcessWorkers
from tasks.sending import install_handoff
from tenants import secrets_box
from tenants.db import close_pool, enable_wal, start_pool
from tenants.settings import get_settings

UI = Path(__file__).resolve().parent.parent / "ui"


def prepare_process() -> str:
    """What the app sets up for its whole process; returns the secret key it keys from."""
    # Secrets at rest are keyed from SECRET_KEY, which may live in the data folder.
    secret_key = secrets_box.server_secret()
    secrets_box.configure(lambda: secret_key)
    # Outbox chunks and webhook deliveries go to the broker when their transaction commits.
    install_handoff()
    return secret_key


def create_app(*, run_workers: bool = False, run_scheduler: bool = False) -> Litestar:
    """The portal; `run_workers` drains the in-process broker inside this process and
    `run_scheduler` sends the periodic actors (scheduled sends, lost work, webhooks)."""
    settings = get_settings()
    secret_key = prepare_process()
    workers = InProcessWorkers() if run_workers else None
    scheduler = InProcessScheduler() if run_scheduler else None

    async def on_startup(app: Litestar) -> None:
        await enable_wal()
        await start_pool()
        if workers is not None:
            workers.start()
        if scheduler is not None:
            scheduler.start()

    async def on_shutdown(app: Litestar) -> None:
        if scheduler is not None:
            scheduler.stop()
        if workers is not None:
            workers.stop()
        await close_pool()

    csrf = CSRFConfig(
        secret=secret_key,
        cookie_name="csrftoken",
        cookie_secure=settings.web.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        exclude=["/api/", "/hooks/", "/simulator/", "/healthz", f"/{settings.links.path_prefix}/"],
    )
    route_handlers: list[Any] = [
        SessionController,
        DashboardController,
        AccountsController,
        BrandingController,
        ContactsController,
        ConsentController,
        CreditsController,
        ReportsController,
        ConsentReportController,
        OrdersController,
        HealthController,
        ProviderHooksController,
        IntegrationHooksController,
        ProvidersController,
        ChannelsController,
        WebhooksController,
        SendController,
        MessagesController,
        CampaignsController,
        RecurringController,
        QuietHoursController,
        *([simulator_mount] if settings.simulator.enabled else []),
        UsersController,
        TeamsController,
        RolesController,
        ApiKeysController,
        AuditController,
        InvitationController,
        SsoController,
        SecurityController,
        TwoFactorController,
        MyAccountsController,
        PlatformController,
        NumbersController,
        KeywordsController,
        WhatsAppTemplatesController,
        InboxController,
        TemplatesController,
        ComposerController,
        favicon,
        media_file,
        link_router(),
        api_router,
        create_static_files_router(
            path="/static", directories=[UI / "static"], opt={"public": True}, name="static"
        ),
    ]
    return Litestar(
        route_handlers=route_handlers,
        guards=[permission_guard],
        # Pages: no control characters in any form field (the API checks its own schemas).
        before_request=refuse_control_characters,
        middleware=[DefineMiddleware(AuthMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        csrf_config=csrf,
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(directory=UI / "templates", engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            title="SMS Portal API",
            version="1.0.0",
            # The API description is public; every operation in it still needs a key.
            openapi_router=Router(path="/api/schema", route_handlers=[], opt={"public": True}),
        ),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        before_send=[send_request_id, security_headers_hook(https=settings.web.cookie_secure)],
        # portal/errors.py logs each error once, with its request id: refusals as one INFO
        # line, faults with their traceback.
        logging_config=LoggingConfig(log_exceptions="never"),
        debug=False,
    )
