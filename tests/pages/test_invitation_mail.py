"""With SMTP configured, an invitation is emailed by the Dramatiq actor (stdlib smtplib) to
a small SMTP server the test runs on loopback; without it, only the link is shown."""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes

import pytest

from tests.conftest import join_queues, login
from tests.factories import HX, wait_until

LINK_RE = re.compile(r'id="invite-link" readonly value="([^"]+)"')


class FakeSmtpServer:
    """Just enough SMTP (EHLO, MAIL, RCPT, DATA, QUIT) to receive messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> FakeSmtpServer:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write((line + "\r\n").encode())
            await writer.drain()

        await reply("220 fake.smtp ready")
        sender, recipients = "", []
        while line := await reader.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await reply("250 fake.smtp")
            elif verb == "MAIL":
                sender = command.split(":", 1)[1].strip(" <>")
                await reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                await reply("250 OK")
            elif verb == "DATA":
                await reply("354 go on")
                data = b""
                while (chunk := await reader.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.messages.append((sender, recipients, data))
                await reply("250 queued")
            elif verb == "QUIT":
                await reply("221 bye")
                break
            else:
                await reply("250 OK")
        writer.close()


@pytest.fixture
async def smtp(settings_env):
    server = await FakeSmtpServer().start()
    settings_env(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=server.port,
        SMTP_SECURITY="none",
        SMTP_FROM="portal@northwind.test",
    )
    yield server
    await server.stop()


async def test_invitation_is_emailed_when_smtp_is_configured(client, world, smtp, worker):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/users/invitations",
        data={"_csrf_token": token, "email": "mailme@example.test", "role": "Viewer"},
        headers=HX,
    )
    assert r.status_code == 201 and "is being emailed" in r.text
    link = LINK_RE.search(r.text).group(1)
    await asyncio.to_thread(join_queues, "mail")
    # the Redis broker's worker delivers on its own schedule
    await wait_until(lambda: smtp.messages, 10, what="the invitation email")
    assert len(smtp.messages) == 1
    sender, recipients, data = smtp.messages[0]
    assert sender == "portal@northwind.test" and recipients == ["mailme@example.test"]
    message = message_from_bytes(data)
    assert message["Subject"] == "You are invited to Alpha Master"
    assert link in message.get_payload(decode=True).decode()


async def test_without_smtp_only_the_link_is_shown(client, world, settings_env):
    settings_env(SMTP_HOST=None)
    token = await login(client, world.users["Owner"])
    page = await client.get("/users")
    assert "No mail server is configured" in page.text
    r = await client.post(
        "/users/invitations",
        data={"_csrf_token": token, "email": "linkonly@example.test", "role": "Viewer"},
        headers=HX,
    )
    assert r.status_code == 201 and "is being emailed" not in r.text
    assert LINK_RE.search(r.text)


async def test_actor_skips_an_invitation_no_longer_pending(world, smtp):
    from tenants.access import invitations
    from tenants.access import members as people
    from tenants.audit.record import Actor

    owner = world.users["Owner"]
    grants = await people.member_grants(world.accounts["alpha"], world.user_ids[owner])
    actor = Actor(user_id=world.user_ids[owner], label=owner)
    created = await invitations.invite_user(actor, grants, email="gone@example.test", role="Viewer")
    await invitations.revoke_invitation(actor, grants, created.id)
    # What the actor calls: nothing is sent for a withdrawn invitation.
    sent = await invitations.email_invitation(created.id, "http://testserver.local/invite/x")
    assert sent is False and smtp.messages == []
