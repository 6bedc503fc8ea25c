"""Tracked short links: finding the URLs in a message body, replacing each by a short link
with a code of its own per recipient, following a code to its URL (and counting the
click), and the click figures of a send and of a message."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from tenants.accounts.tree import AccountView, timezones
from tenants.branding.branding import effective_branding
from tenants.clock import now
from tenants.db import as_datetime, chunked, is_sqlite, placeholders, run_sql
from tenants.links.agents import classify_agent
from tenants.links.tables import CODE_LENGTH
from tenants.settings import get_settings

# Letters and digits only: a phone's linkifier never cuts a code short at - or _, and
# 62**12 (71 bits) codes cannot be guessed or walked.
CODE_ALPHABET = string.ascii_letters + string.digits
_CODE_RE = re.compile(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}")
# A URL runs from its scheme to the first space, angle bracket or quote...
_URL_RE = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)
# ...less the punctuation that ends the sentence around it ("see https://x.io/a.").
_TRAILING = ".,;:!?*"
_CLOSING = {")": "(", "]": "[", "}": "{"}
INSERT_ROWS = 500


# --- rewriting -------------------------------------------------------------------------


def _trim(url: str) -> str:
    while url:
        last = url[-1]
        if last in _TRAILING:
            url = url[:-1]
        elif last in _CLOSING and url.count(last) > url.count(_CLOSING[last]):
            url = url[:-1]  # "(see https://x.io/a)": the bracket belongs to the sentence
        else:
            break
    return url


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each http(s) URL in `text`, trailing punctuation left outside."""
    spans: list[tuple[int, int]] = []
    for match in _URL_RE.finditer(text):
        url = _trim(match.group())
        if "://" in url and not url.endswith("://"):
            spans.append((match.start(), match.start() + len(url)))
    return spans


def replace_urls(text: str, short_for: Callable[[str], str]) -> str:
    """`text` with each URL replaced by `short_for(url)`."""
    pieces: list[str] = []
    position = 0
    for start, end in url_spans(text):
        pieces += [text[position:start], short_for(text[start:end])]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class TrackedBody:
    """A body with its URLs replaced, and the (code, original URL) of each one."""

    body: str
    links: tuple[tuple[str, str], ...]


def track_urls(body: str, base: str) -> TrackedBody:
    """Replace every URL in `body` by `base` + a new code; a URL given twice in one
    message gets one code."""
    codes: dict[str, str] = {}

    def short_for(url: str) -> str:
        return base + codes.setdefault(url, new_code())

    tracked = replace_urls(body, short_for)
    return TrackedBody(tracked, tuple((code, url) for url, code in codes.items()))


def shape_of_short_link(base: str) -> str:
    """What a short link on `base` looks like, for counting before any code exists."""
    return base + "0" * CODE_LENGTH


def counted_as_short_links(text: str, base: str) -> str:
    """`text` with every URL as long as its short link will be (the composer counts it)."""
    shape = shape_of_short_link(base)
    return replace_urls(text, lambda _url: shape)


def link_path_prefix() -> str:
    return get_settings().links.path_prefix


async def short_link_base(account_id: int) -> str:
    """Where the account's short links point: `https://<link domain>/l/` when its branding
    (its own or inherited) names a link domain, else the platform's link base URL."""
    domain = (await effective_branding(account_id)).link_domain
    prefix = link_path_prefix()
    if domain:
        return f"https://{domain}/{prefix}/"
    return f"{get_settings().links.platform_base}/{prefix}/"


def expiry_from(sent_at: datetime) -> datetime | None:
    days = get_settings().links.expiry_days
    return sent_at + timedelta(days=days) if days else None


@dataclass(frozen=True)
class NewLink:
    message_id: int
    code: str
    url: str


async def write_links(
    account_id: int,
    batch_id: int,
    campaign_id: int | None,
    links: Sequence[NewLink],
    *,
    expires_at: datetime | None,
) -> None:
    """The short links of a send's messages, in bulk; joins the send's transaction."""
    stamp = now()
    rows = [
        (link.code, account_id, link.message_id, batch_id, campaign_id, link.url, expires_at, stamp)
        for link in links
    ]
    for part in chunked(rows, INSERT_ROWS):
        values = ", ".join(f"({placeholders(8)})" for _ in part)
        await run_sql(
            "INSERT INTO short_link (code, account_id, message_id, batch_id, campaign_id, url, "  # noqa: S608 (only placeholders are formatted in)
            f"expires_at, created_at) VALUES {values}",
            *(value for row in part for value in row),
        )


# --- following -------------------------------------------------------------------------


async def follow(code: str, user_agent: str, *, count: bool = True) -> str | None:
    """The URL behind `code`, with the click counted (one row, no address kept); None for
    a code that does not exist or has expired. One indexed lookup and one insert (none for
    `count=False`: a HEAD request, which link checkers send, is not a click)."""
    if not _CODE_RE.fullmatch(code or ""):
        return None
    rows = await run_sql(
        "SELECT id, url, expires_at, account_id, message_id, batch_id, campaign_id "
        "FROM short_link WHERE code = {}",
        code,
    )
    if not rows:
        return None
    link = rows[0]
    expires_at = as_datetime(link["expires_at"])
    stamp = now()
    if expires_at is not None and expires_at <= stamp:
        return None
    if not count:
        return str(link["url"])
    agent = classify_agent(user_agent)
    await run_sql(
        "INSERT INTO link_click (link_id, account_id, message_id, batch_id, campaign_id, agent, "
        "bot, at) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
        link["id"],
        link["account_id"],
        link["message_id"],
        link["batch_id"],
        link["campaign_id"],
        agent.label,
        int(agent.bot) if is_sqlite() else agent.bot,
        stamp,
    )
    return str(link["url"])


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkFigures:
    """One original URL of a send: how many recipients got it and how they clicked."""

    url: str
    recipients: int
    clicks: int
    unique_clicks: int
    bot_clicks: int


@dataclass(frozen=True)
class ClickFigures:
    messages: int  # messages of the send that carry a tracked link
    clicks: int  # requests by people (bots apart)
    unique_clicks: int  # recipients who clicked at least once
    bot_clicks: int  # link-preview fetchers and other bots
    links: list[LinkFigures]

    @property
    def click_rate(self) -> float:
        """Share of the recipients with a link who clicked, in per cent (one decimal)."""
        return round(100 * self.unique_clicks / self.messages, 1) if self.messages else 0.0


_PER_LINK = (
    "SELECT l.url AS url, COUNT(DISTINCT l.message_id) AS recipients, "
    "SUM(CASE WHEN c.id IS NOT NULL AND c.bot = {} THEN 1 ELSE 0 END) AS clicks, "
    "COUNT(DISTINCT CASE WHEN c.id IS NOT NULL AND c.bot = {} THEN c.message_id END) AS uniq, "
    "SUM(CASE WHEN c.bot = {} THEN 1 ELSE 0 END) AS bots "
    "FROM short_link l LEFT JOIN link_click c ON c.link_id = l.id "
    "WHERE l.account_id = {} AND l.batch_id = {} GROUP BY l.url ORDER BY clicks DESC, l.url"
)
# People's clicks and unique clickers, and bots' clicks, in one pass over the send's clicks.
_TOTALS = (
    "SELECT SUM(CASE WHEN bot = {} THEN 1 ELSE 0 END) AS clicks, "
    "COUNT(DISTINCT CASE WHEN bot = {} THEN message_id END) AS uniq, "
    "SUM(CASE WHEN bot = {} THEN 1 ELSE 0 END) AS bots "
    "FROM link_click WHERE account_id = {} AND batch_id = {}"
)


def _bool(value: bool) -> Any:
    return int(value) if is_sqlite() else value


async def batch_figures(account_id: int, batch_id: int) -> ClickFigures:
    """Clicks of one send (a campaign's batch): totals, unique recipients and per URL. A
    send without tracked links has no clicks either (a click is of a link): one query."""
    messages = await run_sql(
        "SELECT COUNT(DISTINCT message_id) AS n FROM short_link "
        "WHERE account_id = {} AND batch_id = {}",
        account_id,
        batch_id,
    )
    if not messages[0]["n"]:
        return ClickFigures(messages=0, clicks=0, unique_clicks=0, bot_clicks=0, links=[])
    per_link = await run_sql(
        _PER_LINK, _bool(False), _bool(False), _bool(True), account_id, batch_id
    )
    totals = (
        await run_sql(_TOTALS, _bool(False), _bool(False), _bool(True), account_id, batch_id)
    )[0]
    return ClickFigures(
        messages=int(messages[0]["n"] or 0),
        clicks=int(totals["clicks"] or 0),
        unique_clicks=int(totals["uniq"] or 0),
        bot_clicks=int(totals["bots"] or 0),
        links=[
            LinkFigures(
                r["url"], int(r["recipients"]), int(r["clicks"] or 0), int(r["uniq"] or 0),
                int(r["bots"] or 0),
            )
            for r in per_link
        ],
    )  # fmt: skip


@dataclass(frozen=True)
class MessageLink:
    """A tracked link of one message: its code, the original URL and its clicks."""

    code: str
    url: str
    clicks: int
    bot_clicks: int
    last_click_at: datetime | None
    expires_at: datetime | None


async def message_links(account_id: int, message_id: int) -> list[MessageLink]:
    rows = await run_sql(
        "SELECT l.code AS code, l.url AS url, l.expires_at AS expires_at, "
        "SUM(CASE WHEN c.id IS NOT NULL AND c.bot = {} THEN 1 ELSE 0 END) AS clicks, "
        "SUM(CASE WHEN c.bot = {} THEN 1 ELSE 0 END) AS bots, MAX(c.at) AS last_at "
        "FROM short_link l LEFT JOIN link_click c ON c.link_id = l.id "
        "WHERE l.account_id = {} AND l.message_id = {} GROUP BY l.id, l.code, l.url, l.expires_at "
        "ORDER BY l.id",
        _bool(False),
        _bool(True),
        account_id,
        message_id,
    )
    return [
        MessageLink(
            r["code"], r["url"], int(r["clicks"] or 0), int(r["bots"] or 0),
            as_datetime(r["last_at"]), as_datetime(r["expires_at"]),
        )
        for r in rows
    ]  # fmt: skip


CLICKS_CSV_HEADER = ("clicked_at", "message_id", "to", "url", "agent", "bot")
CSV_PAGE = 2000


async def batch_clicks_pages(account_id: int, batch_id: int) -> AsyncIterator[list[list[Any]]]:
    """Every click of a send, oldest first, a page at a time (for the CSV export)."""
    last = 0
    while True:
        rows = await run_sql(
            "SELECT c.id AS id, c.at AS at, c.message_id AS message_id, m.to_number AS to_number, "
            "l.url AS url, c.agent AS agent, c.bot AS bot FROM link_click c "
            "JOIN short_link l ON l.id = c.link_id JOIN message m ON m.id = c.message_id "
            "WHERE c.account_id = {} AND c.batch_id = {} AND c.id > {} ORDER BY c.id LIMIT {}",
            account_id,
            batch_id,
            last,
            CSV_PAGE,
        )
        if not rows:
            return
        last = rows[-1]["id"]
        yield [
            [
                (as_datetime(r["at"]) or now()).isoformat(), r["message_id"], r["to_number"],
                r["url"], r["agent"], "yes" if r["bot"] else "no",
            ]
            for r in rows
        ]  # fmt: skip


@dataclass(frozen=True)
class PeriodClicks:
    clicks: int  # by people
    bot_clicks: int


async def clicks_in_period(account: AccountView, start: date, end: date) -> PeriodClicks:
    """Clicks on the short links of the account and its subtree from `start` to `end`
    (days in the account's time zone, both included), for the usage report."""
    zone = (await timezones([account.id]))[account.id]
    since = datetime.combine(start, time(), zone)
    until = datetime.combine(end + timedelta(days=1), time(), zone)
    rows = await run_sql(
        "SELECT SUM(CASE WHEN bot = {} THEN 1 ELSE 0 END) AS people, "
        "SUM(CASE WHEN bot = {} THEN 1 ELSE 0 END) AS bots FROM link_click "
        "WHERE account_id IN (SELECT id FROM account WHERE path LIKE {}) AND at >= {} AND at < {}",
        _bool(False),
        _bool(True),
        account.path + "%",
        since,
        until,
    )
    return PeriodClicks(int(rows[0]["people"] or 0), int(rows[0]["bots"] or 0))


@dataclass(frozen=True)
class DayClicks:
    day: date  # in the account's time zone
    clicks: int  # by people
    bot_clicks: int


async def clicks_by_day(account: AccountView, start: date, end: date) -> list[DayClicks]:
    """`clicks_in_period` per day from `start` to `end` (days without clicks included): one
    statement, each click put in its local day by comparing it with the days' first
    instants (exact, as the period's own bounds are)."""
    zone = (await timezones([account.id]))[account.id]
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    bounds = [datetime.combine(d, time(), zone) for d in [*days, end + timedelta(days=1)]]
    arms = " ".join(f"WHEN at < {{}} THEN {n}" for n in range(len(days)))
    rows = await run_sql(
        f"SELECT CASE {arms} END AS n, "  # noqa: S608 (only placeholders and numbers are formatted in)
        "SUM(CASE WHEN bot = {} THEN 1 ELSE 0 END) AS people, "
        "SUM(CASE WHEN bot = {} THEN 1 ELSE 0 END) AS bots FROM link_click "
        "WHERE account_id IN (SELECT id FROM account WHERE path LIKE {}) AND at >= {} AND at < {} "
        "GROUP BY 1",
        *bounds[1:],
        _bool(False),
        _bool(True),
        account.path + "%",
        bounds[0],
        bounds[-1],
    )
    counts = {int(r["n"]): (int(r["people"] or 0), int(r["bots"] or 0)) for r in rows}
    return [DayClicks(d, *counts.get(n, (0, 0))) for n, d in enumerate(days)]
