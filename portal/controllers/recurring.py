"""Recurring sends (list with a new-schedule form, one schedule with its upcoming and past
runs, edit, pause / resume / skip / end) and the quiet-hours page (the account's window
and the messages it holds). Plain forms; htmx only enhances them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM, digits, id_list, int_list, many, one
from portal.pages import render
from tenants.contacts import contacts
from tenants.errors import ValidationFailed
from tenants.messaging import quiet_hours, recurring
from tenants.messaging.accept import send_permissions
from tenants.messaging.messages import CHANNELS
from tenants.messaging.recurrence import WEEKDAY_NAMES
from tenants.templates import templates

_SPLIT = re.compile(r"[\n,;]+")


def _int_or(value: str, field: str, errors: dict[str, str], default: int | None) -> int | None:
    if not value:
        return default
    if not digits(value):
        errors[field] = "Write a whole number."
        return default
    return int(value)


def schedule_from_form(data: dict[str, Any]) -> recurring.ScheduleInput:
    errors: dict[str, str] = {}
    template_id = _int_or(one(data, "template_id"), "template_id", errors, None)
    body = one(data, "body").replace("\r\n", "\n") or None
    month_day = _int_or(one(data, "month_day"), "month_day", errors, 1)
    max_runs = _int_or(one(data, "max_runs"), "max_runs", errors, None)
    if errors:
        raise ValidationFailed(errors)
    return recurring.ScheduleInput(
        name=one(data, "name"),
        campaign=one(data, "campaign") == "1",
        body=body if template_id is None else None,
        template_id=template_id,
        numbers=[n.strip() for n in _SPLIT.split(one(data, "numbers")) if n.strip()],
        list_ids=id_list(data, "list_ids"),
        sender=one(data, "sender"),
        channel=one(data, "channel") or "sms",
        frequency=one(data, "frequency"),
        weekdays=int_list(data, "weekdays"),
        month_day=month_day or 0,
        local_time=one(data, "local_time"),
        start_date=one(data, "start_date"),
        until_date=one(data, "until_date") or None,
        max_runs=max_runs,
    )


async def _options(request: Request[Any, Any, Any]) -> dict[str, Any]:
    account = current_grants(request).account
    return {
        "templates": await templates.usable_templates(account.id, status="approved"),
        "lists": await contacts.contact_lists(account.id),
        "channels": CHANNELS,
        "weekday_names": WEEKDAY_NAMES,
    }


def _echo(data: dict[str, Any]) -> dict[str, Any]:
    """The posted form as the template shows it again (repeated fields as id lists)."""
    form = {k: one(data, k) for k in data if k not in ("weekdays", "list_ids")}
    return {**form, "weekdays": int_list(data, "weekdays"), "list_ids": id_list(data, "list_ids")}


def _form_of(view: recurring.ScheduleView | None) -> dict[str, Any]:
    if view is None:
        return {"frequency": "weekly", "local_time": "09:00", "weekdays": [0], "month_day": 1}
    return {**view.__dict__, "numbers": "\n".join(view.numbers)}


class RecurringController(Controller):
    path = "/recurring"

    @get("/", opt={"permission": "campaigns.manage"}, name="recurring")
    async def index(self, request: HTMXRequest) -> Any:
        account = current_grants(request).account
        return await render(
            request,
            "recurring.html.jinja",
            {
                **(await _options(request)),
                "schedules": await recurring.list_schedules(account.id),
                "form": _form_of(None),
                "errors": {},
            },
        )

    @post("/", opt={"permission": "campaigns.manage"}, status_code=200)
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        grants = current_grants(request)
        try:
            view = await recurring.create_schedule(
                request_actor(request),
                grants.account.id,
                schedule_from_form(data or {}),
                send_permissions(grants),
            )
        except ValidationFailed as exc:
            ctx = {
                **(await _options(request)),
                "schedules": await recurring.list_schedules(grants.account.id),
                "form": _echo(data or {}),
                "errors": exc.errors,
            }
            return await render(
                request, "recurring.html.jinja", ctx, block="schedule_form", status_code=422
            )
        return Redirect(path=f"/recurring/{view.id}", status_code=303)

    @get("/{schedule_id:int}", opt={"permission": "campaigns.manage"})
    async def detail(self, request: HTMXRequest, schedule_id: FromPath[int]) -> Any:
        account = current_grants(request).account
        view = await recurring.get_schedule(account.id, schedule_id, upcoming=10)
        return await render(
            request,
            "recurring_detail.html.jinja",
            {**(await _options(request)), "s": view, "form": _form_of(view), "errors": {}},
        )

    @post("/{schedule_id:int}", opt={"permission": "campaigns.manage"}, status_code=200)
    async def edit(
        self,
        request: HTMXRequest,
        schedule_id: FromPath[int],
        data: Annotated[dict[str, Any], FORM],
    ) -> Any:
        grants = current_grants(request)
        try:
            await recurring.update_schedule(
                request_actor(request),
                grants.account.id,
                schedule_id,
                schedule_from_form(data or {}),
                send_permissions(grants),
            )
        except ValidationFailed as exc:
            view = await recurring.get_schedule(grants.account.id, schedule_id, upcoming=10)
            ctx = {
                **(await _options(request)),
                "s": view,
                "form": _echo(data or {}),
                "errors": exc.errors,
            }
            return await render(
                request, "recurring_detail.html.jinja", ctx, block="schedule_form", status_code=422
            )
        return Redirect(path=f"/recurring/{schedule_id}", status_code=303)

    @post("/{schedule_id:int}/{action:str}", opt={"permission": "campaigns.manage"})
    async def act(
        self, request: HTMXRequest, schedule_id: FromPath[int], action: FromPath[str]
    ) -> Redirect:
        account = current_grants(request).account
        await recurring.act(request_actor(request), account.id, schedule_id, action)
        return Redirect(path=f"/recurring/{schedule_id}", status_code=303)


class QuietHoursController(Controller):
    path = "/settings/quiet-hours"

    async def _context(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        account = current_grants(request).account
        window = await quiet_hours.effective_quiet_hours(account.id)
        return {
            "window": window,
            "own": window.from_account_id == account.id,
            "held": await quiet_hours.held_messages(account.id),
            "weekday_names": WEEKDAY_NAMES,
            "errors": {},
        }

    @get("/", opt={"permission": "messages.view"}, name="quiet_hours")
    async def page(self, request: HTMXRequest) -> Any:
        return await render(request, "quiet_hours.html.jinja", await self._context(request))

    @post("/", opt={"permission": "settings.manage"}, status_code=200)
    async def save(self, request: HTMXRequest, data: Annotated[dict[str, Any], FORM]) -> Any:
        raw = data or {}
        account = current_grants(request).account
        try:
            if one(raw, "action") == "inherit":
                await quiet_hours.inherit_quiet_hours(request_actor(request), account.id)
            else:
                await quiet_hours.set_quiet_hours(
                    request_actor(request),
                    account.id,
                    enabled=one(raw, "enabled") == "1",
                    start=one(raw, "start"),
                    end=one(raw, "end"),
                    days=[int(d) for d in many(raw, "days") if digits(d)],
                )
        except ValidationFailed as exc:
            ctx = {**(await self._context(request)), "errors": exc.errors}
            return await render(
                request, "quiet_hours.html.jinja", ctx, block="quiet_form", status_code=422
            )
        return Redirect(path="/settings/quiet-hours", status_code=303)
