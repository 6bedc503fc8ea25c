"""Opt-out and opt-in replies are marked as such in the messages log and on the message
page (the inbound routing's record of the compliance word), not shown as plain incoming
rows."""

from __future__ import annotations

import re

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tests.conftest import login

SECRET = {"X-Simulator-Secret": "simulator-secret"}


async def test_stop_and_start_replies_are_marked_in_the_log_and_on_the_message(client, demo):
    await ledger.adjust(demo["melbourne"], 100, reason="test credits", actor=SYSTEM)
    ids = {}
    for n, body in enumerate(("STOP", "START", "Hello there")):
        r = await client.post(
            "/hooks/simulator/inbound",
            json={"id": f"mark-{n}", "from": "+61412345678", "to": "+61480000001", "body": body},
            headers=SECRET,
        )
        assert r.status_code == 202, r.text
        ids[body] = r.json()["message_id"]
    await login(client, "admin@melbourne.test")
    log = await client.get("/messages")
    assert log.status_code == 200
    assert log.text.count('data-consent="opt_out">Opt-out</span>') == 1
    assert log.text.count('data-consent="opt_in">Opt-in</span>') == 1
    page = await client.get(f"/messages/{ids['STOP']}")
    assert re.search(r'id="message-status">[^<]*</span> <span class="badge danger"', page.text)
    plain = await client.get(f"/messages/{ids['Hello there']}")
    assert "data-consent" not in plain.text
