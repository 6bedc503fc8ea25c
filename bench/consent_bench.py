"""Consent filtering throughput: phones per second through filter_recipients.

Seeds one account tree with opt-outs and suppressions, then filters 100k raw phone
numbers (national format, so every one is parsed) and 100k E.164 numbers. Prints the
figures and writes bench/results/consent.json. Uses DATABASE_URL (a temporary SQLite file
by default)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='consent-bench-')}/bench.db"

from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.consent.filter import FILTER_CHUNK, filter_recipients
from tenants.db import DB, pool
from tenants.phones import _parse
from tenants.schema import migrate, wipe_all_data

N = int(os.environ.get("CONSENT_BENCH_PHONES") or 100_000)
OPTED_OUT_EVERY = 50
RUNS = 3


async def main() -> dict[str, object]:
    async with pool():
        await migrate()
        await wipe_all_data()
        master = await accounts.create_root_account(name="Bench", slug="bench")
        branch = await accounts.create_sub_account(
            actor=SYSTEM,
            within_account_id=master.id,
            parent_id=master.id,
            name="Branch",
            slug="bench-branch",
        )
        phones = [f"+61412{i:06d}" for i in range(N)]
        await consent_events.record_opt_outs_bulk(
            master.id, phones[::OPTED_OUT_EVERY], "sms", source="import", batch="bench"
        )
        national = [p.replace("+61", "0") for p in phones]
        queries = 0
        original = DB.run_querystring

        async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal queries
            queries += 1
            return await original(*args, **kwargs)

        DB.run_querystring = counting  # type: ignore[method-assign]
        results: dict[str, object] = {}
        for label, batch in (("national_format", national), ("e164", phones)):
            best = float("inf")
            for _ in range(RUNS):
                _parse.cache_clear()  # measure parsing, not the cache
                queries = 0
                start = time.perf_counter()
                allowed, skipped = await filter_recipients(branch.id, batch, "sms")
                best = min(best, time.perf_counter() - start)
            results[label] = {
                "phones": len(batch),
                "allowed": len(allowed),
                "skipped": len(skipped),
                "seconds": round(best, 3),
                "phones_per_second": round(len(batch) / best),
                "queries": queries,
            }
        DB.run_querystring = original  # type: ignore[method-assign]
        results |= {
            "database": DB.engine_type,
            "python": platform.python_version(),
            "chunk": FILTER_CHUNK,
            "runs": RUNS,
        }
        await wipe_all_data()
        return results


if __name__ == "__main__":
    figures = asyncio.run(main())
    out = ROOT / "bench" / "results" / "consent.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for key in ("national_format", "e164"):
        f = figures[key]
        assert isinstance(f, dict)
        print(
            f"{key:16} {f['phones']} phones in {f['seconds']} s = {f['phones_per_second']} "
            f"phones/s, {f['queries']} queries ({figures['database']})"
        )
    print(f"written to {out.relative_to(ROOT)}")
