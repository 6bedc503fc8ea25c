"""The dashboard's counters poll (htmx) while the account's messages are still enqueued or
sent, answer only the counters to the poll, and stop once every message is final."""

from __future__ import annotations

from datetime import UTC, datetime

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging import messages
from tenants.messaging.tables import Message
from tests.conftest import login
from tests.factories import HX

POLLING = 'data-live="polling"'


async def test_the_counters_poll_until_every_message_is_final(client, world):
    await ledger.adjust(world.accounts["alpha"], 100, reason="test credits", actor=SYSTEM)
    await login(client, world.users["Owner"])
    quiet = await client.get("/")
    assert quiet.status_code == 200 and 'id="dashboard-stats"' in quiet.text
    assert POLLING not in quiet.text  # nothing in flight: no polling at all
    csrf = await login(client, world.users["Sender"])
    form = {
        "_csrf_token": csrf,
        "numbers": "+61400000001\n+61400000002",
        "mode": "text",
        "body": "Hello",
        "channel": "sms",
        "when": "now",
        "action": "send",
    }
    assert (await client.post("/send", data=form, headers=HX)).status_code == 201
    await login(client, world.users["Owner"])
    page = await client.get("/")
    stats = page.text.split('id="dashboard-stats"')[1].split(">")[0]
    assert POLLING in stats and 'hx-get="/"' in stats
    # The poll gets the counters alone, not the page.
    poll = await client.get("/", headers=HX)
    assert poll.text.lstrip().startswith('<div class="stats" id="dashboard-stats"')
    assert "<html" not in poll.text and 'id="activity"' not in poll.text
    assert POLLING in poll.text

    ids = [r["id"] for r in await Message.select(Message.id)]
    at = datetime.now(UTC)
    await messages.ingest_status_reports(
        [messages.StatusReport(i, "delivered", at, None, f"p{i}", f"e{i}") for i in ids]
    )
    final = await client.get("/", headers=HX)
    assert POLLING not in final.text and 'id="message-count">2<' in final.text
