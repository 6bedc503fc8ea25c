"""Inbound routing throughput on the demo tree: messages routed per second (a mix of plain
replies, JOIN keywords with their list/opt-in/auto-reply actions, and STOP with its
confirmation), then the same provider ids again (duplicates).

    .venv/bin/python bench/inbound_bench.py [N]      # default N=1000
    DATABASE_URL=postgresql://... .venv/bin/python bench/inbound_bench.py

Without DATABASE_URL a fresh SQLite file in a temporary folder is used.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tenants.messaging.accept import PLATFORM_SEND

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/inbound-bench.db")
os.environ.setdefault("BROKER_URL", "memory://")
os.environ.setdefault("SECRET_KEY", "bench-secret")


async def main(n: int) -> dict[str, object]:
    from tenants.audit.record import SYSTEM
    from tenants.credits import ledger
    from tenants.db import pool
    from tenants.demo import seed_demo
    from tenants.messaging import accept as sending
    from tenants.messaging import inbound
    from tenants.schema import migrate, wipe_all_data

    async with pool():
        await migrate()
        await wipe_all_data()
        ids = await seed_demo()
        for slug in ("northwind", "sydney", "melbourne", "melbourne-events"):
            await ledger.adjust(ids[slug], 10 * n, reason="bench credits", actor=SYSTEM)
        phones = [f"+614{12000000 + i:08d}" for i in range(n)]
        # Melbourne Events writes to a quarter of the phones first, so their replies and
        # STOPs route by "last messaged".
        await sending.accept_send(
            sending.SendRequest(
                account_id=ids["melbourne-events"],
                numbers=phones[: n // 4],
                body="Hello from Melbourne Events",
                sender="+61480000001",
                permissions=PLATFORM_SEND,
            ),
            actor=SYSTEM,
        )
        plan = []
        for i, phone in enumerate(phones):
            if i % 4 == 0:
                plan.append((f"b-{i}", phone, "+61480000000", "join"))
            elif i % 4 == 1:
                plan.append((f"b-{i}", phone, "+61480000001", "Stop "))
            else:
                plan.append((f"b-{i}", phone, "+61480000001", "see you at 5"))
        routes: dict[str, int] = {}
        started = time.perf_counter()
        for ref, phone, to, body in plan:
            result = await inbound.route_inbound(ref, phone, to, body)
            routes[result.route] = routes.get(result.route, 0) + 1
        routed = time.perf_counter() - started
        started = time.perf_counter()
        for ref, phone, to, body in plan:
            assert (await inbound.route_inbound(ref, phone, to, body)).duplicate
        duplicates = time.perf_counter() - started
    return {
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "messages": n,
        "routes": dict(sorted(routes.items())),
        "routed_per_second": round(n / routed, 1),
        "duplicates_per_second": round(n / duplicates, 1),
        # The figures scale with the machine's spare capacity: say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    figures = asyncio.run(main(count))
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / f"inbound_{figures['database']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
