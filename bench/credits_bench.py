"""Credits benchmark: transfers per second with 1 and 50 concurrent callers, and whether
racing callers can ever oversell a balance.

DATABASE_URL chooses the database (SQLite file or PostgreSQL); unset, a throw-away SQLite
file is used. The script applies migrations and works in accounts of its own (unique
slugs), so it never touches other data. Prints its figures and merges them into
bench/results/credits.json under the database kind ("sqlite" or "postgresql").

    .venv/bin/python bench/credits_bench.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python bench/credits_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='credits-bench-')}/bench.db"

from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM, Actor
from tenants.credits import ledger, orders, spending, transfers
from tenants.db import close_pool, database_url, is_sqlite, start_pool
from tenants.errors import InsufficientCredits
from tenants.schema import migrate
from tenants.settings import get_settings

RESULTS = ROOT / "bench" / "results" / "credits.json"
TRANSFERS_SINGLE = int(os.environ.get("BENCH_TRANSFERS_SINGLE") or 400)
TRANSFERS_CONCURRENT = int(os.environ.get("BENCH_TRANSFERS_CONCURRENT") or 1000)
CALLERS = 50
RACE_BALANCE = 1000
RACE_ATTEMPTS_PER_CALLER = 40  # 50 x 40 = 2000 attempts at 1 credit for 1000 credits


async def _tree(tag: str, funds: int) -> tuple[int, int]:
    master = await accounts.create_root_account(name=f"Bench {tag}", slug=f"bench-{tag}")
    child = await accounts.create_sub_account(
        actor=SYSTEM,
        within_account_id=master.id,
        parent_id=master.id,
        name=f"Bench {tag} child",
        slug=f"bench-{tag}-c",
    )
    order = await orders.purchase(master.id, funds, actor=Actor(label="bench"))
    await orders.approve_order(order.id, actor=Actor(label="bench"))
    return master.id, child.id


async def _transfer_rate(callers: int, total: int) -> dict[str, float | int]:
    """`callers` coroutines share `total` allocations of 1 credit (all affordable)."""
    master, child = await _tree(uuid.uuid4().hex[:8], total)
    per_caller = [total // callers + (1 if i < total % callers else 0) for i in range(callers)]

    async def caller(n: int) -> None:
        for _ in range(n):
            await transfers.allocate(
                actor=SYSTEM, within_account_id=master, to_account_id=child, amount=1
            )

    started = time.perf_counter()
    await asyncio.gather(*(caller(n) for n in per_caller))
    seconds = time.perf_counter() - started
    assert await ledger.balance(child) == total and await ledger.balance(master) == 0
    return {
        "callers": callers,
        "transfers": total,
        "seconds": round(seconds, 3),
        "transfers_per_second": round(total / seconds, 1),
    }


async def _race() -> dict[str, int | bool]:
    """50 callers race 2000 one-credit allocations and spends for 1000 credits."""
    master, child = await _tree(uuid.uuid4().hex[:8], RACE_BALANCE)
    succeeded = refused = 0

    async def caller(i: int) -> None:
        nonlocal succeeded, refused
        for j in range(RACE_ATTEMPTS_PER_CALLER):
            try:
                if j % 2:
                    await spending.reserve(
                        master, 1, reference=f"race-{i}-{j}", idempotency_key=f"race-{i}-{j}"
                    )
                else:
                    await transfers.allocate(
                        actor=SYSTEM, within_account_id=master, to_account_id=child, amount=1
                    )
                succeeded += 1
            except InsufficientCredits:
                refused += 1

    await asyncio.gather(*(caller(i) for i in range(CALLERS)))
    final = await ledger.balance(master)
    ledger_ok = final == await ledger.ledger_sum(master) and await ledger.balance(
        child
    ) == await ledger.ledger_sum(child)
    return {
        "attempts": CALLERS * RACE_ATTEMPTS_PER_CALLER,
        "affordable": RACE_BALANCE,
        "succeeded": succeeded,
        "refused": refused,
        "oversells": max(succeeded - RACE_BALANCE, 0) + (1 if final < 0 else 0),
        "final_balance": final,
        "balance_equals_ledger": ledger_ok,
    }


async def main() -> dict[str, object]:
    await migrate()
    await start_pool()
    try:
        single = await _transfer_rate(1, TRANSFERS_SINGLE)
        concurrent = await _transfer_rate(CALLERS, TRANSFERS_CONCURRENT)
        race = await _race()
    finally:
        await close_pool()
    kind = "sqlite" if is_sqlite() else "postgresql"
    return {
        "database": kind,
        "url": database_url().split("@")[-1],
        "pool_size": None if is_sqlite() else get_settings().database.pool_size,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        # Other work on the machine slows every figure; the 1-minute load says how much.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "single_caller": single,
        "concurrent_callers": concurrent,
        "race": race,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    figures = asyncio.run(main())
    kind = str(figures["database"])
    print(
        f"credits bench on {kind} ({figures['url']}), {figures['cpus']} CPUs, "
        f"load average {figures['load_average_1m']}"
    )
    for label in ("single_caller", "concurrent_callers"):
        f = figures[label]
        assert isinstance(f, dict)
        print(
            f"  {f['callers']:>2} caller(s): {f['transfers']} transfers in {f['seconds']} s"
            f" = {f['transfers_per_second']} transfers/s"
        )
    race = figures["race"]
    assert isinstance(race, dict)
    print(
        f"  race: {race['attempts']} attempts for {race['affordable']} credits -> "
        f"{race['succeeded']} succeeded, {race['refused']} refused, oversells {race['oversells']},"
        f" final balance {race['final_balance']}, balance = ledger: {race['balance_equals_ledger']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[kind] = figures
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    print(f"  wrote {RESULTS.relative_to(ROOT)}")
    raise SystemExit(1 if race["oversells"] or not race["balance_equals_ledger"] else 0)
