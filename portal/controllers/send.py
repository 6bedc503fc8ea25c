"""The send page: recipients, free text or an approved template, sender, channel, now or
later (account time zone); a summary before sending (dry run) and the send itself."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.controllers.campaigns import start_list_campaign
from portal.controllers.composer import composition_for
from portal.forms import MULTIPART, parse_id
from portal.pages import render
from tasks.media_fetch import fetch_media
from tenants.clock import now
from tenants.contacts import contacts
from tenants.errors import Conflict, ValidationFailed
from tenants.media import sending as mms_media
from tenants.media import store
from tenants.media.store import NewMedia
from tenants.media.views import ShownMedia
from tenants.messaging import accept as sending
from tenants.messaging import streamed
from tenants.messaging.accept import PAST_GRACE, SendRequest, SendResult, send_permissions
from tenants.messaging.messages import CHANNELS
from tenants.messaging.unreachable import refuse_unreachable
from tenants.numbers import numbers
from tenants.providers import integrations as providers
from tenants.rich import content as rich_content
from tenants.rich import templates as wa_templates
from tenants.rich.content import Card, RichRequest, Suggestion, TemplateChoice
from tenants.templates import templates

FIELDS = (
    "numbers",
    "tags",
    "mode",
    "body",
    "template_id",
    "variables",
    "sender",
    "channel",
    "when",
    "send_at",
    "campaign_name",
    "idempotency_key",
    "subject",
    "media_url",
    "track_links",
    "wa_template",
    "wa_parameters",
    "card_title",
    "card_description",
    "card_media_url",
    "card_suggestions",
    "card_fallback",
)
# Up to ten files of MEDIA_FETCH_MAX_BYTES each, and the rest of the form.
MAX_UPLOAD = 52 * 1024 * 1024
_SPLIT = re.compile(r"[\n,;]+")
_PREFILL = re.compile(r"\+?[0-9 ()-]{3,32}")


def _variables(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name.strip()):
            raise ValidationFailed({"variables": f"Line {line_no}: write name=value."})
        values[name.strip()] = value.strip()
    return values


def _suggestions(text: str) -> tuple[Suggestion, ...]:
    """One suggestion per line: `text` (a reply), `text | https://...` (open a URL) or
    `text | +61...` (dial)."""
    found = []
    for line in text.splitlines():
        label, _, value = (part.strip() for part in line.partition("|"))
        if not label:
            continue
        kind = (
            "url"
            if value.startswith(("http://", "https://"))
            else "dial"
            if value.startswith("+")
            else "reply"
        )
        found.append(Suggestion(kind, label, value))
    return tuple(found)


def _rich_from_form(mode: str, form: dict[str, str]) -> RichRequest | None:
    """A WhatsApp template (chosen as "name|language", parameters as n=value lines) or an
    RCS card from the send form."""
    if mode == "whatsapp_template":
        name, _, language = form["wa_template"].partition("|")
        if not name:
            raise ValidationFailed({"template": "Choose an approved WhatsApp template."})
        parameters = _variables(form["wa_parameters"]) if form["wa_parameters"].strip() else {}
        return RichRequest(template=TemplateChoice(name, language, parameters))
    if mode == "card":
        return RichRequest(
            card=Card(
                form["card_title"].strip(),
                form["card_description"].strip(),
                form["card_media_url"].strip(),
                _suggestions(form["card_suggestions"]),
                form["card_fallback"].strip(),
            )
        )
    return None


async def _options(request: Request[Any, Any, Any]) -> dict[str, Any]:
    account = current_grants(request).account
    lists = await contacts.contact_lists(account.id)
    tz = await sending.account_timezone(account.id)
    whatsapp = providers.integration_id_of(await providers.provider_for(account.id, "whatsapp"))
    return {
        "wa_templates": await wa_templates.usable_templates(whatsapp) if whatsapp else [],
        "templates": await templates.usable_templates(account.id, status="approved"),
        "lists": lists,
        "senders": await numbers.usable_senders(account.id),
        "default_sender": await numbers.default_sender(account.id),
        "channels": CHANNELS,
        "timezone": str(tz),
    }


def _values(raw: dict[str, Any], name: str) -> list[Any]:
    value = raw.get(name)
    return value if isinstance(value, list) else [] if value is None else [value]


async def _media_from_form(
    raw: dict[str, Any], form: dict[str, str], account_id: int
) -> tuple[list[int], list[NewMedia]]:
    """The media already attached (ids kept in the form), the files uploaded now and the
    files at the URLs typed (fetched server side); refusals name media or media_url."""
    ids = [n for v in _values(raw, "media_id") if (n := parse_id(v)) is not None][:20]
    new: list[NewMedia] = []
    for upload in _values(raw, "media_file"):
        if isinstance(upload, UploadFile) and upload.filename:
            new.append(store.read_file(await upload.read(), upload.filename, field="media"))
    for url in (u.strip() for u in form["media_url"].splitlines()):
        if url:
            new.append(await fetch_media(url, field="media_url"))
    await store.owned_media(account_id, ids)
    return ids, new


async def _request_from_form(
    request: Request[Any, Any, Any],
    form: dict[str, str],
    list_ids: list[int],
    media: tuple[list[int], list[NewMedia]] = ([], []),
) -> SendRequest:
    grants = current_grants(request)
    account = grants.account
    permissions = send_permissions(grants)
    errors: dict[str, str] = {}
    mode = form["mode"] or ("text" if "messages.send" in permissions else "template")
    body: str | None = None
    template_id: int | None = None
    rich: RichRequest | None = None
    if mode == "text":
        body = form["body"].replace("\r\n", "\n")
    elif mode in ("whatsapp_template", "card"):
        try:
            rich = _rich_from_form(mode, form)
        except ValidationFailed as exc:
            errors.update(
                {k if k != "variables" else "wa_parameters": v for k, v in exc.errors.items()}
            )
    else:
        try:
            template_id = int(form["template_id"])
        except ValueError:
            errors["template_id"] = "Choose an approved template."
    send_at = None
    if form["when"] == "later":
        try:
            local = datetime.fromisoformat(form["send_at"])
            send_at = local.replace(tzinfo=await sending.account_timezone(account.id))
        except ValueError:
            errors["send_at"] = "Choose the date and time to send."
        else:
            # A time already gone would send at once without a word; the person meant later.
            if send_at < now() - PAST_GRACE:
                errors["send_at"] = "That time has passed: choose a later one, or choose Now."
    try:
        variables = _variables(form["variables"])
    except ValidationFailed as exc:
        errors.update(exc.errors)
        variables = {}
    if errors:
        raise ValidationFailed(errors)
    return SendRequest(
        account_id=account.id,
        numbers=[n.strip() for n in _SPLIT.split(form["numbers"]) if n.strip()],
        list_ids=list_ids,
        tags=[t.strip() for t in form["tags"].split(",") if t.strip()],
        body=body,
        template_id=template_id,
        variables=variables,
        sender=form["sender"].strip(),
        channel=form["channel"] or "sms",
        send_at=send_at,
        campaign_name=form["campaign_name"].strip() or None,
        # The form carries a key made when it was shown: a double click sends once.
        idempotency_key=form["idempotency_key"][:64] or None,
        permissions=permissions,
        media_ids=media[0],
        new_media=media[1],
        subject=form["subject"].strip(),
        track_links=form["track_links"] == "1",
        rich=rich,
    )


async def _windows(
    request: Request[Any, Any, Any], req: SendRequest, result: SendResult | streamed.Preview
) -> list[Any]:
    """For a WhatsApp send: each recipient and whether free text may reach them now."""
    if req.channel != "whatsapp":
        return []
    sender = req.sender or await numbers.default_sender(req.account_id)
    phones = result.accepted_phones(200) + [
        to for to, reason in result.skipped if reason == rich_content.OUTSIDE_WINDOW
    ]
    return await rich_content.whatsapp_sender_window(sender, phones[:200])


def _to_campaign(request: HTMXRequest, campaign_id: int) -> Response[str] | Redirect:
    """A campaign to lists is accepted in the background: its page shows the progress."""
    path = f"/campaigns/{campaign_id}"
    if request.htmx:
        return Response(content="", status_code=201, headers={"HX-Redirect": path})
    return Redirect(path=path, status_code=303)


class SendController(Controller):
    path = "/send"

    @get("/", opt={"permission": "messages.send_template"}, name="send")
    async def page(self, request: HTMXRequest, to: FromQuery[str] = "") -> Any:
        grants = current_grants(request)
        form = {k: "" for k in FIELDS}
        form.update(
            # "Send a message" on a contact's page names the number; anything else is dropped.
            numbers=to.strip() if _PREFILL.fullmatch(to.strip()) else "",
            channel="sms",
            when="now",
            mode="text" if grants.decide("messages.send") else "template",
            idempotency_key=uuid.uuid4().hex,
        )
        return await render(
            request,
            "send.html.jinja",
            {
                **(await _options(request)),
                "form": form,
                "list_ids": [],
                "attached": [],
                "errors": {},
                "c": await composition_for(request, ""),
            },
        )

    @post(
        "/",
        opt={"permission": "messages.send_template"},
        status_code=200,
        request_max_body_size=MAX_UPLOAD,
    )
    async def submit(self, request: HTMXRequest, data: Annotated[dict[str, Any], MULTIPART]) -> Any:
        raw = data or {}
        form = {
            k: str(raw.get(k) or "") if not isinstance(raw.get(k), list) else "" for k in FIELDS
        }
        list_values = raw.get("list_ids") or []
        if not isinstance(list_values, list):
            list_values = [list_values]
        list_ids = [n for v in list_values if (n := parse_id(v)) is not None]
        action = str(raw.get("action") or "preview")
        ctx: dict[str, Any] = {
            **(await _options(request)),
            "form": form,
            "list_ids": list_ids,
            "attached": [],
            "errors": {},
            "c": await composition_for(
                request,
                form["body"],
                track_links=form["track_links"] == "1",
                channel=form["channel"] if form["channel"] in CHANNELS else "sms",
            ),
        }
        status = 200
        account_id = current_grants(request).account.id
        try:
            media = await _media_from_form(raw, form, account_id)
            ctx["attached"] = await store.owned_media(account_id, media[0])
            req = await _request_from_form(request, form, list_ids, media)
            await refuse_unreachable(req, actor=request_actor(request))
            result: SendResult | streamed.Preview
            if streamed.is_streamed(req):
                if action == "send":
                    started = await start_list_campaign(req, request_actor(request))
                    return _to_campaign(request, started.campaign_id)
                # Counted a chunk at a time: a list of a million is never held at once.
                result = await streamed.preview(req)
            else:
                result = await sending.accept_send(
                    req, actor=request_actor(request), dry_run=action != "send"
                )
            if not result.dry_run:
                status = 201
                form["idempotency_key"] = uuid.uuid4().hex
            elif media[1]:
                # Previewed: keep the files so the send (and its preview) need no re-upload.
                ctx["attached"] += await mms_media.keep_uploads(account_id, media[1])
                form["media_url"] = ""
            ctx["result"] = result
            ctx["windows"] = await _windows(request, req, result)
        except ValidationFailed as exc:
            ctx["errors"] = exc.errors
            status = 422
        except Conflict as exc:
            ctx["errors"] = {"form": exc.message}
            status = 409
        ctx["attached_shown"] = ShownMedia(files=ctx["attached"])
        return await render(request, "send.html.jinja", ctx, block="send_form", status_code=status)
