"""TOTP: voluntary enrolment, the code step at sign-in, each code used once, and the master's
rule that makes it compulsory for Owners and Admins."""

from __future__ import annotations

import re
import time

import pyotp

from tenants.access import totp
from tenants.access.tables import UserSession
from tenants.audit.tables import AuditEvent
from tests.conftest import PASSWORD, csrf_token, login
from tests.factories import HX

SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')


async def password_step(client, email):
    token = await csrf_token(client)
    return await client.post(
        "/login",
        data={"_csrf_token": token, "email": email, "password": PASSWORD},
        follow_redirects=False,
    )


def code_for(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def test_person_turns_on_totp_and_then_needs_a_code(client, world):
    email = world.users["Sender"]
    token = await login(client, email)
    page = await client.get("/me/two-factor")
    assert page.status_code == 200 and "Set up two-factor" in page.text
    started = await client.post("/me/two-factor/start", data={"_csrf_token": token}, headers=HX)
    secret = SECRET_RE.search(started.text).group(1)
    assert "otpauth://totp/" in started.text
    wrong = await client.post(
        "/me/two-factor/confirm", data={"_csrf_token": token, "code": "000000"}, headers=HX
    )
    assert wrong.status_code == 422 and "not right" in wrong.text
    enrolment_code = code_for(secret)
    ok = await client.post(
        "/me/two-factor/confirm", data={"_csrf_token": token, "code": enrolment_code}, headers=HX
    )
    assert ok.status_code == 200 and "Two-factor sign-in is on" in ok.text
    # The seed is stored encrypted.
    row = await totp.UserTotp.select().first()
    assert secret not in str(row)

    client.cookies.clear()
    first = await password_step(client, email)
    assert first.status_code == 303 and first.headers["location"] == "/login/two-factor"
    assert await UserSession.count() == 1  # only the earlier session: no new one yet
    step = await client.get("/login/two-factor")
    assert step.status_code == 200 and "6-digit code" in step.text
    csrf = await csrf_token(client, "/login/two-factor")
    bad = await client.post("/login/two-factor", data={"_csrf_token": csrf, "code": "123456"})
    assert bad.status_code == 422 and "not right" in bad.text
    # The code used at enrolment cannot be replayed; the next one works.
    replay = await client.post(
        "/login/two-factor", data={"_csrf_token": csrf, "code": enrolment_code}
    )
    assert replay.status_code == 422
    good = await client.post(
        "/login/two-factor",
        data={"_csrf_token": csrf, "code": code_for(secret, 1)},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/"
    assert (await client.get("/")).status_code == 200
    assert await AuditEvent.count().where(AuditEvent.action == "user.totp_enable") == 1


async def test_challenge_dies_after_five_wrong_codes(client, world):
    email = world.users["Viewer"]
    enrolment = await totp.begin_enrolment(world.user_ids[email])
    await totp.confirm_enrolment(
        totp.audit.SYSTEM,
        world.user_ids[email],
        code_for(enrolment.secret),
        world.accounts["alpha"],
    )
    await password_step(client, email)
    csrf = await csrf_token(client, "/login/two-factor")
    for _ in range(totp.MAX_CHALLENGE_ATTEMPTS - 1):
        r = await client.post("/login/two-factor", data={"_csrf_token": csrf, "code": "000000"})
        assert r.status_code == 422
    last = await client.post(
        "/login/two-factor", data={"_csrf_token": csrf, "code": "000000"}, follow_redirects=False
    )
    assert last.status_code == 303 and last.headers["location"] == "/login"
    # Even the right code no longer opens this attempt.
    late = await client.post(
        "/login/two-factor",
        data={"_csrf_token": csrf, "code": code_for(enrolment.secret, 1)},
        follow_redirects=False,
    )
    assert late.status_code == 303 and late.headers["location"] == "/login"
    assert await UserSession.count() == 0


async def test_master_requires_totp_for_owners_and_admins(client, world):
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/security/two-factor-policy", data={"_csrf_token": token, "require": "on"}, headers=HX
    )
    assert r.status_code == 200 and "required" in r.text
    assert await totp.policy_requires(world.accounts["alpha"])
    client.cookies.clear()
    # An Admin without TOTP must enrol before getting a session.
    first = await password_step(client, world.users["Admin"])
    assert first.headers["location"] == "/login/two-factor"
    page = await client.get("/login/two-factor")
    assert "requires a second factor" in page.text
    secret = SECRET_RE.search(page.text).group(1)
    csrf = await csrf_token(client, "/login/two-factor")
    done = await client.post(
        "/login/two-factor",
        data={"_csrf_token": csrf, "code": code_for(secret)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert await totp.is_enrolled(world.user_ids[world.users["Admin"]])
    # The Admin cannot turn it off while the rule stands.
    token = await csrf_token(client, "/me/two-factor")
    off = await client.post(
        "/me/two-factor/disable",
        data={"_csrf_token": token, "code": code_for(secret, 1)},
        headers=HX,
    )
    assert off.status_code == 409 and "requires" in off.text
    # A Sender is not affected.
    client.cookies.clear()
    sender = await password_step(client, world.users["Sender"])
    assert sender.headers["location"] == "/"


async def test_policy_is_set_by_the_master_only(client, world):
    owner = world.users["Owner"]
    token = await login(client, "sender@alpha-one.test")
    assert (await client.get("/security")).status_code == 403
    await client.post("/logout", data={"_csrf_token": token})
    token = await login(client, owner)
    await client.post(
        "/switch-account",
        data={"_csrf_token": token, "account_id": str(world.accounts["alpha-one"])},
    )
    page = await client.get("/security")
    assert page.status_code == 200 and "set by the master account" in page.text
    r = await client.post(
        "/security/two-factor-policy", data={"_csrf_token": token, "require": "on"}, headers=HX
    )
    assert r.status_code == 409
    assert not await totp.policy_requires(world.accounts["alpha"])
