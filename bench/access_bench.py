"""How long `evaluate()` (run by the guard on every request) takes, and how many SQL
statements it runs, for a person with a custom role, two teams and overrides.

    .venv/bin/python bench/access_bench.py            # SQLite file in a temp folder
    DATABASE_URL=postgresql://... .venv/bin/python bench/access_bench.py   # wipes that DB

Prints the figures and writes bench/results/access.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.db")
os.environ.setdefault("SECRET_KEY", "bench-secret")

ROUNDS = 500


async def main() -> dict[str, object]:
    from tenants.access import members as people
    from tenants.access import users
    from tenants.access.decide import Principal, evaluate
    from tenants.accounts.tree import create_root_account, create_sub_account
    from tenants.audit.record import SYSTEM, Actor
    from tenants.db import DB, close_pool, start_pool
    from tenants.schema import migrate, wipe_all_data

    await migrate()
    await start_pool()
    await wipe_all_data()
    master = await create_root_account(name="Bench Master", slug="bench")
    sub = await create_sub_account(
        actor=SYSTEM, within_account_id=master.id, parent_id=master.id, name="Sub", slug="bench-sub"
    )
    pw = users.hash_password("bench-password")
    owner = await users.create_user(email="owner@bench.test", password="x", password_hash=pw)
    await users.add_membership(user_id=owner.id, account_id=master.id, role="Owner")
    member = await users.create_user(email="member@bench.test", password="x", password_hash=pw)
    await users.add_membership(user_id=member.id, account_id=sub.id, role="Viewer")
    owner_principal = Principal(kind="user", label="owner@bench.test", user_id=owner.id)
    grants = await evaluate(owner_principal, sub.id)
    actor = Actor(user_id=owner.id, label="owner@bench.test")
    await people.create_custom_role(
        actor,
        await evaluate(owner_principal, master.id),
        name="Sales",
        permissions={"account.view", "messages.send", "contacts.view"},
    )
    for name, role in (("Sales team", "Sales"), ("Desk", "Support")):
        team = await people.create_team(actor, grants, name=name, role=role)
        await people.add_team_member(actor, grants, team.id, member.id)
    await people.set_override(actor, grants, member.id, "contacts.export", "deny")
    await people.set_override(actor, grants, member.id, "templates.manage", "grant")
    principal = Principal(kind="user", label="member@bench.test", user_id=member.id)

    calls = 0
    original = DB.run_querystring

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    DB.run_querystring = counting  # type: ignore[method-assign]
    await evaluate(principal, sub.id)
    queries = calls
    DB.run_querystring = original  # type: ignore[method-assign]

    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        g = await evaluate(principal, sub.id)
        g.allowed()
        timings.append((time.perf_counter() - started) * 1000)
    await close_pool()
    timings.sort()
    return {
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "rounds": ROUNDS,
        "queries_per_evaluate": queries,
        "evaluate_plus_full_matrix_ms_median": round(statistics.median(timings), 3),
        "evaluate_plus_full_matrix_ms_p95": round(timings[int(len(timings) * 0.95)], 3),
    }


if __name__ == "__main__":
    figures = asyncio.run(main())
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / "access.json"
    # One entry per database, so the SQLite and PostgreSQL figures sit side by side.
    results = json.loads(out.read_text()) if out.exists() else {}
    results[str(figures["database"])] = figures
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
