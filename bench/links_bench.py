"""Short link redirects per second, SQLite and PostgreSQL in one run, against a static
file served by the same `portal serve` process (the baseline: what the process answers
with no database work at all).

    .venv/bin/python bench/links_bench.py            # SQLite temp file + BENCH_PG_URL (wiped)
    BENCH_SECONDS=5 BENCH_CONCURRENCY=16 ...         # length of each phase, clients in flight

Each database gets the schema, the demo data and BENCH_LINKS short links (written by the
code every tracked send runs); then one `portal serve` answers, in turn, GET
/static/portal.css and GET /l/<code> (rotating codes, an iPhone user agent) for
BENCH_SECONDS each, from BENCH_CONCURRENCY concurrent keep-alive clients in this process.
The click rows counted afterwards must equal the redirects answered. Prints the figures
and writes bench/results/links.json. The load generator shares the machine's cores with
the server, so compare the ratio to the static baseline, not the absolute figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS") or 8)
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY") or 16)
LINKS = int(os.environ.get("BENCH_LINKS") or 5000)
PG_URL = os.environ.get("BENCH_PG_URL") or "postgresql://postgres@127.0.0.1:5432/wt_links"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
RESULTS = ROOT / "bench" / "results" / "links.json"


async def seed() -> None:
    """In a child process with DATABASE_URL set: schema, demo data, LINKS short links;
    prints their codes as JSON."""
    from tenants.accounts.tree import get_account_by_slug
    from tenants.db import DB, is_sqlite, pool
    from tenants.demo import seed_demo
    from tenants.links import links
    from tenants.schema import migrate

    async with pool():
        if not is_sqlite():
            await DB.run_ddl("DROP SCHEMA public CASCADE")
            await DB.run_ddl("CREATE SCHEMA public")
        await migrate()
        await seed_demo()
        account = await get_account_by_slug("sydney")
        new = [
            links.NewLink(i + 1, links.new_code(), f"https://shop.example/item/{i}")
            for i in range(LINKS)
        ]
        await links.write_links(account.id, 1, None, new, expires_at=None)
    print(json.dumps([link.code for link in new]))


async def hammer(base_url: str, paths: list[str], expect: int) -> dict[str, float]:
    """CONCURRENCY clients asking for `paths` in turn for SECONDS; requests per second."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + SECONDS
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        n = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            r = await client.get(paths[n % len(paths)], headers={"User-Agent": IPHONE})
            latencies.append(time.perf_counter() - started)
            if r.status_code != expect:
                errors += 1
            n += CONCURRENCY

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        for path in paths[:CONCURRENCY]:  # warm up: connections, caches
            await client.get(path)
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(client, i) for i in range(CONCURRENCY)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
        "errors": errors,
    }


def clicks_in(url: str) -> int:
    code = (
        "import asyncio\nfrom tenants.db import pool\nfrom tenants.links.tables import LinkClick\n"
        "async def main():\n    async with pool():\n        print(await LinkClick.count())\n"
        "asyncio.run(main())"
    )
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def run_one(name: str, url: str, log_dir: Path) -> dict[str, object]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "SECRET_KEY": "bench"}
    seeded = subprocess.run(
        [sys.executable, __file__, "--seed"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"seeding {name} failed:\n{seeded.stderr[-2000:]}")
    codes = json.loads(seeded.stdout.strip().splitlines()[-1])
    stack = Stack({"DATABASE_URL": url, "SECRET_KEY": "bench"}, log_dir / name)
    try:
        stack.start_serve()
        static = asyncio.run(hammer(stack.base_url, ["/static/portal.css"], 200))
        redirect = asyncio.run(hammer(stack.base_url, [f"/l/{c}" for c in codes], 302))
    finally:
        stack.stop()
    clicks = clicks_in(url)
    warm_ups = min(CONCURRENCY, len(codes))
    result: dict[str, object] = {
        "static_file": static,
        "redirect": redirect,
        "redirect_to_static": round(redirect["per_second"] / static["per_second"], 3),
        "clicks_recorded": clicks,
        "clicks_expected": redirect["requests"] + warm_ups,
    }
    print(
        f"{name:<11} static {static['per_second']:>8}/s (p95 {static['p95_ms']} ms)   "
        f"redirect {redirect['per_second']:>8}/s (p95 {redirect['p95_ms']} ms)   "
        f"ratio {result['redirect_to_static']}   clicks {clicks} of {result['clicks_expected']}"
    )
    return result


def main() -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="links-bench-"))
    sqlite_url = f"sqlite:///{log_dir}/bench.db"
    results: dict[str, object] = {
        "seconds_per_phase": SECONDS,
        "concurrency": CONCURRENCY,
        "links": LINKS,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    for name, url in (("sqlite", sqlite_url), ("postgresql", PG_URL)):
        results[name] = run_one(name, url, log_dir)
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--seed"]:
        asyncio.run(seed())
    else:
        main()
