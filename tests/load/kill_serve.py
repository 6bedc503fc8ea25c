"""Fault script: kill -9 `portal serve` on the embedded stack mid-send and check that every
message ends final within the window and none is submitted twice.

The embedded stack is one `portal serve` with the in-process broker (its workers and the
scheduler run inside it) on a database file. The provider simulator runs apart
(`portal simulator`, SIMULATOR_URL), as a real provider would: what it received, and the
callbacks it still owes, outlive the crash, so its outbox counts every submission.

The script creates an account with credits and an API key, posts one send of 2,000
recipients to `POST /api/v1/messages`, kills serve's process group with SIGKILL once the
simulator has received part of them, starts serve again on the same database and waits
until every message is final. Short windows (lease, sweep grace, no-report window) keep
it within a minute. It prints the figures and writes them to bench/results/kill_serve.json.
By hand (a fresh SQLite file in a temporary folder unless FAULT_DATABASE_URL names one):

    PYTHONPATH=. .venv/bin/python tests/load/kill_serve.py

tests/load/test_kill_serve.py runs the same on the suite's database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _WORK = Path(tempfile.mkdtemp(prefix="portal-kill-serve-"))
    os.environ["DATABASE_URL"] = (
        os.environ.get("FAULT_DATABASE_URL") or f"sqlite:///{_WORK / 'portal.db'}"
    )
    os.environ["BROKER_URL"] = "memory://"
    os.environ["DATA_DIR"] = str(_WORK / "data")
    os.environ.setdefault("SECRET_KEY", "kill-serve-secret")

from bench.stack import Stack
from tenants.access import apikeys
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger
from tenants.db import run_sql
from tenants.messaging.messages import FINAL_STATUSES, REFUNDED_STATUSES
from tenants.schema import migrate

MESSAGES = int(os.environ.get("FAULT_MESSAGES") or 2_000)
KILL_AT = 0.3  # share of the messages the simulator has received when serve is killed
# Every message is final this long after serve is back (the windows below plus margin).
FINAL_WITHIN_SECONDS = 60.0
RESULTS = ROOT / "bench" / "results" / "kill_serve.json"
# The default mix (some fail, some are rejected, duplicate and reordered reports), seeded.
SIMULATOR = {"seed": 20}
# Messages whose submission is counted but not answered yet: a provider call in flight.
IN_FLIGHT = (
    "SELECT COUNT(*) AS n FROM message WHERE account_id = {} "
    "AND status = 'enqueued' AND submit_attempts > 0"
)


def stack_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BROKER_URL": "memory://",
        "BROKER_NAMESPACE": f"portal-kill-serve-{uuid.uuid4().hex[:8]}",
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "kill-serve-secret",
        # A slow answer: the kill lands while a submission is in flight, which the simulator
        # records but the portal never hears about (found again by lookup, not resent).
        "SIMULATOR_LATENCY_MS": "300",
        # Reports come a while after submission: at the kill many messages are `sent` and
        # still owed their reports, which must reach the restarted portal.
        "SIMULATOR_CALLBACK_DELAY_MS": "1500",
        # About 8 s for the whole send, so the kill lands in the middle of it.
        "RATE_LIMIT_PROVIDER_SEGMENTS": "250",
        "RATE_LIMIT_SENDER_SEGMENTS": "250",
        # Short windows: work the killed process held is taken back within seconds.
        "CLAIM_LEASE_SECONDS": "5",
        "SWEEP_GRACE_SECONDS": "3",
        "SWEEP_INTERVAL_SECONDS": "1",
        "NO_REPORT_WINDOW_SIMULATOR_SECONDS": "10",
    }


@dataclass
class Figures:
    # `apart`: the simulator outlives the kill, as a provider would. `inside`: the simulator
    # is serve's own mount and dies with it (the demo's setup): the reports it owed are lost
    # (the no-report window settles those) and its outbox after the restart is a new one,
    # so the submission counts are left out.
    simulator: str = "apart"
    messages: int = 0
    submitted_before_kill: int = 0
    statuses_at_kill: dict[str, int] = field(default_factory=dict)
    in_flight_at_kill: int = 0  # submission counted, provider's answer not recorded
    restart_seconds: float = 0.0  # from the kill until serve answers again
    all_final_seconds: float = 0.0  # from serve answering again until every message is final
    final_statuses: dict[str, int] = field(default_factory=dict)
    submitted: int = 0  # message ids the simulator received
    submitted_twice: int = 0  # message ids it received more than once
    never_submitted: int = 0  # accepted, not refused by the platform, and never received
    claimed_again: int = 0  # messages with more than one submission attempt
    # Found at the provider instead of being submitted again (a message in flight at the
    # kill may instead be settled first by its report, which the simulator still posts).
    reconciled_by_lookup: int = 0
    no_delivery_report: int = 0  # failed with NO_DELIVERY_REPORT (no report, lookup silent)
    credits_initial: int = 0
    credits_left: int = 0
    credits_expected: int = 0  # initial minus the cost of the messages not refunded

    def problems(self) -> list[str]:
        found = []
        not_final = {s: n for s, n in self.final_statuses.items() if s not in FINAL_STATUSES}
        if not_final or sum(self.final_statuses.values()) != self.messages:
            found.append(f"not final: {not_final}")
        if self.all_final_seconds > FINAL_WITHIN_SECONDS:
            found.append(f"final only after {self.all_final_seconds:.1f} s")
        if self.simulator == "apart" and self.submitted_twice:
            found.append(f"{self.submitted_twice} submitted more than once")
        if self.simulator == "apart" and self.never_submitted:
            found.append(f"{self.never_submitted} never submitted")
        if self.credits_left != self.credits_expected:
            found.append(f"credits {self.credits_left}, expected {self.credits_expected}")
        if not 0 < self.submitted_before_kill < self.messages:
            found.append(f"the kill missed the send ({self.submitted_before_kill} submitted)")
        return found


async def create_sender(credits: int) -> tuple[int, tuple[str, str]]:
    """An account with credits and a Sender API key (key id, secret)."""
    account = await create_root_account(name="Kill Serve", slug=f"kill-{uuid.uuid4().hex[:6]}")
    await ledger.adjust(account.id, credits, reason="kill -9 serve", actor=SYSTEM)
    key = await apikeys.create_api_key(
        actor=SYSTEM, account_id=account.id, name="kill -9", role="Sender"
    )
    return account.id, (key.key_id, key.secret)


def send(stack: Stack, auth: tuple[str, str], count: int) -> list[int]:
    response = httpx.post(
        f"{stack.base_url}/api/v1/messages",
        json={
            "to": [f"+61414{n:06d}" for n in range(count)],
            "body": "Killed mid-send: final once, sent once",
        },
        auth=auth,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        timeout=120,
    )
    response.raise_for_status()
    return [int(a["message_id"]) for a in response.json()["accepted"]]


async def statuses(account_id: int) -> dict[str, int]:
    rows = await run_sql(
        "SELECT status, COUNT(*) AS n FROM message WHERE account_id = {} GROUP BY status",
        account_id,
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def count(sql: str, account_id: int) -> int:
    """`sql` selects one number `n` for the account named by its one placeholder."""
    return int((await run_sql(sql, account_id))[0]["n"] or 0)


def submissions(stack: Stack) -> dict[int, int]:
    return {int(o["message_id"]): int(o["submissions"]) for o in stack.outbox()}  # type: ignore[call-overload]


async def run(
    database_url: str, work_dir: Path, messages: int = MESSAGES, *, simulator: str = "apart"
) -> Figures:
    figures = Figures(simulator=simulator, messages=messages, credits_initial=messages * 2)
    account_id, auth = await create_sender(figures.credits_initial)
    stack = Stack(stack_env(database_url, work_dir / "data"), work_dir / "logs")
    try:
        if simulator == "apart":
            stack.start_simulator()
            stack.configure_simulator(SIMULATOR)
        serve = stack.start_serve()
        if simulator == "inside":
            stack.configure_simulator(SIMULATOR)
        ids = send(stack, auth, messages)
        if len(ids) != messages:
            raise RuntimeError(f"{len(ids)} of {messages} accepted")
        deadline = time.monotonic() + 60
        received = 0
        while time.monotonic() < deadline:
            received = len(stack.outbox())
            if received >= messages * KILL_AT and await count(IN_FLIGHT, account_id):
                break
            await asyncio.sleep(0.05)
        stack.kill9(serve)
        killed_at = time.monotonic()
        figures.statuses_at_kill = await statuses(account_id)
        figures.in_flight_at_kill = await count(IN_FLIGHT, account_id)
        if simulator == "apart":
            await asyncio.sleep(0.5)  # the simulator finishes what it was given
            received = len(stack.outbox())
        figures.submitted_before_kill = received
        print(
            f"kill -9 serve ({simulator}) at {received} submitted: {figures.statuses_at_kill}",
            flush=True,
        )
        stack.start_serve()
        back_at = time.monotonic()
        if simulator == "inside":
            stack.configure_simulator(SIMULATOR)
        figures.restart_seconds = round(back_at - killed_at, 1)
        while time.monotonic() < back_at + FINAL_WITHIN_SECONDS * 2:
            final = await statuses(account_id)
            if sum(n for s, n in final.items() if s in FINAL_STATUSES) == messages:
                break
            await asyncio.sleep(0.25)
        figures.all_final_seconds = round(time.monotonic() - back_at, 1)
        figures.final_statuses = await statuses(account_id)
        seen = submissions(stack)
    finally:
        stack.stop()
    if simulator == "apart":
        figures.submitted = len(seen)
        figures.submitted_twice = sum(1 for n in seen.values() if n > 1)
        refused = {
            int(r["id"])
            for r in await run_sql(
                "SELECT id FROM message WHERE account_id = {} AND status = 'enqueued_failed'",
                account_id,
            )
        }
        figures.never_submitted = len(set(ids) - set(seen) - refused)
    figures.claimed_again = await count(
        "SELECT COUNT(*) AS n FROM message WHERE account_id = {} AND submit_attempts > 1",
        account_id,
    )
    figures.reconciled_by_lookup = await count(
        "SELECT COUNT(*) AS n FROM message_event WHERE account_id = {} "
        "AND source = 'platform' AND status = 'sent'",
        account_id,
    )
    figures.no_delivery_report = await count(
        "SELECT COUNT(*) AS n FROM message WHERE account_id = {} "
        "AND error_code = 'NO_DELIVERY_REPORT'",
        account_id,
    )
    refunded = ", ".join(f"'{s}'" for s in sorted(REFUNDED_STATUSES))
    spent = await count(
        "SELECT SUM(cost) AS n FROM message WHERE account_id = {} "  # noqa: S608 (constants only)
        f"AND status NOT IN ({refunded})",
        account_id,
    )
    figures.credits_expected = figures.credits_initial - spent
    figures.credits_left = await ledger.balance(account_id)
    return figures


async def main() -> int:
    await migrate()
    database_url = os.environ["DATABASE_URL"]
    runs: dict[str, dict[str, object]] = {}
    failed = 0
    for simulator in ("apart", "inside"):
        work_dir = Path(tempfile.mkdtemp(prefix=f"portal-kill-serve-{simulator}-"))
        figures = await run(database_url, work_dir, simulator=simulator)
        runs[simulator] = asdict(figures)
        print(f"--- simulator {simulator}", flush=True)
        for name, value in asdict(figures).items():
            print(f"{name:>24}: {value}", flush=True)
        for problem in figures.problems():
            print(f"FAILED: {problem}", flush=True)
        failed += bool(figures.problems())
    RESULTS.write_text(
        json.dumps({"database": database_url.split(":", 1)[0], "runs": runs}, indent=2) + "\n"
    )
    print(f"{2 - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
