"""A send through a real provider integration end to end: the operator's Twilio integration
is the platform's SMS provider, the worker submits through Twilio's Messages API (respx),
and Twilio's signed status and inbound callbacks come back to the integration's URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs

import httpx
import respx

from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.messaging.tables import Message
from tenants.numbers import numbers
from tenants.providers import integrations as providers
from tests.factories import wait_until

SID = "AC" + "c" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{SID}"


def twilio_signature(url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


@respx.mock
async def test_a_send_goes_out_through_twilio_and_its_signed_callbacks_come_back(
    client, world, worker, make_key
):
    sent = respx.post(f"{TWILIO}/Messages.json").mock(
        side_effect=lambda request: httpx.Response(
            201, json={"sid": "SM" + "9" * 32, "status": "queued"}
        )
    )
    created = await providers.create_integration(
        SYSTEM,
        account_id=world.accounts["platform"],
        kind="twilio",
        name="Platform Twilio",
        values={"account_sid": SID, "auth_token": TOKEN},
    )
    integration = created.integration
    await providers.set_channel_default(
        SYSTEM, account_id=world.accounts["platform"], channel="sms", choice=str(integration.id)
    )
    alpha = world.accounts["alpha"]
    await ledger.adjust(alpha, 100, reason="test credits", actor=SYSTEM)
    # Alpha may send only under its own approved sender ID.
    sender_id = await numbers.register_sender_id(
        actor=SYSTEM, within_account_id=alpha, account_id=alpha, value="Alpha"
    )
    await numbers.decide_sender_id(actor=SYSTEM, sender_id_id=sender_id.id, status="approved")
    headers = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/messages",
        json={"to": ["+61400000001"], "body": "Hello from Twilio", "sender": "Alpha"},
        headers={**headers, "Idempotency-Key": "twilio-1"},
    )
    assert r.status_code == 202, r.text
    message_id = r.json()["accepted"][0]["message_id"]

    async def sent_row() -> dict | None:
        row = (
            await Message.select(Message.status, Message.provider_ref)
            .where(Message.id == message_id)
            .first()
        )
        return row if row["status"] == "sent" else None

    row = await wait_until(sent_row, 15, what=f"message {message_id} to be sent")
    assert row["status"] == "sent" and row["provider_ref"] == "SM" + "9" * 32
    form = parse_qs(sent.calls[0].request.content.decode())
    assert form["Body"] == ["Hello from Twilio"] and form["From"] == ["Alpha"]
    callback = form["StatusCallback"][0]
    assert callback.endswith(f"?ref={message_id}")
    path = callback.removeprefix("http://testserver.local")
    params = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered", "AccountSid": SID}
    forged = await client.post(path, data=params, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert forged.status_code == 403
    wrong = await client.post(
        path.replace(f"/{integration.id}/", f"/{integration.id}/x"), data=params
    )
    assert wrong.status_code == 404
    ok = await client.post(
        path, data=params, headers={"X-Twilio-Signature": twilio_signature(callback, params)}
    )
    assert ok.status_code == 200
    read = await client.get(f"/api/v1/messages/{message_id}", headers=headers)
    assert read.json()["status"] == "delivered"
    # an inbound message to Alpha's Twilio number lands in Alpha's inbox (the one inbound
    # road: a message to a number nobody holds is routed nowhere)
    await numbers.add_number(
        actor=SYSTEM, owner_account_id=alpha, number="+61480000055", kind="long_code"
    )
    inbound_url = callback.split("/status")[0] + "/inbound"
    mo = {
        "MessageSid": "SMin1",
        "From": "+61400000001",
        "To": "+61480000055",
        "Body": "Thanks!",
        "AccountSid": SID,
    }
    answer = await client.post(
        inbound_url.removeprefix("http://testserver.local"),
        data=mo,
        headers={"X-Twilio-Signature": twilio_signature(inbound_url, mo)},
    )
    assert answer.status_code == 200 and "<Response>" in answer.text
    inbound = await Message.select().where(Message.direction == "in").first()
    assert inbound["account_id"] == alpha and inbound["body"] == "Thanks!"
