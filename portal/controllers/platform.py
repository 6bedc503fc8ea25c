"""The platform operator's console: master accounts and system health."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import request_actor
from portal.controllers.health import broker_round_trip
from portal.forms import FORM
from portal.pages import render
from tenants.access import users
from tenants.accounts import tree as accounts
from tenants.errors import ValidationFailed
from tenants.platform import health


async def _masters() -> list[dict[str, Any]]:
    roots = await accounts.root_accounts(kind="master")
    counts = await accounts.subtree_sizes([m.id for m in roots])
    return [{"account": m, "descendants": counts.get(m.id, 0)} for m in roots]


class PlatformController(Controller):
    path = "/platform"

    @get("/", opt={"permission": "platform.operate"}, name="platform")
    async def index(self, request: HTMXRequest) -> Any:
        return await render(
            request,
            "platform.html.jinja",
            {"masters": await _masters(), "form": {}, "errors": {}},
        )

    @get("/health", opt={"permission": "platform.operate"})
    async def health_fragment(self, request: HTMXRequest) -> Any:
        db_ok = await health.database_ok()
        broker_ok, seconds = await broker_round_trip(wait_seconds=2.0) if db_ok else (False, 0.0)
        context: dict[str, Any] = {
            "db_ok": db_ok,
            "broker_ok": broker_ok,
            "round_trip_ms": round(seconds * 1000, 1),
        }
        if not request.htmx:
            # Opened directly: the console with the health already filled in.
            context |= {"masters": await _masters(), "form": {}, "errors": {}}
        return await render(request, "platform.html.jinja", context, block="health")

    @post("/masters", opt={"permission": "platform.operate"})
    async def create_master(
        self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]
    ) -> Any:
        form = {k: (data.get(k) or "").strip() for k in ("name", "slug", "owner_email")}
        errors: dict[str, str] = {}
        owner = None
        if form["owner_email"]:
            owner = await users.find_user_by_email(form["owner_email"])
            if owner is None:
                errors["owner_email"] = (
                    "No user has this email yet. Leave it empty, create the master, then "
                    "invite its owner from the master's Users page."
                )
        created = None
        if not errors:
            try:
                created = await accounts.create_master_account(
                    actor=request_actor(request),
                    name=form["name"],
                    slug=form["slug"],
                    owner_user_id=owner.id if owner else None,
                )
            except ValidationFailed as exc:
                errors = exc.errors
        if errors:
            return await render(
                request,
                "platform.html.jinja",
                {"masters": await _masters(), "form": form, "errors": errors},
                block="create_master",
                status_code=422,
            )
        if not request.htmx:
            return Redirect(path="/platform", status_code=303)
        return await render(
            request,
            "platform.html.jinja",
            {"masters": await _masters(), "form": {}, "errors": {}, "created": created},
            block="masters_section",
            status_code=201,
        )
