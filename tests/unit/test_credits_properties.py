"""Property: any sequence of purchase/allocate/reclaim/reserve/refund keeps every balance
>= 0 and equal to the sum of its ledger rows, succeeds exactly when affordable, and the
credits in the system equal purchases minus net spend."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM, Actor
from tenants.credits import ledger, orders, spending, transfers, wallets
from tenants.errors import Conflict, InsufficientCredits
from tenants.schema import wipe_all_data

# master M -> A -> A1 (A1 on a shared wallet: it spends A's balance), M -> B (tops itself
# up from M when it drops below 20)
NAMES = ("M", "A", "A1", "B")

amounts = st.integers(min_value=1, max_value=60)
who = st.sampled_from(NAMES)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("purchase"), st.just("M"), amounts),
        st.tuples(st.just("allocate"), st.sampled_from(("A", "B", "A1x")), amounts),
        st.tuples(st.just("reclaim"), st.sampled_from(("A", "B")), amounts),
        st.tuples(st.just("reserve"), who, amounts),
        st.tuples(st.just("refund"), who, amounts),
    ),
    min_size=1,
    max_size=12,
)


async def _tree() -> dict[str, int]:
    m = await accounts.create_root_account(name="M", slug="m")
    a = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=m.id, parent_id=m.id, name="A", slug="a"
    )
    a1 = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=m.id, parent_id=a.id, name="A1", slug="a1"
    )
    b = await accounts.create_sub_account(
        actor=SYSTEM, within_account_id=m.id, parent_id=m.id, name="B", slug="b"
    )
    ids = {"M": m.id, "A": a.id, "A1": a1.id, "B": b.id}
    for name, shared, threshold in (("A1", True, None), ("B", False, 20)):
        await wallets.update_wallet_settings(
            actor=SYSTEM,
            within_account_id=m.id,
            account_id=ids[name],
            shared_wallet=shared,
            monthly_cap=None,
            low_balance_threshold=threshold,
            auto_top_up=threshold is not None,
            top_up_amount=30 if threshold is not None else 0,
        )
    return ids


async def _system_total(ids: dict[str, int]) -> int:
    return sum([await ledger.balance(i) for i in ids.values()])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_random_sequences_keep_the_books_straight(ops):
    await wipe_all_data()
    ids = await _tree()
    purchased = spent = refunded = 0
    # account -> [reference, credits still refundable] of its latest reservation
    latest: dict[str, list] = {}
    for step, (op, name, amount) in enumerate(ops):
        if op == "purchase":
            order = await orders.purchase(ids[name], amount, actor=Actor(label="finance"))
            await orders.approve_order(order.id, actor=Actor(label="operator"))
            purchased += amount
        elif op in ("allocate", "reclaim"):
            target = "A1" if name == "A1x" else name
            source = "M" if op == "allocate" else target
            before = await ledger.balance(ids[source])
            try:
                if op == "allocate":
                    await transfers.allocate(
                        actor=SYSTEM,
                        within_account_id=ids["M"],
                        to_account_id=ids[target],
                        amount=amount,
                    )
                else:
                    await transfers.reclaim(
                        actor=SYSTEM,
                        within_account_id=ids["M"],
                        from_account_id=ids[target],
                        amount=amount,
                    )
                assert before >= amount and target != "A1"
            except InsufficientCredits:
                assert before < amount
            except Conflict as exc:
                # Nobody funds an account on a shared wallet.
                assert exc.code == "shared_wallet" and target == "A1"
        elif op == "reserve":
            wallet = await wallets.wallet_of(ids[name])
            before = await ledger.balance(wallet)
            ref = f"ref-{step}"
            try:
                await spending.reserve(ids[name], amount, reference=ref, idempotency_key=ref)
                assert before >= amount
                spent += amount
                latest[name] = [ref, amount]
            except InsufficientCredits:
                assert before < amount
        elif op == "refund" and name in latest:
            ref, refundable = latest[name]
            got = await spending.refund(
                ids[name], amount, reference=ref, idempotency_key=f"refund-{step}"
            )
            # A refund never gives back more than was reserved under the reference.
            assert (got is not None) == (amount <= refundable)
            if got is not None:
                refunded += amount
                latest[name][1] -= amount
        for account_id in ids.values():
            balance = await ledger.balance(account_id)
            assert balance >= 0
            assert balance == await ledger.ledger_sum(account_id)
        assert await _system_total(ids) == purchased - spent + refunded
