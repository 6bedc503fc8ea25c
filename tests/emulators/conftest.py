"""Emulators bound to test credentials; pass `emu.transport()` to a gateway, and a
`Catcher` (or httpx.ASGITransport of the portal app) to the emulator's post_* methods."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from tests.emulators.messagemedia import MessageMediaEmulator
from tests.emulators.sinch_conversation import SinchConversationEmulator
from tests.emulators.sinch_sms import SinchSmsEmulator
from tests.emulators.twilio import TwilioEmulator

TWILIO_SID = "AC" + "a" * 32
TWILIO_TOKEN = "f" * 32
SINCH_PLAN = "jd63jf88477ll123ab4567cd89012ef3"
SINCH_TOKEN = "t" * 32
PROJECT = "123e4567-e89b-12d3-a456-426614174000"
APP = "01E8A5B6C7D8E9F0A1B2C3D4E5"
KEY_ID = "223e4567-e89b-12d3-a456-426614174000"
KEY_SECRET = "s3cret-value"
WEBHOOK_SECRET = "foo_secret1234"
MM_KEY = "KEY12345"
MM_SECRET = "SECRET123"


@dataclass
class Catcher(httpx.AsyncBaseTransport):
    """Stands for the portal's callback endpoint: keeps each request, answers 200."""

    requests: list[httpx.Request] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return httpx.Response(200)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture(autouse=True)
def _fast_retries(settings_env):
    settings_env(PROVIDER_RETRY_BACKOFF="0.001")


@pytest.fixture
def catcher() -> Catcher:
    return Catcher()


@pytest.fixture
def twilio_emu() -> TwilioEmulator:
    return TwilioEmulator(TWILIO_SID, TWILIO_TOKEN, friendly_name="Acme")


@pytest.fixture
def sinch_sms_emu() -> SinchSmsEmulator:
    return SinchSmsEmulator(SINCH_PLAN, SINCH_TOKEN, region="eu")


@pytest.fixture
def sinch_conversation_emu() -> SinchConversationEmulator:
    return SinchConversationEmulator(
        PROJECT,
        APP,
        KEY_ID,
        KEY_SECRET,
        region="us",
        webhook_secret=WEBHOOK_SECRET,
        override_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
def messagemedia_emu() -> MessageMediaEmulator:
    return MessageMediaEmulator(MM_KEY, MM_SECRET)
