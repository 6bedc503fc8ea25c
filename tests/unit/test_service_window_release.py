"""Free WhatsApp text is checked against the customer service window again when it is due,
not only when it was accepted: a send scheduled inside the 24 hours but released after
they ended is refused with its reason (and refunded), never handed to the provider."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.gateways import gateway_for
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging import accept as sending
from tenants.messaging import inbound, outbox
from tenants.messaging.tables import Message
from tenants.numbers import numbers
from tenants.providers.codes import explain_error
from tests.factories import fund
from tests.unit.test_recurring import clock  # noqa: F401 (the fixture)

JANE = "+61412345601"
NUMBER = "+61480000077"


async def scheduled_text(account: int, at: datetime) -> int:
    result = await sending.accept_send(
        sending.SendRequest(
            account_id=account,
            numbers=[JANE],
            body="Your table is ready",
            channel="whatsapp",
            sender=NUMBER,
            send_at=at,
            permissions=sending.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    assert [a.to for a in result.accepted] == [JANE], result.skipped
    return result.accepted[0].message_id


async def release(simulator) -> outbox.ChunkOutcome:
    (chunk,) = await outbox.release_due_batches()
    return await outbox.submit_chunk(chunk, gateway_for)


async def test_free_whatsapp_text_released_after_the_window_closed_is_not_sent(
    world,
    simulator,
    clock,  # noqa: F811 (the imported fixture)
):
    account = world.accounts["alpha"]
    await fund(account, 10)
    await numbers.add_number(
        actor=SYSTEM, owner_account_id=account, number=NUMBER, kind="long_code"
    )
    wrote = datetime.now(UTC).replace(microsecond=0)
    clock.set(wrote)
    await inbound.route_inbound("wa-in-1", JANE, NUMBER, "Is my table ready?", "whatsapp")
    inside = await scheduled_text(account, wrote + timedelta(hours=1))
    late = await scheduled_text(account, wrote + timedelta(hours=23))
    balance = await ledger.balance(account)
    # Due an hour after Jane wrote: inside her window, it goes.
    clock.set(wrote + timedelta(hours=1))
    assert (await release(simulator)).sent == 1
    # Accepted inside the window, due after it closed (the release ran late): refused.
    clock.set(wrote + timedelta(hours=24, minutes=5))
    outcome = await release(simulator)
    assert (outcome.sent, outcome.failed) == (0, 1)
    rows = {r["id"]: r for r in await Message.select().where(Message.id.is_in([inside, late]))}
    assert rows[inside]["status"] in ("sent", "delivered")
    assert (rows[late]["status"], rows[late]["error_code"]) == (
        "enqueued_failed",
        "OUTSIDE_SERVICE_WINDOW",
    )
    assert "24 hours" in explain_error(rows[late]["error_code"])
    assert await ledger.balance(account) == balance + rows[late]["cost"]
    carried = [m for m in simulator.outbox() if m["to"] == JANE]
    assert [m["body"] for m in carried] == ["Your table is ready"]
