"""The live message composer: POST /composer/count answers the counter fragment that the
template editor and the send page swap in as the user types; GET /composer is the same
tool as a plain page that works without JavaScript."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.plugins.htmx import HTMXRequest

from portal.auth import current_grants
from portal.forms import FORM, digits
from portal.pages import render
from tenants.links import links
from tenants.messaging.messages import CHANNELS
from tenants.rich.content import channel_composition
from tenants.templates import composer
from tenants.templates.composer import Composition

SAMPLE_PREFIX = "sample_"
# The composer macro names its textarea and counter after this id; it is echoed into
# attributes, so only a plain HTML id is accepted.
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,40}$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
KNOWN_MAX = 200
# A pasted novel would cost the server more than it is worth to count live.
TEXT_MAX = 10_000


async def composition_for(
    request: HTMXRequest,
    text: str,
    samples: dict[str, str] | None = None,
    *,
    known_fields: list[str] | None = None,
    track_links: bool = False,
    channel: str = "sms",
) -> Composition:
    """The composer figures for `text` in the caller's working account.

    `known_fields` saves looking up the account's custom fields again while someone types
    (the composer posts back the list its page was rendered with).
    """
    account_id = current_grants(request).account.id
    if known_fields is None:
        known_fields = await composer.merge_field_names(account_id)
    rate, cost_label = await composer.sms_rate(account_id)
    link_base = await links.short_link_base(account_id) if track_links else None
    # Longer text is cut for counting and the counter says so (`truncated`).
    counted = composer.compose(
        text[:TEXT_MAX],
        known_fields=known_fields,
        samples=samples,
        credits_per_segment=rate,
        cost_label=cost_label,
        link_base=link_base,
    )
    return await channel_composition(account_id, counted, channel)


def known_fields_from(data: dict[str, str]) -> list[str] | None:
    """The field names the page was rendered with; None (look them up) if absent or odd.

    Only the unknown-field warning depends on this list, so a client sending its own
    list can only change what it is warned about.
    """
    raw = data.get("composer_known")
    if raw is None:
        return None
    names = [n for n in raw.split(",") if n]
    if len(names) > KNOWN_MAX or not all(_FIELD_RE.match(n) for n in names):
        return None
    return names


def samples_from(data: dict[str, str]) -> dict[str, str]:
    """Sample merge-field values posted by the counter (`sample_<field>` inputs)."""
    return {k[len(SAMPLE_PREFIX) :]: v for k, v in data.items() if k.startswith(SAMPLE_PREFIX)}


class ComposerController(Controller):
    path = "/composer"

    @get("/", opt={"permission": "account.view"}, name="composer")
    async def page(self, request: HTMXRequest) -> Any:
        return await render(
            request,
            "composer.html.jinja",
            {"c": await composition_for(request, ""), "composer_id": "body", "truncated": False},
        )

    @post("/count", opt={"permission": "account.view"}, status_code=200)
    async def count(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        field = data.get("composer_field") or "body"
        composer_id = data.get("composer_id") or "body"
        if not _ID_RE.match(field):
            field = "body"
        if not _ID_RE.match(composer_id):
            composer_id = "body"
        maxlength = data.get("composer_maxlength") or ""
        text = (data.get(field) or "").replace("\r\n", "\n")
        which = data.get("composer_replace") or ""
        replaced = composer.apply_replacement(text, which) if which else text
        channel = data.get("channel") or "sms"
        c = await composition_for(
            request,
            replaced,
            samples_from(data),
            known_fields=known_fields_from(data),
            track_links=data.get("track_links") == "1",
            channel=channel if channel in CHANNELS else "sms",
        )
        return await render(
            request,
            "composer.html.jinja",
            {
                "c": c,
                "composer_id": composer_id,
                "composer_field": field,
                # The textarea is swapped out of band only when its text changed here.
                "replaced": replaced != text,
                "truncated": len(replaced) > TEXT_MAX,
                "composer_maxlength": int(maxlength[:5]) if digits(maxlength[:5]) else 1600,
            },
            block="counter",
        )
