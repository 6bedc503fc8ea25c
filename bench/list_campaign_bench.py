"""A campaign to a list of a million contacts, for the configured DATABASE_URL / BROKER_URL.

Seeds a contact list (bulk insert: COPY on PostgreSQL, executemany on SQLite), starts
`portal serve`, two `portal worker` processes and the simulator in a process of its own,
posts one campaign to the list (POST /api/v1/messages with list_ids: answered at once,
accepted by the workers a chunk at a time), and polls the campaign's progress
(GET /api/v1/campaigns/{id}, read from the batch's counters) until every message is
final. Every second it samples the resident memory of each process of serve and of the
workers and prints the curve; the figures sit beside their same-run baselines (the idle
RSS of the same processes before the campaign, the seed's raw insert rate) and the load
average. At the end the campaign's credits are checked in the database (reserved = spent +
refunded, against the ledger and the messages). Results merge into
bench/results/list_campaign.json under the stack name. BENCH_TIMEOUT_SECONDS (default
5,400) bounds the wait for the send to end.

Measured 2026-12-02 on the shared 2-core box, PostgreSQL + Redis, two workers of one
process and 8 threads, LIST_CHUNK_SIZE 10,000 (load 1.6-15, mean 9.9):
- 1,000,000 contacts (500 opted out): answered in 177 ms; 999,500 accepted in 637 s;
  every message delivered after 973 s (1,028 delivered/s over the run; 600/s while
  accepting, 1,840/s after). Credits exact: 100 chunk reservations, 999,500 reserved =
  999,500 spent + 0 refunded (ledger and messages agree). Peak RSS: serve 132 MiB (idle
  116), workers 119 / 119 MiB (idle 58 / 66), flat from about 600k accepted on.
- 200,000 contacts, same box, same morning: main before these changes needed 210 s for
  the first 39,650 (189/s: the claim and status UPDATEs read the whole status index on a
  message table without statistics), now 194.5 s for all of them.
A worker grows from ~60 MiB to ~118 and then stays there: the E.164 memo (150k numbers at
most, tenants.phones), each chunk's 10,000 contacts and rows, the asyncpg pool's
connections and statement caches. Python objects live at the end of a profiled 40k run
(tracemalloc) grew by 8 MB, the rest is memory the allocator keeps for the next chunk
(MALLOC_ARENA_MAX=2 changes nothing: 110 / 111 MiB at 200k). Not a leak.

    BENCH_CONTACTS=1000000 .venv/bin/python bench/list_campaign_bench.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal_bench \
    BROKER_URL=redis://127.0.0.1:6379/5 .venv/bin/python bench/list_campaign_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONTACTS = int(os.environ.get("BENCH_CONTACTS") or 1_000_000)
OPTED_OUT = int(os.environ.get("BENCH_OPTED_OUT") or 500)
SEED_ROWS = 50_000
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECONDS") or 5_400)
TMP = Path(os.environ.get("BENCH_TMP") or "/tmp/portal-bench-list")
TMP.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP}/list-{uuid.uuid4().hex[:6]}.db")
os.environ.setdefault("BROKER_URL", "redis://127.0.0.1:6379/5")
os.environ.setdefault("BROKER_NAMESPACE", f"portal-bench-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DATA_DIR", str(TMP / "data"))
os.environ.setdefault("SECRET_KEY", "bench-secret")
STACK_ENV = {
    name: os.environ[name]
    for name in ("DATABASE_URL", "BROKER_URL", "BROKER_NAMESPACE", "DATA_DIR", "SECRET_KEY")
}
STACK_ENV.update(
    {
        # Capacity, not policy: the rate limiter is set out of the way.
        "RATE_LIMIT_PROVIDER_SEGMENTS": "1000000",
        "RATE_LIMIT_SENDER_SEGMENTS": "1000000",
        "LIST_CHUNK_SIZE": os.environ.get("LIST_CHUNK_SIZE") or "10000",
    }
)

import httpx

from bench.stack import Stack
from tasks.broker import broker, is_in_process
from tenants.access import apikeys
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.consent import events as consent_events
from tenants.contacts import contacts
from tenants.credits import ledger
from tenants.db import bulk_value, copy_rows, is_sqlite, next_ids, run_sql, transaction
from tenants.schema import migrate


def say(text: str) -> None:
    print(text, flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


CONTACT_COLUMNS = (
    "id", "account_id", "phone", "account_phone", "first_name", "last_name", "email",
    "fields", "created_at", "updated_at",
)  # fmt: skip


async def seed() -> tuple[int, int, tuple[str, str], float]:
    """The account, its list of CONTACTS contacts (OPTED_OUT of them opted out), an API key;
    returns the seed's insert rate (rows per second) as the raw-insert baseline."""
    from datetime import UTC, datetime

    await migrate()
    account = await create_root_account(name="List bench", slug=f"list-{uuid.uuid4().hex[:8]}")
    await ledger.adjust(account.id, CONTACTS * 2, reason="list campaign bench", actor=SYSTEM)
    key = await apikeys.create_api_key(
        actor=SYSTEM, account_id=account.id, name="bench", role="Owner"
    )
    club = await contacts.create_list(actor=SYSTEM, account_id=account.id, name="Everyone")
    stamp = bulk_value(datetime.now(UTC))
    started = time.perf_counter()
    for start in range(0, CONTACTS, SEED_ROWS):
        count = min(SEED_ROWS, CONTACTS - start)
        async with transaction():
            ids = await next_ids("contact", count)
            phones = [f"+6141{n:07d}" for n in range(start, start + count)]
            await copy_rows(
                "contact",
                CONTACT_COLUMNS,
                [
                    (i, account.id, p, f"{account.id}|{p}", f"P{i}", "", "", "{}", stamp, stamp)
                    for i, p in zip(ids, phones, strict=True)
                ],
            )
            members = await next_ids("contact_list_member", count)
            await copy_rows(
                "contact_list_member",
                ("id", "list_id", "contact_id", "key"),
                [(m, club.id, i, f"{club.id}|{i}") for m, i in zip(members, ids, strict=True)],
            )
    rate = 2 * CONTACTS / (time.perf_counter() - started)
    # What autovacuum (PostgreSQL) or PRAGMA optimize (SQLite) does after a bulk import,
    # at once: without statistics both planners take the account_id index as selective.
    await run_sql("ANALYZE contact")
    await run_sql("ANALYZE contact_list_member")
    for n in range(0, CONTACTS, max(1, CONTACTS // max(OPTED_OUT, 1)))[:OPTED_OUT]:
        await consent_events.record_opt_out(account.id, f"+6141{n:07d}", "sms", source="manual")
    return account.id, club.id, (key.key_id, key.secret), rate


def process_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_rss(pgid: int) -> dict[int, float]:
    """RSS of each live process of a process group (a worker forks its processes)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    found[int(entry.name)] = process_rss_mb(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found


def sample(stack: Stack) -> dict[str, float]:
    """The largest process of serve and of each worker, in MiB."""
    out: dict[str, float] = {}
    if stack.serve is not None:
        out["serve"] = round(max(group_rss(stack.serve.pid).values(), default=0.0), 1)
    for n, worker in enumerate(stack.workers):
        out[f"worker-{n}"] = round(max(group_rss(worker.pid).values(), default=0.0), 1)
    return out


async def follow(
    api: httpx.AsyncClient, stack: Stack, campaign_id: int, curve: list[dict[str, object]]
) -> dict[str, object]:
    """Poll the campaign each second until it is final; the RSS curve on the way (kept in
    `curve` as it grows, so an interrupted run still writes what it measured)."""
    started = time.monotonic()
    accepted_at: float | None = None
    while True:
        await asyncio.sleep(1)
        body = (await api.get(f"/api/v1/campaigns/{campaign_id}")).json()
        moment = round(time.monotonic() - started, 1)
        point: dict[str, object] = {
            "t": moment, **sample(stack), "accepted": body["accepted"],
            "final": sum(v for s, v in body["statuses"].items() if s not in ("enqueued", "sent")),
            "load": load(),
        }  # fmt: skip
        curve.append(point)
        if int(moment) % 10 == 0 or body["state"] != "accepting" and accepted_at is None:
            say(f"  {json.dumps(point)}")
        if accepted_at is None and body["state"] != "accepting":
            accepted_at = moment
            say(f"  accepting done at {moment} s: {body['accepted']:,} accepted, "
                f"{body['skipped']:,} skipped {body['skipped_by_reason']}")  # fmt: skip
        if body["state"] in ("finished", "cancelled") or moment > TIMEOUT:
            return {"curve": curve, "accept_seconds": accepted_at, "total_seconds": moment,
                    "progress": body}  # fmt: skip


async def credit_check(account_id: int, batch_id: int) -> dict[str, object]:
    """The campaign's money from the database: what its chunks reserved, what was
    refunded, the ledger's spend and refund rows, and the cost of the messages kept
    (not refunded); `exact` when reserved = spent + refunded on every count."""
    reserved = (
        await run_sql(
            "SELECT COUNT(*) AS chunks, COALESCE(SUM(amount), 0) AS amount, "
            "COALESCE(SUM(refunded), 0) AS refunded FROM credit_reservation WHERE reference = {}",
            f"batch:{batch_id}",
        )
    )[0]
    ledger_rows = await run_sql(
        "SELECT kind, COALESCE(SUM(delta), 0) AS delta FROM credit_ledger "
        "WHERE spender_id = {} AND kind IN ('spend', 'refund') GROUP BY kind",
        account_id,
    )
    ledger_sums = {r["kind"]: int(r["delta"]) for r in ledger_rows}
    kept = await run_sql(
        "SELECT COALESCE(SUM(cost), 0) AS cost, COUNT(*) AS n FROM message "
        "WHERE batch_id = {} AND refunded = {}",
        batch_id,
        False,
    )
    check: dict[str, object] = {
        "reserved": int(reserved["amount"]),
        "refunded": int(reserved["refunded"]),
        "reservations": int(reserved["chunks"]),
        "ledger_spend": -ledger_sums.get("spend", 0),
        "ledger_refund": ledger_sums.get("refund", 0),
        "spent_messages": int(kept[0]["cost"]),
    }
    check["exact"] = (
        check["reserved"] == check["ledger_spend"]
        and check["refunded"] == check["ledger_refund"]
        and int(reserved["amount"]) == int(kept[0]["cost"]) + int(reserved["refunded"])
    )
    return check


def write_results(name: str, results: dict[str, object]) -> None:
    out = ROOT / "bench" / "results" / "list_campaign.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[name] = results
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    say(f"  written to {out.relative_to(ROOT)}")


def summary(run: dict[str, object], idle: dict[str, float]) -> dict[str, object]:
    curve: list[dict[str, object]] = run["curve"]  # type: ignore[assignment]
    peaks = {name: max(float(p.get(name, 0.0)) for p in curve) for name in idle}  # type: ignore[arg-type]
    for name, peak in peaks.items():
        say(f"  peak RSS {name}: {peak:.0f} MiB (idle before the campaign: {idle[name]:.0f} MiB)")
    return {"peak_rss_mb": peaks, "idle_rss_mb": idle}


async def main() -> int:
    if is_in_process(broker):
        raise SystemExit("set BROKER_URL to Redis: the bench measures separate worker processes")
    name = ("sqlite" if is_sqlite() else "postgresql") + "+redis"
    say(f"stack {name}: seeding a list of {CONTACTS:,} contacts (load {load()})...")
    account_id, list_id, (key_id, secret), seed_rate = await seed()
    say(f"  seed raw insert: {seed_rate:,.0f} rows/s (contacts + list members)")
    stack = Stack(STACK_ENV, TMP / "logs")
    results: dict[str, object] = {"stack": name, "contacts": CONTACTS, "opted_out": OPTED_OUT}
    results["seed_rows_per_second"] = round(seed_rate)
    try:
        stack.start_simulator()
        stack.start_serve()
        stack.configure_simulator(
            {"latency_ms": 20, "callback_delay_ms": 200, "delivered_rate": 1.0, "failed_rate": 0,
             "rejected_rate": 0, "read_rate": 0, "duplicate_rate": 0, "reorder_rate": 0}
        )  # fmt: skip
        for _ in range(2):
            stack.start_worker(processes=1, threads=8, scheduler=not stack.workers)
        await asyncio.sleep(5)
        idle = sample(stack)
        async with httpx.AsyncClient(
            base_url=stack.base_url, auth=(key_id, secret), timeout=120
        ) as api:
            started = time.monotonic()
            r = await api.post(
                "/api/v1/messages",
                json={
                    "list_ids": [list_id],
                    "body": "Hi {{first_name}}, spring sale: 20% off.",
                    "campaign_name": "bench",
                },  # fmt: skip
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            r.raise_for_status()
            answer_ms = (time.monotonic() - started) * 1000
            say(f"  POST answered in {answer_ms:.0f} ms: {r.json()} (load {load()})")
            results["curve"] = curve = []
            results["interrupted"] = True  # until follow() returns
            run = await follow(api, stack, int(r.json()["campaign_id"]), curve)
            results["interrupted"] = False
        results.update(answer_ms=round(answer_ms), accept_seconds=run["accept_seconds"])
        results.update(total_seconds=run["total_seconds"], progress=run["progress"])
        accept_seconds = float(run["accept_seconds"] or 0) or 1.0
        rate = CONTACTS / accept_seconds
        results["accepted_per_second"] = round(rate)
        say(f"  accept: {rate:,.0f} contacts/s ({rate / seed_rate:.1%} of the seed's raw rate); "
            f"all final after {run['total_seconds']} s")  # fmt: skip
        results.update(summary(run, idle), load_at_end=load())
        progress: dict[str, object] = run["progress"]  # type: ignore[assignment]
        results["credits"] = await credit_check(account_id, int(progress["batch_id"]))  # type: ignore[call-overload]
        say(f"  credits: {results['credits']} (load {load()})")
    finally:
        stack.stop()
        curve = results.get("curve")
        if results.get("interrupted") and isinstance(curve, list) and curve:
            names = [k for k in curve[-1] if k == "serve" or k.startswith("worker-")]
            results["peak_rss_mb"] = {k: max(float(p.get(k, 0.0)) for p in curve) for k in names}
            say(f"  interrupted after {curve[-1]['t']} s: peak RSS {results['peak_rss_mb']}")
        write_results(name + ("" if CONTACTS >= 1_000_000 else f"-{CONTACTS // 1000}k"), results)
    return 0


if __name__ == "__main__":
    import signal

    # A SIGTERM stops the stack's processes too (the finally above), never orphans them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise SystemExit(asyncio.run(main()))
