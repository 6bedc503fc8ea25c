"""Credits services: purchases, transfers down and up the tree, reserve/refund for sends,
shared wallets, monthly caps, low-balance alerts and the price table."""

from __future__ import annotations

import pytest

from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM, Actor
from tenants.audit.tables import AuditEvent
from tenants.credits import ledger, orders, pricing, spending, transfers, wallets
from tenants.credits.tables import LedgerEntry
from tenants.errors import Conflict, InsufficientCredits, NotFound, ValidationFailed

FINANCE = Actor(user_id=None, label="finance@alpha.test")
OPERATOR = Actor(user_id=None, label="operator@platform.test")


async def fund(account_id: int, amount: int) -> None:
    order = await orders.purchase(account_id, amount, actor=FINANCE)
    await orders.approve_order(order.id, actor=OPERATOR)


async def assert_ledger_matches(*account_ids: int) -> None:
    for account_id in account_ids:
        assert await ledger.balance(account_id) == await ledger.ledger_sum(account_id)


async def test_invoice_purchase_waits_for_the_operator(world):
    alpha = world.accounts["alpha"]
    order = await orders.purchase(alpha, 5000, actor=FINANCE)
    assert order.status == "pending" and order.reference.startswith("INV-")
    assert await ledger.balance(alpha) == 0
    approved = await orders.approve_order(order.id, actor=OPERATOR)
    assert approved.status == "approved" and approved.decided_by == OPERATOR.label
    assert await ledger.balance(alpha) == 5000
    # Approving twice (a double click, a retry) does not buy twice.
    await orders.approve_order(order.id, actor=OPERATOR)
    assert await ledger.balance(alpha) == 5000
    rows, total = await ledger.ledger(alpha)
    assert total == 1 and rows[0].kind == "purchase" and rows[0].balance_after == 5000
    with pytest.raises(Conflict):
        await orders.reject_order(order.id, actor=OPERATOR)


async def test_rejected_order_buys_nothing(world):
    order = await orders.purchase(world.accounts["alpha"], 100, actor=FINANCE)
    await orders.reject_order(order.id, actor=OPERATOR, note="no payment received")
    with pytest.raises(Conflict):
        await orders.approve_order(order.id, actor=OPERATOR)
    assert await ledger.balance(world.accounts["alpha"]) == 0


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", True])
async def test_purchase_rejects_bad_amounts(world, amount):
    with pytest.raises(ValidationFailed) as exc:
        await orders.purchase(world.accounts["alpha"], amount, actor=FINANCE)
    assert "amount" in exc.value.errors
    assert await orders.orders(account_id=world.accounts["alpha"]) == []


async def test_allocate_and_reclaim_move_credits_without_creating_any(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 1000)
    t = await transfers.allocate(
        actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=300
    )
    assert (t.kind, t.from_account_id, t.to_account_id, t.amount) == ("allocate", alpha, one, 300)
    assert await ledger.balance(alpha) == 700 and await ledger.balance(one) == 300
    await transfers.reclaim(actor=SYSTEM, within_account_id=alpha, from_account_id=one, amount=100)
    assert await ledger.balance(alpha) == 800 and await ledger.balance(one) == 200
    await assert_ledger_matches(alpha, one)
    rows, _ = await ledger.ledger(one)
    assert [(r.kind, r.delta, r.counterparty_name) for r in rows] == [
        ("reclaim", -100, "Alpha Master"),
        ("allocate", 300, "Alpha Master"),
    ]
    actions = {r["action"] for r in await AuditEvent.select(AuditEvent.action)}
    assert {"credits.allocate", "credits.reclaim"} <= actions


async def test_allocating_more_than_held_writes_nothing(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 50)
    with pytest.raises(InsufficientCredits) as exc:
        await transfers.allocate(
            actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=51
        )
    assert "holds 50" in exc.value.message
    assert await ledger.balance(alpha) == 50 and await ledger.balance(one) == 0
    assert await LedgerEntry.count() == 1


async def test_transfers_stay_inside_the_callers_subtree(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    two = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=alpha, parent_id=alpha, name="Alpha Two", slug="alpha-two"
    )
    await fund(alpha, 100)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=40)
    # A sibling cannot allocate to a sibling: it is outside the sibling's subtree.
    with pytest.raises(NotFound):
        await transfers.allocate(
            actor=SYSTEM, within_account_id=one, to_account_id=two.id, amount=10
        )
    # Even the parent cannot move credits sideways between siblings.
    with pytest.raises(ValidationFailed):
        await transfers.transfer(
            actor=SYSTEM,
            within_account_id=alpha,
            from_account_id=one,
            to_account_id=two.id,
            amount=10,
        )
    # A sub cannot pull credits up from its parent, nor push to another tenant.
    with pytest.raises(NotFound):
        await transfers.reclaim(
            actor=SYSTEM, within_account_id=one, from_account_id=alpha, amount=10
        )
    with pytest.raises(NotFound):
        await transfers.allocate(
            actor=SYSTEM, within_account_id=alpha, to_account_id=world.accounts["beta"], amount=1
        )
    assert await ledger.balance(one) == 40 and await ledger.balance(alpha) == 60


async def test_transfer_idempotency_key(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 100)
    first, created = await transfers.transfer(
        actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=10, idempotency_key="k1"
    )
    again, created_again = await transfers.transfer(
        actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=10, idempotency_key="k1"
    )
    assert created and not created_again and again.id == first.id
    assert await ledger.balance(one) == 10
    with pytest.raises(Conflict) as exc:
        await transfers.transfer(
            actor=SYSTEM,
            within_account_id=alpha,
            to_account_id=one,
            amount=11,
            idempotency_key="k1",
        )
    assert exc.value.code == "idempotency_key_reused"


async def test_reserve_debits_once_and_refuses_what_it_cannot_cover(world):
    one = world.accounts["alpha-one"]
    await fund(world.accounts["alpha"], 100)
    await transfers.allocate(
        actor=SYSTEM, within_account_id=world.accounts["alpha"], to_account_id=one, amount=30
    )
    spend_id = await spending.reserve(one, 20, reference="batch-1", idempotency_key="send-1")
    assert (
        await spending.reserve(one, 20, reference="batch-1", idempotency_key="send-1") == spend_id
    )
    assert await ledger.balance(one) == 10
    with pytest.raises(InsufficientCredits) as exc:
        await spending.reserve(one, 11, reference="batch-2", idempotency_key="send-2")
    assert exc.value.code == "insufficient_credits"
    assert await ledger.balance(one) == 10
    assert await spending.month_spend(one) == 20
    assert await LedgerEntry.count().where(LedgerEntry.kind == "spend") == 1


async def test_refund_goes_back_and_never_exceeds_the_spend(world):
    one = world.accounts["alpha-one"]
    await fund(world.accounts["alpha"], 100)
    await transfers.allocate(
        actor=SYSTEM, within_account_id=world.accounts["alpha"], to_account_id=one, amount=30
    )
    await spending.reserve(one, 10, reference="batch-1", idempotency_key="send-1")
    first = await spending.refund(one, 4, reference="batch-1", idempotency_key="refund-m1")
    assert first is not None
    assert await spending.refund(one, 4, reference="batch-1", idempotency_key="refund-m1") == first
    assert await ledger.balance(one) == 24
    assert await spending.refund(one, 6, reference="batch-1", idempotency_key="refund-m2")
    # Everything reserved under batch-1 has come back: nothing more to refund.
    assert await spending.refund(one, 1, reference="batch-1", idempotency_key="refund-m3") is None
    assert await spending.refund(one, 1, reference="other", idempotency_key="refund-x") is None
    assert await ledger.balance(one) == 30
    assert await spending.month_spend(one) == 0
    await assert_ledger_matches(one)


async def test_refunds_of_a_reference_reserved_in_chunks_split_across_them(world):
    # A streamed campaign reserves each chunk under the batch's one reference: a refund no
    # single chunk has room left for is split across them, never lost.
    one = world.accounts["alpha-one"]
    await fund(world.accounts["alpha"], 100)
    await transfers.allocate(
        actor=SYSTEM, within_account_id=world.accounts["alpha"], to_account_id=one, amount=30
    )
    await spending.reserve(one, 3, reference="batch-9", idempotency_key="send-9:a")
    await spending.reserve(one, 4, reference="batch-9", idempotency_key="send-9:b")
    assert await ledger.balance(one) == 23
    for n, cost in enumerate((2, 2, 3)):
        assert await spending.refund(one, cost, reference="batch-9", idempotency_key=f"r9-{n}")
    assert await ledger.balance(one) == 30
    assert await spending.month_spend(one) == 0
    # All of it has come back; a further refund writes nothing and marks nothing.
    assert await spending.refund(one, 1, reference="batch-9", idempotency_key="r9-x") is None
    assert await ledger.balance(one) == 30
    await assert_ledger_matches(one)


async def test_shared_wallet_draws_from_nearest_ancestor_with_a_wallet(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    deep = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=alpha, parent_id=one, name="Deep", slug="deep"
    )
    await fund(alpha, 100)
    for account_id in (one, deep.id):
        await wallets.update_wallet_settings(
            actor=SYSTEM,
            within_account_id=alpha,
            account_id=account_id,
            shared_wallet=True,
            monthly_cap=None,
            low_balance_threshold=None,
            auto_top_up=False,
            top_up_amount=0,
        )
    assert await wallets.wallet_of(deep.id) == alpha
    await spending.reserve(deep.id, 15, reference="b", idempotency_key="k")
    assert await ledger.balance(alpha) == 85 and await ledger.balance(deep.id) == 0
    rows, _ = await ledger.ledger(alpha, kind="spend")
    assert rows[0].spender_id == deep.id and rows[0].counterparty_name == "Deep"
    await spending.refund(deep.id, 15, reference="b", idempotency_key="r")
    assert await ledger.balance(alpha) == 100
    # Nobody tops up or buys for an account that has no wallet of its own.
    with pytest.raises(Conflict):
        await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=1)
    with pytest.raises(Conflict):
        await orders.purchase(one, 10, actor=FINANCE)


async def test_shared_wallet_needs_an_empty_balance_first(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 10)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=5)
    with pytest.raises(ValidationFailed) as exc:
        await wallets.update_wallet_settings(
            actor=SYSTEM,
            within_account_id=alpha,
            account_id=one,
            shared_wallet=True,
            monthly_cap=None,
            low_balance_threshold=None,
            auto_top_up=False,
            top_up_amount=0,
        )
    assert "reclaim" in exc.value.errors["shared_wallet"]
    assert not (await wallets.wallet_settings(one)).shared_wallet


async def test_monthly_cap_stops_spend_and_writes_nothing(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 100)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=100)
    await wallets.update_wallet_settings(
        actor=SYSTEM,
        within_account_id=alpha,
        account_id=one,
        shared_wallet=False,
        monthly_cap=25,
        low_balance_threshold=None,
        auto_top_up=False,
        top_up_amount=0,
    )
    await spending.reserve(one, 20, reference="a", idempotency_key="a")
    with pytest.raises(Conflict) as exc:
        await spending.reserve(one, 6, reference="b", idempotency_key="b")
    assert exc.value.code == "monthly_cap_reached"
    assert await ledger.balance(one) == 80 and await spending.month_spend(one) == 20
    await spending.reserve(one, 5, reference="c", idempotency_key="c")
    assert await spending.month_spend(one) == 25


async def test_low_balance_alerts_the_parent_and_tops_up(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 1000)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=100)
    await wallets.update_wallet_settings(
        actor=SYSTEM,
        within_account_id=alpha,
        account_id=one,
        shared_wallet=False,
        monthly_cap=None,
        low_balance_threshold=50,
        auto_top_up=True,
        top_up_amount=200,
    )
    await spending.reserve(one, 40, reference="a", idempotency_key="a")
    assert await wallets.notices(alpha) == []
    await spending.reserve(one, 20, reference="b", idempotency_key="b")
    assert await ledger.balance(one) == 240 and await ledger.balance(alpha) == 700
    [notice] = await wallets.notices(alpha)
    assert "Alpha One fell below 50" in notice.message and "Topped up" in notice.message
    await assert_ledger_matches(alpha, one)
    await wallets.dismiss_notice(actor=SYSTEM, account_id=alpha, notice_id=notice.id)
    assert await wallets.notices(alpha) == []


async def test_auto_top_up_never_oversells_the_parent(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    await fund(alpha, 100)
    await transfers.allocate(actor=SYSTEM, within_account_id=alpha, to_account_id=one, amount=60)
    await wallets.update_wallet_settings(
        actor=SYSTEM,
        within_account_id=alpha,
        account_id=one,
        shared_wallet=False,
        monthly_cap=None,
        low_balance_threshold=50,
        auto_top_up=True,
        top_up_amount=500,
    )
    await spending.reserve(one, 20, reference="a", idempotency_key="a")
    assert await ledger.balance(alpha) == 40 and await ledger.balance(one) == 40
    [notice] = await wallets.notices(alpha)
    assert "failed" in notice.message


async def test_prices_default_operator_and_master_within_cost(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    assert await pricing.prices_for(one, "sms") == {"*": 1}
    assert await pricing.prices_for(one, "whatsapp") == {"*": 2}
    assert await pricing.prices_for(one, "mms") == {"*": 3}
    await pricing.set_price(
        actor=OPERATOR,
        account_id=alpha,
        channel="sms",
        country="AU",
        credits=2,
        is_operator=True,
        within_account_id=world.accounts["platform"],
    )
    assert await pricing.prices_for(one, "sms") == {"*": 1, "AU": 2}
    # A master cannot set its own cost, nor price a sub below it.
    with pytest.raises(ValidationFailed):
        await pricing.set_price(
            actor=SYSTEM,
            account_id=alpha,
            channel="sms",
            country="AU",
            credits=1,
            is_operator=False,
            within_account_id=alpha,
        )
    with pytest.raises(ValidationFailed) as exc:
        await pricing.set_price(
            actor=SYSTEM,
            account_id=one,
            channel="sms",
            country="AU",
            credits=1,
            is_operator=False,
            within_account_id=alpha,
        )
    assert "credits" in exc.value.errors
    table = await pricing.set_price(
        actor=SYSTEM,
        account_id=one,
        channel="sms",
        country="nz",
        credits=3,
        is_operator=False,
        within_account_id=alpha,
    )
    assert table == {"*": 1, "AU": 2, "NZ": 3}
    assert await pricing.prices_for(alpha, "sms") == {"*": 1, "AU": 2}
    with pytest.raises(ValidationFailed):
        await pricing.set_price(
            actor=SYSTEM,
            account_id=one,
            channel="fax",
            country="XX1",
            credits=0,
            is_operator=False,
            within_account_id=alpha,
        )


async def test_reserve_nests_in_the_callers_transaction(world):
    from tenants.db import transaction

    alpha = world.accounts["alpha"]
    await fund(alpha, 10)
    # A refused reserve that the caller catches leaves no trace in its transaction.
    async with transaction():
        with pytest.raises(InsufficientCredits):
            await spending.reserve(alpha, 11, reference="b1", idempotency_key="k1")
        await spending.reserve(alpha, 4, reference="b2", idempotency_key="k2")
    assert await ledger.balance(alpha) == 6 and await spending.month_spend(alpha) == 4
    # When the caller's transaction fails after reserving, the charge goes with it.
    with pytest.raises(RuntimeError):
        async with transaction():
            await spending.reserve(alpha, 5, reference="b3", idempotency_key="k3")
            raise RuntimeError("message insert failed")
    assert await ledger.balance(alpha) == 6 and await spending.month_spend(alpha) == 4
    await assert_ledger_matches(alpha)
