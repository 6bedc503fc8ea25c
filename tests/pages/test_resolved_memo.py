"""The per-process memo of what a signed-in page resolves (tenants/access/resolved.py):
any write to those tables, from any process, bumps cache_version in its own transaction,
so the next request resolves afresh; a balance change does not."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from portal.auth import SESSION_COOKIE
from tenants.access import resolved
from tenants.access.tables import Membership, User
from tenants.accounts.tables import Account
from tests.conftest import login
from tests.factories import fund, make_user


async def test_a_role_changed_behind_the_memo_applies_to_the_next_request(client, demo):
    await login(client, "owner@northwind.test")
    assert (await client.get("/campaigns")).status_code == 200  # remembered now
    owner = await User.select(User.id).where(User.email == "owner@northwind.test").first()
    assert owner
    before = await resolved.read_version()
    # A plain UPDATE, as another process would write it: the trigger bumps the counter.
    await Membership.update({Membership.role: "Viewer"}).where(
        (Membership.user == owner["id"]) & (Membership.account == demo["northwind"])
    )
    after = await resolved.read_version()
    assert before is not None and after is not None and after > before
    assert (await client.get("/campaigns")).status_code in (403, 404)


async def test_a_balance_change_keeps_the_memo_and_the_dashboard_shows_it(client, demo):
    await login(client, "owner@northwind.test")
    assert (await client.get("/")).status_code == 200
    before = await resolved.read_version()
    await fund(demo["northwind"], 123_457)
    assert await resolved.read_version() == before
    account = await Account.select(Account.balance).where(Account.id == demo["northwind"]).first()
    assert account
    page = await client.get("/")
    assert page.status_code == 200
    assert f'id="balance">{account["balance"]:,}<' in page.text


async def test_signing_out_ends_the_session_everywhere(client, demo):
    csrf = await login(client, "owner@northwind.test")
    assert (await client.get("/")).status_code == 200
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    assert (await client.post("/logout", data={"_csrf_token": csrf})).url.path == "/login"
    client.cookies.set(SESSION_COOKIE, token)
    answer = await client.get("/")
    assert answer.url.path == "/login", "the remembered session was used after sign-out"


async def test_the_dashboard_member_count_and_period_follow_writes_behind_the_memo(client, demo):
    await login(client, "owner@northwind.test")
    first = await client.get("/")
    count = int(first.text.split('id="user-count">')[1].split("<")[0])
    await make_user("new.member@northwind.test", demo["northwind"], "Viewer")
    page = await client.get("/")
    assert f'id="user-count">{count + 1}<' in page.text
    # The dashboard's days are the account's: a time zone a day ahead moves them.
    await Account.update({Account.timezone: "Pacific/Kiritimati"}).where(
        Account.id == demo["northwind"]
    )
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert f"to {today.isoformat()}" in (await client.get("/")).text
    await Account.update({Account.timezone: "Pacific/Pago_Pago"}).where(
        Account.id == demo["northwind"]
    )
    today = datetime.now(ZoneInfo("Pacific/Pago_Pago")).date()
    assert f"to {today.isoformat()}" in (await client.get("/")).text
