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
from portal.config import get_settings
from portal.controllers.accounts import AccountsController
from portal.controllers.branding import BrandingController
from portal.controllers.composer import ComposerController
from portal.controllers.consent import ConsentController
from portal.controllers.contacts import ContactsController
from portal.controllers.credits import CreditsController
from portal.controllers.dashboard import DashboardController
from portal.controllers.health import HealthController
from portal.controllers.orders import OrdersController
from portal.controllers.platform import PlatformController
from portal.controllers.session import SessionController
from portal.controllers.templates import TemplatesController
from portal.errors import EXCEPTION_HANDLERS
from portal.workers import InProcessWorkers
from tenants.db import close_pool, enable_wal, start_pool

UI = Path(__file__).resolve().parent.parent / "ui"


def create_app(*, run_workers: bool = False) -> Litestar:
    """The portal; `run_workers` drains the in-process broker inside this process."""
    settings = get_settings()
    workers = InProcessWorkers() if run_workers else None

    async def on_startup(app: Litestar) -> None:
        await enable_wal()
        await start_pool()
        if workers is not None:
            workers.start()

    async def on_shutdown(app: Litestar) -> None:
        if workers is not None:
            workers.stop()
        await close_pool()

    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="csrftoken",
        cookie_secure=settings.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        exclude=["/api/", "/hooks/", "/simulator/", "/healthz"],
    )
    route_handlers: list[Any] = [
        SessionController,
        DashboardController,
        AccountsController,
        BrandingController,
        ContactsController,
        ConsentController,
        CreditsController,
        OrdersController,
        HealthController,
        PlatformController,
        TemplatesController,
        ComposerController,
        api_router,
        create_static_files_router(
            path="/static", directories=[UI / "static"], opt={"public": True}, name="static"
        ),
    ]
    return Litestar(
        route_handlers=route_handlers,
        guards=[permission_guard],
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
        logging_config=LoggingConfig(log_exceptions="always"),
        debug=False,
    )
