"""A plain-Python reference model of consent scopes agrees with the service on random
forests and random sequences of opt-outs, opt-ins, consent_mode flips and re-parenting.

CONSENT_MODEL_EXAMPLES raises the number of database-backed examples (default kept small
so the suite stays fast; the pure scope check runs thousands)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.accounts import tree as accounts
from tenants.accounts.tables import Account
from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.consent import scopes as consent_scopes
from tenants.consent.filter import filter_recipients
from tenants.consent.tables import ConsentEvent
from tenants.schema import wipe_all_data

PHONES = ["+61412000001", "+61412000002", "+61412000003"]
GROUPS = {"sms": "sms", "whatsapp": "whatsapp"}
EXAMPLES = int(os.environ.get("CONSENT_MODEL_EXAMPLES") or 30)


@dataclass
class Model:
    """The rule of DESIGN.md, written independently of the service: an account's scope is
    itself if isolated or a root, else its parent's scope; the latest event received by any
    account of a scope decides for the whole scope."""

    parent: dict[int, int | None] = field(default_factory=dict)
    mode: dict[int, str] = field(default_factory=dict)
    events: list[tuple[int, str, str, str]] = field(
        default_factory=list
    )  # account, phone, group, action

    def scope(self, node: int) -> int:
        while self.mode[node] != "isolated" and self.parent[node] is not None:
            node = self.parent[node]  # type: ignore[assignment]
        return node

    def status(self, account: int, phone: str, group: str) -> str:
        scope = self.scope(account)
        latest = "unknown"
        for who, p, g, action in self.events:
            if p == phone and g == group and self.scope(who) == scope:
                latest = "opted_out" if action == "opt_out" else "opted_in"
        return latest

    def descendants(self, node: int) -> set[int]:
        out = {node}
        changed = True
        while changed:
            changed = False
            for n, p in self.parent.items():
                if p in out and n not in out:
                    out.add(n)
                    changed = True
        return out


# A forest: node i's parent is None or an earlier node; modes per node.
forests = st.integers(min_value=1, max_value=7).flatmap(
    lambda n: st.tuples(
        st.tuples(
            *[st.one_of(st.none(), st.integers(0, i - 1)) if i else st.none() for i in range(n)]
        ),
        st.lists(st.sampled_from(["inherit", "isolated"]), min_size=n, max_size=n),
    )
)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.integers(0, 6),
            st.sampled_from(PHONES),
            st.sampled_from(list(GROUPS)),
            st.sampled_from(["opt_out", "opt_in"]),
        ),
        st.tuples(st.just("flip"), st.integers(0, 6)),
        st.tuples(st.just("move"), st.integers(0, 6), st.one_of(st.none(), st.integers(0, 6))),
    ),
    max_size=14,
)


@settings(max_examples=1000, deadline=None)
@given(forest=forests)
def test_scope_map_matches_the_model(forest):
    parents, modes = forest
    model = Model(parent=dict(enumerate(parents)), mode=dict(enumerate(modes)))
    service = consent_scopes.scope_map((i, parents[i], modes[i]) for i in range(len(parents)))
    assert service == {i: model.scope(i) for i in range(len(parents))}


async def _move(node_id: int, new_parent_id: int | None) -> None:
    """Re-parent a subtree by rewriting paths (the product has no move yet; the derivation
    must still hold for any tree), then re-derive the old and the new tree."""
    node = await accounts.get_account(node_id)
    old_root = node.ancestor_ids[0]
    parent = await accounts.get_account(new_parent_id) if new_parent_id is not None else None
    new_prefix = f"{parent.path if parent else '/'}{node_id}/"
    depth_delta = (parent.depth + 1 if parent else 0) - node.depth
    rows = await Account.select(Account.id, Account.path, Account.depth).where(
        Account.path.like(node.path + "%")
    )
    for r in rows:
        await Account.update(
            {
                Account.path: new_prefix + r["path"][len(node.path) :],
                Account.depth: r["depth"] + depth_delta,
            }
        ).where(Account.id == r["id"])
    await Account.update(
        {Account.parent: new_parent_id, Account.kind: "sub" if parent else "master"}
    ).where(Account.id == node_id)
    await consent_scopes.rederive_tree(old_root)
    await consent_scopes.rederive_tree(node_id)


async def _check(model: Model, ids: list[int], *, explain: bool = False) -> None:
    for index, account_id in enumerate(ids):
        for channel, group in GROUPS.items():
            allowed, skipped = await filter_recipients(account_id, PHONES, channel)
            expected_out = {p for p in PHONES if model.status(index, p, group) == "opted_out"}
            assert {raw for raw, _ in skipped} == expected_out, (index, group)
            assert set(allowed) == set(PHONES) - expected_out
    for index, account_id in enumerate(ids if explain else []):
        trace = await consent_events.explain(account_id, PHONES[0], "sms")
        assert trace.status == model.status(index, PHONES[0], "sms")
        assert trace.scope_account_id == ids[model.scope(index)]


async def _scenario(forest, ops) -> None:
    await wipe_all_data()
    parents, modes = forest
    model = Model()
    ids: list[int] = []
    for i, (parent, mode) in enumerate(zip(parents, modes, strict=True)):
        if parent is None:
            created = await accounts.create_root_account(name=f"Root {i}", slug=f"n{i}")
            await Account.update({Account.consent_mode: mode}).where(Account.id == created.id)
        else:
            created = await accounts.create_sub_account(
                actor=SYSTEM,
                within_account_id=ids[parent],
                parent_id=ids[parent],
                name=f"Node {i}",
                slug=f"n{i}",
                consent_mode=mode,
            )
        ids.append(created.id)
        model.parent[i], model.mode[i] = parent, mode
    n = len(ids)
    for op in ops:
        if op[0] == "event":
            _, who, phone, channel, action = op
            who %= n
            record = (
                consent_events.record_opt_out
                if action == "opt_out"
                else consent_events.record_opt_in
            )
            await record(ids[who], phone, channel, source="api")
            model.events.append((who, phone, GROUPS[channel], action))
        elif op[0] == "flip":
            who = op[1] % n
            new_mode = "inherit" if model.mode[who] == "isolated" else "isolated"
            parent = model.parent[who]
            if parent is None:
                # A root is its own scope whatever its mode; the flip must change nothing.
                await Account.update({Account.consent_mode: new_mode}).where(Account.id == ids[who])
                await consent_scopes.on_consent_mode_changed(ids[who])
            else:
                await consent_scopes.set_consent_mode(
                    actor=SYSTEM,
                    within_account_id=ids[parent],
                    account_id=ids[who],
                    consent_mode=new_mode,
                )
            model.mode[who] = new_mode
        else:
            _, who, target = op
            who %= n
            new_parent = None if target is None else target % n
            if new_parent is not None and new_parent in model.descendants(who):
                continue  # would make a cycle
            await _move(ids[who], None if new_parent is None else ids[new_parent])
            model.parent[who] = new_parent
        await _check(model, ids)
    await _check(model, ids, explain=True)
    assert await ConsentEvent.count() == len(model.events)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(forest=forests, ops=operations)
def test_service_agrees_with_the_reference_model(forest, ops):
    asyncio.run(_scenario(forest, ops))
