"""Stopping background processes: SIGTERM to a `portal worker`'s process group mid-campaign
ends it within 30 s, a second worker finishes the campaign and the provider simulator saw
every message exactly once; SIGTERM to `portal serve` (either broker) ends it too.

Real processes on Redis (TEST_BROKER_URL when it is Redis, else the local Redis at
REDIS_TEST_URL) and the suite's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.stack import Stack
from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.credits import ledger as credits
from tenants.db import run_sql
from tenants.messaging import accept
from tenants.messaging.messages import FINAL_STATUSES

pytestmark = pytest.mark.slow

MESSAGES = 600
STOP_WITHIN_SECONDS = 30
# Every message is accepted and delivered, once: the counts below are then exact.
DETERMINISTIC = {
    "delivered_rate": 1.0,
    "failed_rate": 0,
    "rejected_rate": 0,
    "read_rate": 0,
    "duplicate_rate": 0,
    "reorder_rate": 0,
}


def redis_url() -> str:
    configured = os.environ.get("TEST_BROKER_URL") or ""
    if configured.startswith("redis"):
        return configured
    return os.environ.get("REDIS_TEST_URL") or "redis://127.0.0.1:6379/15"


def stack_env(broker_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "BROKER_URL": broker_url,
        "BROKER_NAMESPACE": f"portal-stop-{uuid.uuid4().hex[:8]}",
        "SIMULATOR_LATENCY_MS": "20",
        "SIMULATOR_CALLBACK_DELAY_MS": "0",
        # Slow enough that the signal lands mid-campaign (600 segments take about 6 s).
        "RATE_LIMIT_PROVIDER_SEGMENTS": "100",
        "RATE_LIMIT_SENDER_SEGMENTS": "100",
        "CLAIM_LEASE_SECONDS": "15",
        "SWEEP_GRACE_SECONDS": "5",
        "SWEEP_INTERVAL_SECONDS": "1",
    }


async def campaign(count: int) -> tuple[list[int], list[list[int]]]:
    account = await create_root_account(name="Stop Test", slug="stop-test")
    await credits.adjust(account.id, count * 2, reason="shutdown test", actor=SYSTEM)
    result = await accept.accept_send(
        accept.SendRequest(
            account_id=account.id,
            numbers=[f"+61413{n:06d}" for n in range(count)],
            body="Stopped gracefully, sent once",
            campaign_name="SIGTERM",
            permissions=accept.PLATFORM_SEND,
        ),
        actor=SYSTEM,
    )
    ids = [a.message_id for a in result.accepted if a.message_id]
    return ids, [list(c) for c in result.chunks]


def enqueue_chunks(broker_url: str, namespace: str, chunks: list[list[int]]) -> None:
    """Hand the chunks to the stack's Redis broker (this process may use the stub broker)."""
    broker = RedisBroker(url=broker_url, namespace=namespace)
    try:
        for chunk in chunks:
            broker.enqueue(
                dramatiq.Message(
                    queue_name="sending",
                    actor_name="submit_messages",
                    args=(chunk,),
                    kwargs={},
                    options={},
                )
            )
    finally:
        broker.close()


async def statuses() -> dict[str, int]:
    rows = await run_sql("SELECT status, COUNT(*) AS n FROM message GROUP BY status")
    return {r["status"]: int(r["n"]) for r in rows}


def stop(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM the process group; seconds until the process exited (SIGKILL after 30 s)."""
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return float("inf")
    return time.monotonic() - started


def _tail(log: Path, lines: int = 30) -> str:
    """The end of a process's log (which of its processes did not stop, and where)."""
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def test_sigterm_stops_the_worker_and_a_new_worker_sends_each_message_once(
    world, tmp_path: Path
):
    broker_url = redis_url()
    env = stack_env(broker_url)
    ids, chunks = await campaign(MESSAGES)
    assert len(ids) == MESSAGES
    stack = Stack(env, tmp_path / "logs")
    try:
        stack.start_serve()
        stack.configure_simulator(DETERMINISTIC)
        first = stack.start_worker(processes=1, threads=4)
        enqueue_chunks(broker_url, env["BROKER_NAMESPACE"], chunks)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = MESSAGES - (await statuses()).get("enqueued", 0)
            if done >= MESSAGES // 5:
                break
            await asyncio.sleep(0.1)
        assert 0 < done < MESSAGES, f"the signal must land mid-campaign ({done} done)"
        took = stop(first)
        print(f"worker stopped {took:.1f} s after SIGTERM with {done} messages done")
        assert took < STOP_WITHIN_SECONDS, "the worker ignored SIGTERM; its log ends:\n" + _tail(
            tmp_path / "logs" / "worker-0.log"
        )
        assert first.returncode is not None
        stack.start_worker(processes=1, threads=4)
        deadline = time.monotonic() + 120
        final: dict[str, int] = {}
        while time.monotonic() < deadline:
            final = await statuses()
            if sum(n for s, n in final.items() if s in FINAL_STATUSES) == MESSAGES:
                break
            await asyncio.sleep(0.5)
        assert final == {"delivered": MESSAGES}
        submissions = {int(o["message_id"]): int(o["submissions"]) for o in stack.outbox()}  # type: ignore[call-overload]
        assert set(submissions) == set(ids)
        assert set(submissions.values()) == {1}
        assert stack.serve is not None
        assert stop(stack.serve) < STOP_WITHIN_SECONDS, "portal serve ignored SIGTERM"
    finally:
        stack.stop()


async def test_sigterm_stops_serve_running_the_in_process_broker(world, tmp_path: Path):
    env = stack_env("memory://")
    # Work handed to no broker: the in-process scheduler's sweep finds it as lost work.
    env["SWEEP_GRACE_SECONDS"] = "0"
    ids, _ = await campaign(MESSAGES)
    stack = Stack(env, tmp_path / "logs")
    try:
        stack.start_serve()
        stack.configure_simulator(DETERMINISTIC)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = MESSAGES - (await statuses()).get("enqueued", 0)
            if done >= MESSAGES // 5:
                break
            await asyncio.sleep(0.1)
        assert 0 < done < MESSAGES, f"the signal must land mid-campaign ({done} done)"
        assert stack.serve is not None
        assert stop(stack.serve) < STOP_WITHIN_SECONDS, "portal serve ignored SIGTERM"
        assert len(ids) == MESSAGES
    finally:
        stack.stop()


def test_portal_scheduler_sends_the_periodic_actors_and_stops_on_sigterm(tmp_path: Path):
    env = stack_env(redis_url())
    namespace = env["BROKER_NAMESPACE"]
    env["SWEEP_INTERVAL_SECONDS"] = "0.5"
    stack = Stack(env, tmp_path / "logs")
    scheduler = stack._spawn("scheduler", ["scheduler"])
    queued = redis.Redis.from_url(redis_url())
    try:
        deadline = time.monotonic() + 30
        names: list[str] = []
        while time.monotonic() < deadline and len(set(names)) < 4:
            names = [
                json.loads(raw)["actor_name"]
                for raw in queued.hvals(f"{namespace}:periodic.msgs")  # type: ignore[union-attr]
            ]
            time.sleep(0.1)
        assert set(names) == {
            "sweep_outbox",
            "hand_over_webhook_deliveries",
            "release_recurring_runs",
            "resume_list_campaigns",
        }
        assert stop(scheduler) < 5, "portal scheduler ignored SIGTERM"
        assert scheduler.returncode == 0
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait(timeout=10)
        for key in queued.keys(f"{namespace}:*"):  # type: ignore[union-attr]
            queued.delete(key)
        queued.close()
