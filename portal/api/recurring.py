"""/api/v1/recurring (recurring sends and their runs), /api/v1/quiet-hours (the account's
quiet hours and the messages they hold) and a template's quiet-hours exemption."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.params import JSONBody
from msgspec import Meta, Struct

from portal.api.schemas import Id, Line, PathId, Text, documented
from portal.auth import current_grants, request_actor
from tenants.messaging import quiet_hours, recurring
from tenants.messaging.accept import send_permissions
from tenants.templates import templates

Weekday = Annotated[int, Meta(ge=0, le=6)]


class ActionIn(Struct, forbid_unknown_fields=True):
    action: Annotated[str, Meta(pattern="^(pause|resume|skip|end)$")]


class ScheduleIn(Struct, forbid_unknown_fields=True):
    name: Line
    frequency: Line
    local_time: Line
    body: Text | None = None
    template_id: Id | None = None
    variables: dict[str, Text] = {}
    to: list[Line] = []
    list_ids: list[Id] = []
    sender: Line = ""
    channel: Line = "sms"
    campaign: bool = False
    weekdays: list[Weekday] = []
    month_day: Annotated[int, Meta(ge=0, le=31)] = 1
    start_date: Line = ""
    until_date: Line | None = None
    max_runs: Annotated[int, Meta(ge=1, le=10_000)] | None = None

    def domain(self) -> recurring.ScheduleInput:
        return recurring.ScheduleInput(
            name=self.name,
            campaign=self.campaign,
            body=self.body,
            template_id=self.template_id,
            variables=dict(self.variables),
            numbers=list(self.to),
            list_ids=list(self.list_ids),
            sender=self.sender,
            channel=self.channel,
            frequency=self.frequency,
            weekdays=list(self.weekdays),
            month_day=self.month_day,
            local_time=self.local_time,
            start_date=self.start_date,
            until_date=self.until_date,
            max_runs=self.max_runs,
        )


class RunOut(Struct):
    id: int
    run_at: datetime
    state: str
    reason: str
    batch_id: int | None
    accepted: int
    skipped: int
    total_cost: int


class ScheduleOut(Struct):
    id: int
    name: str
    state: str
    description: str
    campaign: bool
    body: str | None
    template_id: int | None
    to: list[str]
    list_ids: list[int]
    frequency: str
    weekdays: list[int]
    month_day: int
    local_time: str
    timezone: str
    start_date: str
    until_date: str | None
    max_runs: int | None
    runs_counted: int
    next_run_at: datetime | None
    upcoming: list[datetime]
    runs: list[RunOut]


def schedule_json(v: recurring.ScheduleView) -> ScheduleOut:
    return ScheduleOut(
        id=v.id,
        name=v.name,
        state=v.state,
        description=v.description,
        campaign=v.campaign,
        body=v.body,
        template_id=v.template_id,
        to=v.numbers,
        list_ids=v.list_ids,
        frequency=v.frequency,
        weekdays=v.weekdays,
        month_day=v.month_day,
        local_time=v.local_time,
        timezone=v.timezone,
        start_date=v.start_date,
        until_date=v.until_date,
        max_runs=v.max_runs,
        runs_counted=v.runs_counted,
        next_run_at=v.next_run_at,
        upcoming=v.upcoming,
        runs=[RunOut(**r.__dict__) for r in v.runs],
    )


class RecurringApi(Controller):
    path = "/recurring"

    @get("/", opt={"permission": "campaigns.manage"}, **documented())
    async def list_schedules(self, request: Request[Any, Any, Any]) -> list[ScheduleOut]:
        account = current_grants(request).account
        return [schedule_json(v) for v in await recurring.list_schedules(account.id)]

    @post("/", opt={"permission": "campaigns.manage"}, status_code=201, **documented(404))
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ScheduleIn]
    ) -> ScheduleOut:
        """A recurring send; its runs are accepted (consent, credits) when each is due."""
        grants = current_grants(request)
        view = await recurring.create_schedule(
            request_actor(request), grants.account.id, data.domain(), send_permissions(grants)
        )
        return schedule_json(view)

    @get("/{schedule_id:int}", opt={"permission": "campaigns.manage"}, **documented(404))
    async def detail(self, request: Request[Any, Any, Any], schedule_id: PathId) -> ScheduleOut:
        account = current_grants(request).account
        return schedule_json(await recurring.get_schedule(account.id, schedule_id))

    @put("/{schedule_id:int}", opt={"permission": "campaigns.manage"}, **documented(404))
    async def replace(
        self, request: Request[Any, Any, Any], schedule_id: PathId, data: JSONBody[ScheduleIn]
    ) -> ScheduleOut:
        """Edit the runs still to come (message, time, recipients); past runs stay."""
        grants = current_grants(request)
        view = await recurring.update_schedule(
            request_actor(request),
            grants.account.id,
            schedule_id,
            data.domain(),
            send_permissions(grants),
        )
        return schedule_json(view)

    @post(
        "/{schedule_id:int}/actions",
        opt={"permission": "campaigns.manage"},
        status_code=200,
        **documented(404),
    )
    async def act(
        self, request: Request[Any, Any, Any], schedule_id: PathId, data: JSONBody[ActionIn]
    ) -> ScheduleOut:
        """`{action}`: `pause`, `resume`, `skip` (the next run) or `end`."""
        account = current_grants(request).account
        view = await recurring.act(request_actor(request), account.id, schedule_id, data.action)
        return schedule_json(view)


class QuietHoursIn(Struct, forbid_unknown_fields=True):
    enabled: bool
    start: Line = "09:00"
    end: Line = "20:00"
    days: list[Weekday] = msgspec.field(default_factory=lambda: [6])


class QuietHoursOut(Struct):
    enabled: bool
    start: str
    end: str
    days: list[int]
    inherited_from_account_id: int | None
    description: str


class HeldOut(Struct):
    id: int
    batch_id: int | None
    to: str
    held_until: datetime


def quiet_json(w: quiet_hours.QuietWindow, account_id: int) -> QuietHoursOut:
    return QuietHoursOut(
        enabled=w.enabled,
        start=w.start.strftime("%H:%M"),
        end=w.end.strftime("%H:%M"),
        days=sorted(w.days),
        inherited_from_account_id=None if w.from_account_id == account_id else w.from_account_id,
        description=w.describe(),
    )


class QuietHoursApi(Controller):
    path = "/quiet-hours"

    @get("/", opt={"permission": "campaigns.manage"}, **documented())
    async def show(self, request: Request[Any, Any, Any]) -> QuietHoursOut:
        account = current_grants(request).account
        return quiet_json(await quiet_hours.effective_quiet_hours(account.id), account.id)

    @put("/", opt={"permission": "settings.manage"}, **documented())
    async def set_own(
        self, request: Request[Any, Any, Any], data: JSONBody[QuietHoursIn]
    ) -> QuietHoursOut:
        account = current_grants(request).account
        window = await quiet_hours.set_quiet_hours(
            request_actor(request),
            account.id,
            enabled=data.enabled,
            start=data.start,
            end=data.end,
            days=list(data.days),
        )
        return quiet_json(window, account.id)

    @delete("/", opt={"permission": "settings.manage"}, status_code=200, **documented())
    async def inherit(self, request: Request[Any, Any, Any]) -> QuietHoursOut:
        """Drop the account's own quiet hours: it inherits its parent's again."""
        account = current_grants(request).account
        window = await quiet_hours.inherit_quiet_hours(request_actor(request), account.id)
        return quiet_json(window, account.id)

    @get("/held", opt={"permission": "messages.view"}, **documented())
    async def held(self, request: Request[Any, Any, Any]) -> list[HeldOut]:
        account = current_grants(request).account
        return [
            HeldOut(id=m.id, batch_id=m.batch_id, to=m.to, held_until=m.held_until)
            for m in await quiet_hours.held_messages(account.id)
        ]


class QuietExemptIn(Struct, forbid_unknown_fields=True):
    exempt: bool


class QuietExemptOut(Struct):
    template_id: int
    exempt: bool


class TemplateQuietExemptApi(Controller):
    path = "/templates/{template_id:int}/quiet-exempt"

    @put("/", opt={"permission": "templates.manage"}, **documented(404))
    async def set_exempt(
        self, request: Request[Any, Any, Any], template_id: PathId, data: JSONBody[QuietExemptIn]
    ) -> QuietExemptOut:
        """Mark a transactional template (codes, receipts) to go through quiet hours."""
        exempt = await templates.set_quiet_exempt(
            actor=request_actor(request),
            account_id=current_grants(request).account.id,
            template_id=template_id,
            exempt=data.exempt,
        )
        return QuietExemptOut(template_id=template_id, exempt=exempt)
