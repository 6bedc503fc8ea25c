"""Inbound routing throughput on the demo tree: messages routed per second (a mix of plain
replies, JOIN keywords with their list/opt-in/auto-reply actions, and STOP with its
confirmation), then the same provider ids again (duplicates): first one caller at a time
(the same-run baseline: every message routed alone), then IN_FLIGHT callers at once, as
a provider's concurrent callbacks are (grouped into shared transactions).

    .venv/bin/python bench/inbound_bench.py [N [IN_FLIGHT]]   # default N=1000, 16
    DATABASE_URL=postgresql://... .venv/bin/python bench/inbound_bench.py

Without DATABASE_URL a fresh SQLite file in a temporary folder is used. Beside each rate:
the load average, the statements per message (counted at the driver) and this process's
CPU per message, which together say what limits it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tenants.messaging.accept import PLATFORM_SEND

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/inbound-bench.db")
os.environ.setdefault("BROKER_URL", "memory://")
os.environ.setdefault("SECRET_KEY", "bench-secret")


async def _seeded(n: int) -> tuple[dict[str, int], list[str]]:
    from tenants.audit.record import SYSTEM
    from tenants.credits import ledger
    from tenants.demo import seed_demo
    from tenants.messaging import accept as sending
    from tenants.schema import migrate, wipe_all_data

    await migrate()
    await wipe_all_data()
    ids = await seed_demo()
    for slug in ("northwind", "sydney", "melbourne", "melbourne-events"):
        await ledger.adjust(ids[slug], 20 * n, reason="bench credits", actor=SYSTEM)
    phones = [f"+614{12000000 + i:08d}" for i in range(2 * n)]
    # Melbourne Events writes to a quarter of the phones first, so their replies and
    # STOPs route by "last messaged".
    await sending.accept_send(
        sending.SendRequest(
            account_id=ids["melbourne-events"],
            numbers=phones[: n // 4] + phones[n : n + n // 4],
            body="Hello from Melbourne Events",
            sender="+61480000001",
            permissions=PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    return ids, phones


def _plan(phones: list[str], prefix: str) -> list[tuple[str, str, str, str]]:
    plan = []
    for i, phone in enumerate(phones):
        if i % 4 == 0:
            plan.append((f"{prefix}-{i}", phone, "+61480000000", "join"))
        elif i % 4 == 1:
            plan.append((f"{prefix}-{i}", phone, "+61480000001", "Stop "))
        else:
            plan.append((f"{prefix}-{i}", phone, "+61480000001", "see you at 5"))
    return plan


NOT_COUNTED = re.compile(
    r"\s*(PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START TRANSACTION|RESET|UNLISTEN"
    r"|CLOSE|SELECT pg_advisory_unlock_all)",
    re.I,
)


@contextmanager
def _counted(seen: list[int]) -> Iterator[None]:
    """Statements sent to the driver inside the block (as tests/pages/test_query_budget.py
    counts them: transaction control aside), added up in seen[0]."""
    import aiosqlite
    import asyncpg

    patched: list[tuple[type, str, Any]] = []

    def counting(cls: type, name: str) -> None:
        real = getattr(cls, name)

        def wrapper(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not NOT_COUNTED.match(query):
                seen[0] += 1
            return real(self, query, *args, **kwargs)

        patched.append((cls, name, real))
        setattr(cls, name, wrapper)

    for name in ("execute", "execute_fetchall", "executemany"):
        counting(aiosqlite.Connection, name)
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        counting(asyncpg.connection.Connection, name)
    counting(asyncpg.connection.Connection, "copy_records_to_table")
    try:
        yield
    finally:
        for cls, name, real in reversed(patched):
            setattr(cls, name, real)


async def _drive(plan: list[tuple[str, str, str, str]], in_flight: int) -> dict[str, Any]:
    """Route the plan with `in_flight` callers at once, then the same ids again."""
    from tenants.messaging import inbound

    routes: dict[str, int] = {}
    groups = inbound.inbound_groups()
    written = groups.groups_written

    async def caller(queue: Iterator[tuple[str, str, str, str]], duplicate: bool) -> None:
        for ref, phone, to, body in queue:
            result = await inbound.route_inbound(ref, phone, to, body)
            assert result.duplicate is duplicate, (ref, result)
            if not duplicate:
                routes[result.route] = routes.get(result.route, 0) + 1

    figures: dict[str, Any] = {"in_flight": in_flight}
    for label, duplicate in (("routed", False), ("duplicates", True)):
        queue = iter(plan)
        seen = [0]
        started, cpu = time.perf_counter(), time.process_time()
        with _counted(seen):
            await asyncio.gather(*(caller(queue, duplicate) for _ in range(in_flight)))
        seconds = time.perf_counter() - started
        figures[f"{label}_per_second"] = round(len(plan) / seconds, 1)
        figures[f"{label}_load_average_1m"] = round(os.getloadavg()[0], 2)
        # What limits the rate: statements and this process's CPU (its threads included)
        # per message.
        figures[f"{label}_statements_per_message"] = round(seen[0] / len(plan), 2)
        figures[f"{label}_cpu_ms_per_message"] = round(
            1000 * (time.process_time() - cpu) / len(plan), 2
        )
    figures["routes"] = dict(sorted(routes.items()))
    figures["groups_written"] = groups.groups_written - written
    return figures


async def main(n: int, in_flight: int) -> dict[str, object]:
    from tenants.db import pool

    async with pool():
        _, phones = await _seeded(n)
        # The same-run baseline: one caller at a time (no group ever has company).
        alone = await _drive(_plan(phones[:n], "one"), 1)
        grouped = await _drive(_plan(phones[n:], "many"), in_flight)
    return {
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "messages": n,
        "one_in_flight": alone,
        "grouped": grouped,
        "grouped_of_one_in_flight": round(
            grouped["routed_per_second"] / alone["routed_per_second"], 2
        ),
        # The figures scale with the machine's spare capacity: say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    figures = asyncio.run(main(count, in_flight))
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / f"inbound_{figures['database']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
