"""Credits pages: who may buy, approve, allocate and reclaim; htmx balance updates; the
ledger with filters, pages and CSV; wallet options, prices and low-balance notices."""

from __future__ import annotations

import csv
import io

from tenants.access import decide as access
from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM, Actor
from tenants.credits import ledger, orders, pricing, spending, transfers, wallets
from tests.conftest import login, make_user

HX = {"HX-Request": "true"}


async def fund(account_id: int, amount: int) -> None:
    order = await orders.purchase(account_id, amount, actor=Actor(label="finance"))
    await orders.approve_order(order.id, actor=Actor(label="operator"))


def _routes_needing(app, permissions: set[str]) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("permission") in permissions:
                for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                    found.append((method, route.path))
    return found


async def test_finance_buys_and_the_operator_approves(client, app, world):
    alpha = world.accounts["alpha"]
    token = await login(client, world.users["Finance"])
    page = await client.get("/credits")
    assert page.status_code == 200 and "Buy credits" in page.text
    r = await client.post(
        "/credits/buy", data={"_csrf_token": token, "amount": "5,000"}, headers=HX
    )
    assert r.status_code == 201, r.text
    assert "pending" in r.text and "INV-" in r.text
    assert await ledger.balance(alpha) == 0
    [order] = await orders.orders(account_id=alpha)

    # The operator approves from the platform pages; the purchase lands once.
    await client.post("/logout", data={"_csrf_token": token})
    token = await login(client, "operator@platform.test")
    listing = await client.get("/platform/orders")
    assert listing.status_code == 200 and f'id="order-{order.id}"' in listing.text
    r = await client.post(
        f"/platform/orders/{order.id}/approve", data={"_csrf_token": token}, headers=HX
    )
    assert r.status_code == 200 and "approved" in r.text and "<html" not in r.text
    await client.post(
        f"/platform/orders/{order.id}/approve", data={"_csrf_token": token}, headers=HX
    )
    assert await ledger.balance(alpha) == 5000
    rows, total = await ledger.ledger(alpha)
    assert total == 1 and rows[0].kind == "purchase"


async def test_finance_cannot_send_allocate_or_manage_users(client, app, world):
    token = await login(client, world.users["Finance"])
    finance = access.Principal(
        kind="user", label="finance", user_id=world.user_ids[world.users["Finance"]]
    )
    for permission in ("messages.send", "messages.send_template", "users.manage"):
        assert not await access.decide(finance, world.accounts["alpha"], permission)
    for method, path in _routes_needing(
        app, {"messages.send", "messages.send_template", "users.manage"}
    ):
        if "{" in path or path.startswith("/api/"):
            continue  # the API takes keys, not sessions (its own tests cover the roles)
        r = await client.request(method, path, data={"_csrf_token": token})
        assert r.status_code == 403, (method, path)
    r = await client.post(
        "/credits/transfer",
        data={"_csrf_token": token, "account_id": str(world.accounts["alpha-one"]), "amount": "1"},
    )
    assert r.status_code == 403


async def test_non_finance_roles_cannot_buy(client, world):
    token = await login(client, world.users["Sender"])
    r = await client.post("/credits/buy", data={"_csrf_token": token, "amount": "10"}, headers=HX)
    assert r.status_code == 403
    assert await orders.orders() == []


async def test_buy_validation_is_inline(client, world):
    token = await login(client, world.users["Finance"])
    r = await client.post("/credits/buy", data={"_csrf_token": token, "amount": "-3"}, headers=HX)
    assert r.status_code == 422 and 'id="buy-amount-error"' in r.text
    assert await orders.orders() == []


async def test_owner_allocates_and_reclaims_with_both_balances_updated(client, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 1000)
    token = await login(client, world.users["Owner"])
    page = await client.get("/credits")
    assert f'id="transfer-form-{one}"' in page.text
    r = await client.post(
        "/credits/transfer",
        data={
            "_csrf_token": token,
            "account_id": str(one),
            "amount": "300",
            "direction": "allocate",
            "idempotency_key": "form-1",
        },
        headers=HX,
    )
    assert r.status_code == 200 and "Allocated 300 credits to Alpha One" in r.text
    assert (
        f'<span id="credit-balance-{alpha}" class="credit-balance" hx-swap-oob="true">700<'
        in r.text
    )
    assert (
        f'<span id="credit-balance-{one}" class="credit-balance" hx-swap-oob="true">300<' in r.text
    )
    # A double submit of the same form (same key) moves nothing more.
    await client.post(
        "/credits/transfer",
        data={
            "_csrf_token": token,
            "account_id": str(one),
            "amount": "300",
            "direction": "allocate",
            "idempotency_key": "form-1",
        },
        headers=HX,
    )
    assert await ledger.balance(one) == 300
    r = await client.post(
        "/credits/transfer",
        data={
            "_csrf_token": token,
            "account_id": str(one),
            "amount": "120",
            "direction": "reclaim",
        },
        headers=HX,
    )
    assert r.status_code == 200 and "Reclaimed 120 credits from Alpha One" in r.text
    assert await ledger.balance(alpha) == 820 and await ledger.balance(one) == 180


async def test_insufficient_balance_gets_a_clear_message_and_writes_nothing(client, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 50)
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/credits/transfer",
        data={
            "_csrf_token": token,
            "account_id": str(one),
            "amount": "51",
            "direction": "allocate",
        },
        headers=HX,
    )
    assert r.status_code == 409
    assert "Alpha Master holds 50 credits, not enough to move 51." in r.text
    assert await ledger.balance(alpha) == 50 and await ledger.balance(one) == 0
    r = await client.post(
        "/credits/transfer",
        data={"_csrf_token": token, "account_id": str(one), "amount": "abc"},
        headers=HX,
    )
    assert r.status_code == 422 and "whole number" in r.text


async def test_transfer_without_javascript_redirects_back(client, world):
    await fund(world.accounts["alpha"], 10)
    token = await login(client, world.users["Owner"])
    r = await client.post(
        "/credits/transfer",
        data={"_csrf_token": token, "account_id": str(world.accounts["alpha-one"]), "amount": "4"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/credits"
    assert await ledger.balance(world.accounts["alpha-one"]) == 4


async def test_sender_cannot_allocate(client, world):
    await fund(world.accounts["alpha"], 100)
    token = await login(client, world.users["Sender"])
    page = await client.get("/credits")
    assert page.status_code == 200 and "transfer-form" not in page.text
    r = await client.post(
        "/credits/transfer",
        data={"_csrf_token": token, "account_id": str(world.accounts["alpha-one"]), "amount": "5"},
        headers=HX,
    )
    assert r.status_code == 403
    assert await ledger.balance(world.accounts["alpha-one"]) == 0


async def test_sibling_cannot_allocate_to_sibling_and_sub_cannot_allocate_upward(client, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    two = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=alpha, parent_id=alpha, name="Alpha Two", slug="alpha-two"
    )
    await make_user("admin@alpha-one.test", one, "Admin")
    await fund(alpha, 100)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=60)
    token = await login(client, "admin@alpha-one.test")
    for direction, target in (("allocate", two.id), ("allocate", alpha), ("reclaim", alpha)):
        r = await client.post(
            "/credits/transfer",
            data={
                "_csrf_token": token,
                "account_id": str(target),
                "amount": "10",
                "direction": direction,
            },
            headers=HX,
        )
        assert r.status_code == 404, (direction, target)
    assert await ledger.balance(one) == 60
    assert await ledger.balance(two.id) == 0 and await ledger.balance(alpha) == 40


async def test_tree_page_has_inline_transfer_forms_with_csrf(client, world):
    token = await login(client, world.users["Owner"])
    await fund(world.accounts["alpha"], 10)
    page = await client.get("/accounts")
    one = world.accounts["alpha-one"]
    assert f'id="transfer-form-{one}"' in page.text
    form = page.text.split(f'id="transfer-form-{one}"', 1)[1].split("</form>", 1)[0]
    assert 'name="_csrf_token"' in form
    assert f'id="credit-balance-{world.accounts["alpha"]}"' in page.text
    r = await client.post(
        "/credits/transfer",
        data={"_csrf_token": token, "account_id": str(one), "amount": "3"},
        headers=HX,
    )
    assert r.status_code == 200 and f'id="transfer-form-{one}"' in r.text


async def test_ledger_filters_pages_and_csv(client, world):
    alpha = world.accounts["alpha"]
    await fund(alpha, 100)
    for i in range(30):
        await spending.reserve(alpha, 1, reference=f"=batch-{i}", idempotency_key=f"k{i}")
    await login(client, world.users["Viewer"])
    page = await client.get("/credits/ledger")
    assert page.status_code == 200
    assert "31 rows" in page.text and "Page 1 of 2" in page.text
    assert page.text.count('id="ledger-row-') == 25
    second = await client.get("/credits/ledger?page=2", headers=HX)
    assert second.text.count('id="ledger-row-') == 6 and "<html" not in second.text
    purchases = await client.get("/credits/ledger?kind=purchase", headers=HX)
    assert purchases.text.count('id="ledger-row-') == 1 and "+100" in purchases.text
    future = await client.get("/credits/ledger?since=2999-01-01", headers=HX)
    assert "0 rows" in future.text
    bad = await client.get("/credits/ledger?since=yesterday", headers=HX)
    assert bad.status_code == 422 and 'id="ledger-since-error"' in bad.text
    r = await client.get("/credits/ledger.csv?kind=spend")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:5] == ["id", "created_at", "kind", "delta", "balance_after"]
    assert len(rows) == 31 and {row[2] for row in rows[1:]} == {"spend"}
    # A reference that looks like a formula is defused for spreadsheets.
    assert all(row[6].startswith("'=") for row in rows[1:])


async def test_ledger_of_another_tenant_is_404(client, world):
    await login(client, world.users["Owner"])
    r = await client.get(f"/credits/ledger?account_id={world.accounts['beta']}")
    assert r.status_code == 404
    r = await client.get(f"/credits/ledger.csv?account_id={world.accounts['beta']}")
    assert r.status_code == 404


async def test_wallet_options_validate_and_save(client, world):
    one = world.accounts["alpha-one"]
    token = await login(client, world.users["Owner"])
    r = await client.post(
        f"/credits/wallets/{one}",
        data={"_csrf_token": token, "monthly_cap": "lots", "auto_top_up": "on"},
        headers=HX,
    )
    assert r.status_code == 422 and 'id="wallet-monthly_cap-error"' in r.text
    assert (await wallets.wallet_settings(one)).monthly_cap is None
    r = await client.post(
        f"/credits/wallets/{one}",
        data={
            "_csrf_token": token,
            "monthly_cap": "1,000",
            "low_balance_threshold": "50",
            "auto_top_up": "on",
            "top_up_amount": "200",
        },
        headers=HX,
    )
    assert r.status_code == 200 and "Saved" in r.text
    saved = await wallets.wallet_settings(one)
    assert (saved.monthly_cap, saved.low_balance_threshold, saved.top_up_amount) == (1000, 50, 200)
    page = await client.get("/credits/wallets")
    assert f'id="wallet-row-{one}"' in page.text and "1,000" in page.text
    # A sub-account's admin cannot loosen its own cap.
    await make_user("admin@alpha-one.test", one, "Admin")
    other = await login(client, "admin@alpha-one.test")
    r = await client.post(
        f"/credits/wallets/{one}", data={"_csrf_token": other, "monthly_cap": ""}, headers=HX
    )
    assert r.status_code == 422
    assert (await wallets.wallet_settings(one)).monthly_cap == 1000


async def test_prices_within_cost(client, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await pricing.set_price(
        actor=SYSTEM,
        account_id=alpha,
        channel="sms",
        country="AU",
        credits=2,
        is_operator=True,
        within_account_id=alpha,
    )
    token = await login(client, world.users["Owner"])
    page = await client.get("/credits/prices")
    assert page.status_code == 200 and "AU 2" in page.text
    r = await client.post(
        "/credits/prices",
        data={
            "_csrf_token": token,
            "account_id": str(one),
            "channel": "sms",
            "country": "AU",
            "credits": "1",
        },
        headers=HX,
    )
    assert r.status_code == 422 and 'id="price-credits-error"' in r.text
    r = await client.post(
        "/credits/prices",
        data={
            "_csrf_token": token,
            "account_id": str(one),
            "channel": "sms",
            "country": "au",
            "credits": "3",
        },
        headers=HX,
    )
    assert r.status_code == 200 and "Price saved" in r.text
    assert await pricing.prices_for(one, "sms") == {"*": 1, "AU": 3}
    # The master cannot lower its own cost.
    r = await client.post(
        "/credits/prices",
        data={
            "_csrf_token": token,
            "account_id": str(alpha),
            "channel": "sms",
            "country": "AU",
            "credits": "1",
        },
        headers=HX,
    )
    assert r.status_code == 422
    viewer = await login(client, world.users["Viewer"])
    r = await client.post(
        "/credits/prices",
        data={"_csrf_token": viewer, "account_id": str(one), "channel": "sms", "country": "AU"},
    )
    assert r.status_code == 403


async def test_low_balance_notice_on_the_parents_dashboard(client, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 100)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=20)
    await wallets.update_wallet_settings(
        actor=SYSTEM,
        within_account_id=alpha,
        account_id=one,
        shared_wallet=False,
        monthly_cap=None,
        low_balance_threshold=10,
        auto_top_up=False,
        top_up_amount=0,
    )
    await spending.reserve(one, 15, reference="b", idempotency_key="k")
    [notice] = await wallets.notices(alpha)
    token = await login(client, world.users["Owner"])
    page = await client.get("/")
    assert "Alpha One fell below 10 credits (balance 5)." in page.text
    r = await client.post(
        f"/credits/notices/{notice.id}/dismiss", data={"_csrf_token": token}, headers=HX
    )
    assert r.status_code == 200
    assert "fell below" not in (await client.get("/")).text
    await login(client, world.users["Sender"])
    assert "fell below" not in (await client.get("/")).text
