"""Never sent twice, through the outbox against the provider emulators: a retry is
recognised by the message's own reference at the provider, never by its text, so a lost
answer does not submit again and two messages with the same text both go out."""

from __future__ import annotations

import httpx

from tasks.gateways.messagemedia import MessageMediaGateway
from tasks.gateways.twilio import TwilioGateway
from tenants.messaging import messages
from tenants.messaging import outbox as dispatch
from tenants.messaging.tables import Message
from tests.emulators.conftest import MM_KEY, MM_SECRET, TWILIO_SID, TWILIO_TOKEN
from tests.emulators.test_emulators import config
from tests.unit.test_delivery import make_outbox, status_of


class Flaky(httpx.AsyncBaseTransport):
    """The emulator behind a network that can fail: `down` refuses connections (nothing
    reaches the provider), `lose_answers` lets requests through and drops the answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.lose_answers = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and self.lose_answers:
            self.lose_answers -= 1
            await response.aread()
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response


def gateway_for(gateway):
    async def get(provider: str):
        return gateway

    return get


def twilio(emu, flaky: Flaky) -> TwilioGateway:
    return TwilioGateway(
        config("twilio", {"account_sid": TWILIO_SID}, {"auth_token": TWILIO_TOKEN}),
        transport=flaky,
    )


async def test_twilio_two_messages_with_the_same_text_to_one_number_both_go(world, twilio_emu):
    flaky = Flaky(twilio_emu.transport())
    get = gateway_for(twilio(twilio_emu, flaky))
    account = world.accounts["alpha"]
    _, (first, second) = await make_outbox(account, ["+61400000001", "+61400000001"])
    assert (await dispatch.submit_chunk([first], get)).sent == 1
    # The second's first attempt never reached Twilio; its retry must not take the first
    # message (same To, From and Body) for its own.
    flaky.down = True
    assert (await dispatch.submit_chunk([second], get)).transient
    flaky.down = False
    outcome = await dispatch.submit_chunk([second], get)
    assert outcome.sent == 1 and outcome.reconciled == 0
    assert len(twilio_emu.accepted) == 2
    assert {await status_of(first), await status_of(second)} == {"sent"}
    refs = await Message.select(Message.provider_ref).where(Message.id.is_in([first, second]))
    assert len({r["provider_ref"] for r in refs}) == 2


async def test_twilio_retry_after_a_lost_answer_finds_the_message_by_its_sid(
    world, twilio_emu, catcher
):
    flaky = Flaky(twilio_emu.transport())
    gateway = twilio(twilio_emu, flaky)
    get = gateway_for(gateway)
    account = world.accounts["alpha"]
    _, (message_id,) = await make_outbox(account, ["+61400000002"])
    flaky.lose_answers = 1
    assert (await dispatch.submit_chunk([message_id], get)).transient
    assert len(twilio_emu.accepted) == 1 and await status_of(message_id) == "enqueued"
    # Twilio's callback names the message by its own reference (?ref=<id>) and its SID.
    (created,) = twilio_emu.accepted
    assert created.status_callback.endswith(f"?ref={message_id}")
    await messages.store_provider_refs({message_id: created.sid})
    outcome = await dispatch.submit_chunk([message_id], get)
    assert outcome.reconciled == 1 and outcome.sent == 0
    assert len(twilio_emu.accepted) == 1
    assert await status_of(message_id) == "sent"


async def test_messagemedia_retry_finds_an_accepted_message_by_its_own_reference(
    world, messagemedia_emu, catcher
):
    flaky = Flaky(messagemedia_emu.transport())
    gateway = MessageMediaGateway(
        config("messagemedia", {}, {"api_key": MM_KEY, "api_secret": MM_SECRET}),
        transport=flaky,
    )
    get = gateway_for(gateway)
    account = world.accounts["alpha"]
    _, (reported, named, other) = await make_outbox(account, ["+61400000003"] * 3)
    for message_id in (reported, named):
        flaky.lose_answers = 1
        assert (await dispatch.submit_chunk([message_id], get)).transient
    first, second = messagemedia_emu.accepted
    assert first.item["metadata"] == {"portal_message_id": str(reported)}
    # One has an unconfirmed `submitted` report carrying our id in its metadata; the other
    # has no report yet, but a callback named its MessageMedia id (stored as its ref).
    await messagemedia_emu.post_status(catcher, first.message_id, "submitted")
    await messages.store_provider_refs({named: second.message_id})
    outcome = await dispatch.submit_chunk([reported, named, other], get)
    assert outcome.reconciled == 2 and outcome.sent == 1
    assert len(messagemedia_emu.accepted) == 3
    assert {await status_of(m) for m in (reported, named, other)} == {"sent"}
