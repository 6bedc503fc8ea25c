"""/api/v1/credits: transfers with Idempotency-Key, the ledger, status codes of CONTRACT.md."""

from __future__ import annotations

from tenants.audit.record import Actor
from tenants.credits import ledger, orders


async def fund(account_id: int, amount: int) -> None:
    order = await orders.purchase(account_id, amount, actor=Actor(label="finance"))
    await orders.approve_order(order.id, actor=Actor(label="operator"))


async def test_transfer_and_idempotent_replay(client, make_key, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 1000)
    auth = await make_key("alpha", "Owner")
    body = {"to_account_id": one, "amount": 250}
    r = await client.post(
        "/api/v1/credits/transfers", json=body, headers={**auth, "Idempotency-Key": "t-1"}
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert {k: first[k] for k in ("from_account_id", "to_account_id", "amount")} == {
        "from_account_id": alpha,
        "to_account_id": one,
        "amount": 250,
    }
    r = await client.post(
        "/api/v1/credits/transfers", json=body, headers={**auth, "Idempotency-Key": "t-1"}
    )
    assert r.status_code == 201 and r.json()["id"] == first["id"]
    assert r.headers.get("idempotent-replayed") == "true"
    assert await ledger.balance(one) == 250 and await ledger.balance(alpha) == 750
    r = await client.post(
        "/api/v1/credits/transfers",
        json={"to_account_id": one, "amount": 251},
        headers={**auth, "Idempotency-Key": "t-1"},
    )
    assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused"
    assert await ledger.balance(one) == 250


async def test_reclaim_through_the_api(client, make_key, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 100)
    auth = await make_key("alpha", "Owner")
    await client.post(
        "/api/v1/credits/transfers", json={"to_account_id": one, "amount": 40}, headers=auth
    )
    r = await client.post(
        "/api/v1/credits/transfers",
        json={"from_account_id": one, "to_account_id": alpha, "amount": 15},
        headers=auth,
    )
    assert r.status_code == 201 and r.json()["kind"] == "reclaim"
    assert await ledger.balance(one) == 25 and await ledger.balance(alpha) == 75


async def test_transfer_errors(client, make_key, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 10)
    auth = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/credits/transfers", json={"to_account_id": one, "amount": 11}, headers=auth
    )
    assert r.status_code == 409 and r.json()["code"] == "insufficient_credits"
    r = await client.post(
        "/api/v1/credits/transfers", json={"to_account_id": one, "amount": "11"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "amount"
    r = await client.post("/api/v1/credits/transfers", json={"amount": 1}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "to_account_id"
    r = await client.post(
        "/api/v1/credits/transfers",
        json={"to_account_id": world.accounts["beta-one"], "amount": 1},
        headers=auth,
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    sender = await make_key("alpha", "Sender")
    r = await client.post(
        "/api/v1/credits/transfers", json={"to_account_id": one, "amount": 1}, headers=sender
    )
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    # A sub-account's key cannot pull credits up from its parent.
    sub = await make_key("alpha-one", "Owner")
    r = await client.post(
        "/api/v1/credits/transfers",
        json={"from_account_id": alpha, "to_account_id": one, "amount": 1},
        headers=sub,
    )
    assert r.status_code == 404
    assert await ledger.balance(alpha) == 10 and await ledger.balance(one) == 0


async def test_ledger(client, make_key, world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 100)
    auth = await make_key("alpha", "Owner")
    await client.post(
        "/api/v1/credits/transfers", json={"to_account_id": one, "amount": 30}, headers=auth
    )
    r = await client.get("/api/v1/credits/ledger", headers=auth)
    assert r.status_code == 200
    rows = r.json()
    assert [(x["kind"], x["delta"], x["balance_after"]) for x in rows] == [
        ("allocate", -30, 70),
        ("purchase", 100, 100),
    ]
    assert set(rows[0]) >= {
        "id",
        "account_id",
        "delta",
        "kind",
        "balance_after",
        "created_at",
        "reference",
    }
    r = await client.get(f"/api/v1/credits/ledger?account_id={one}", headers=auth)
    assert [(x["account_id"], x["delta"]) for x in r.json()] == [(one, 30)]
    r = await client.get(
        f"/api/v1/credits/ledger?account_id={world.accounts['beta']}", headers=auth
    )
    assert r.status_code == 404
    r = await client.get("/api/v1/credits/ledger?kind=nonsense", headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "kind"
    finance = await make_key("alpha", "Finance")
    assert (await client.get("/api/v1/credits/ledger", headers=finance)).status_code == 200
    support = await make_key("alpha", "Support")
    assert (await client.get("/api/v1/credits/ledger", headers=support)).status_code == 403


async def test_prices(client, make_key, world):
    auth = await make_key("alpha-one", "Viewer")
    r = await client.get("/api/v1/credits/prices?channel=whatsapp", headers=auth)
    assert r.status_code == 200 and r.json() == {"channel": "whatsapp", "prices": {"*": 2}}
