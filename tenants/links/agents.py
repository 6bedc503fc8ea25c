"""The coarse class of a user agent a click is counted under ("iPhone Safari",
"Android Chrome", "bot"): enough to tell phones and preview fetchers apart, too coarse to
single anybody out. The header itself is never stored."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Link-preview fetchers of messengers and social apps, crawlers and HTTP libraries: they
# open a link without a person tapping it. iMessage previews as facebookexternalhit.
_BOTS = re.compile(
    r"bot\b|bot/|crawler|spider|preview|facebookexternalhit|facebot|whatsapp|telegram|"
    r"slack|discord|skypeuri|embedly|vkshare|pinterest|linkedin|curl/|wget/|python-|httpx|"
    r"go-http-client|okhttp|java/|headless",
    re.IGNORECASE,
)
# Order matters: Edge and Samsung Internet also say Chrome; Chrome also says Safari.
_BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/|AppleWebKit/")),
)
_DEVICES = (
    ("iPhone", re.compile(r"iPhone|iPod")),
    ("iPad", re.compile(r"iPad")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("Mac", re.compile(r"Macintosh|Mac OS X")),
    ("Linux", re.compile(r"Linux|X11|CrOS")),
)


@dataclass(frozen=True)
class AgentClass:
    label: str
    bot: bool


def classify_agent(user_agent: str) -> AgentClass:
    """ "iPhone Safari", "Android Chrome", "Windows Edge", "bot" or "other"."""
    ua = (user_agent or "")[:512]
    if not ua.strip() or _BOTS.search(ua):
        return AgentClass("bot", True)
    device = next((name for name, pattern in _DEVICES if pattern.search(ua)), "")
    browser = next((name for name, pattern in _BROWSERS if pattern.search(ua)), "")
    label = " ".join(part for part in (device, browser) if part)
    return AgentClass(label or "other", False)
