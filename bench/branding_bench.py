"""How much branding adds to each page: resolving an account's effective branding (the
layout does it on every page) and finding the branding of a sign-in host.

Runs on DATABASE_URL (default: a fresh SQLite file in a temporary folder), seeds the demo
data, then times N calls of each. Prints the figures and writes
bench/results/branding.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.db")

from tenants.accounts.tree import get_account_by_slug
from tenants.branding import branding
from tenants.db import database_url, pool
from tenants.demo import seed_demo
from tenants.schema import migrate

CALLS = int(os.environ.get("BENCH_CALLS") or 2000)


async def timed(label: str, call, calls: int = CALLS) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for _ in range(50):  # warm up connections and caches
        await call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    result = {
        "calls": calls,
        "mean_us": round(statistics.fmean(samples), 1),
        "p50_us": round(samples[len(samples) // 2], 1),
        "p95_us": round(samples[int(len(samples) * 0.95)], 1),
    }
    print(
        f"{label:<45} mean {result['mean_us']:>8} µs  p50 {result['p50_us']:>8} µs  p95 {result['p95_us']:>8} µs"
    )
    return result


async def main() -> None:
    async with pool():
        await migrate()
        await seed_demo()
        events = await get_account_by_slug("melbourne-events")
        results = {
            "effective_branding_of (depth 3, per page)": await timed(
                "effective_branding_of melbourne-events",
                lambda: branding.effective_branding_of(events),
            ),
            "effective_branding (loads the account)": await timed(
                "effective_branding(account_id)", lambda: branding.effective_branding(events.id)
            ),
            "branding_for_host (sign-in page)": await timed(
                "branding_for_host('northwind.localhost')",
                lambda: branding.branding_for_host("northwind.localhost:8000"),
            ),
        }
    scheme = database_url().split(":", 1)[0]
    target = ROOT / "bench" / "results" / "branding.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    # One entry per database kind, so a SQLite run and a PostgreSQL run sit side by side.
    out = json.loads(target.read_text()) if target.exists() else {}
    out[scheme] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    target.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"written {target.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
