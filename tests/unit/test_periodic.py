"""Periodic work as actors a scheduler sends: two schedulers (or two deliveries of one
tick) never hand a message or a webhook delivery over twice; the scheduler sends every
periodic actor on its interval; importing tasks modules only defines actors."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks import customer_webhooks as webhook_actors
from tasks import periodic, scheduler
from tasks.actors import register_actors
from tenants import handoff
from tenants.audit.record import SYSTEM
from tenants.messaging import messages
from tenants.messaging.messages import StatusReport
from tenants.messaging.tables import Batch, Message
from tenants.webhooks import deliveries
from tests.unit.test_delivery import make_outbox

ROOT = Path(__file__).resolve().parents[2]
# The coroutine functions themselves (an async actor's `fn` runs them on the worker's loop).
sweep_outbox = periodic.sweep_outbox.fn.__wrapped__  # type: ignore[attr-defined]
hand_over = periodic.hand_over_webhook_deliveries.fn.__wrapped__  # type: ignore[attr-defined]


async def test_two_sweeps_at_once_dispatch_each_lost_or_released_message_once(world, monkeypatch):
    account = world.accounts["alpha"]
    _, lost = await make_outbox(account, [f"+6140000000{i}" for i in range(5)])
    old = datetime.now(UTC) - timedelta(hours=1)
    await Message.update({Message.dispatched_at: old}).where(Message.id.is_in(lost))
    batch_id, scheduled = await make_outbox(account, ["+61400000010"], state="scheduled")
    await Batch.update({Batch.send_at: old}).where(Batch.id == batch_id)
    handed: list[int] = []

    class Record:
        def submit(self, message_ids):
            handed.extend(message_ids)

        async def deliver_webhooks(self):
            return None

    handoff.install(Record())
    runs = await asyncio.gather(sweep_outbox(), sweep_outbox())
    assert sorted(handed) == sorted([*lost, *scheduled])  # each message once
    assert sum(runs) >= 2  # the scheduled batch and the lost work
    assert await sweep_outbox() == 0
    assert sorted(handed) == sorted([*lost, *scheduled])


async def test_two_webhook_hand_overs_at_once_send_each_delivery_once(world, monkeypatch):
    alpha = world.accounts["alpha"]
    await deliveries.add_subscription(
        SYSTEM, account_id=alpha, url="https://hooks.example.com/s", events=("status",)
    )
    _, ids = await make_outbox(alpha, ["+61400000001", "+61400000002", "+61400000003"])
    await messages.ingest_status_reports(
        [StatusReport(i, "sent", datetime.now(UTC), None, f"r{i}", f"e{i}") for i in ids]
    )
    sent: list[int] = []
    monkeypatch.setattr(webhook_actors, "send_delivery", sent.append)
    runs = await asyncio.gather(hand_over(), hand_over())
    assert sum(runs) == 3 and len(sent) == 3 and len(set(sent)) == 3
    assert await hand_over() == 0


def test_the_scheduler_sends_every_periodic_actor_on_its_interval(monkeypatch, settings_env):
    settings_env(SWEEP_INTERVAL_SECONDS="0.2")
    sent: list[str] = []
    for actor, _ in periodic.schedule():
        monkeypatch.setattr(actor, "send", lambda name=actor.actor_name: sent.append(name))
    running = scheduler.background_scheduler()
    running.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            sent.count("sweep_outbox") < 3 or sent.count("hand_over_webhook_deliveries") < 3
        ):
            time.sleep(0.05)
    finally:
        running.shutdown(wait=True)
    assert sent.count("sweep_outbox") >= 3
    assert sent.count("hand_over_webhook_deliveries") >= 3
    assert sent.count("release_recurring_runs") >= 1
    after = len(sent)
    time.sleep(0.5)
    assert len(sent) == after  # stopped: nothing is sent any more


def test_actors_are_registered_explicitly_and_stay_thin():
    names = {actor.actor_name for actor in register_actors()}
    assert names == {
        "ping",
        "send_invitation_email",
        "submit_messages",
        "deliver_webhook_event",
        "sweep_outbox",
        "hand_over_webhook_deliveries",
        "keep_inbound_message_media",
        "release_recurring_runs",
        "accept_list_campaign",
        "resume_list_campaigns",
    }
    for actor in register_actors():
        source = inspect.getsource(actor.fn)
        body = source.split('"""')[-1] if '"""' in source else source.split(":\n", 1)[1]
        lines = [line for line in body.splitlines() if line.strip()]
        assert len(lines) <= 15, f"{actor.actor_name} has {len(lines)} lines"


def test_importing_tasks_modules_starts_nothing_and_installs_no_middleware():
    # tasks.broker sets the broker up (its middleware; the stub broker's time-limit
    # thread); importing the actor modules and the scheduler adds nothing to that.
    probe = (
        "import threading\n"
        "from tasks.broker import broker\n"
        "before = [type(m).__name__ for m in broker.middleware]\n"
        "threads = threading.active_count()\n"
        "import tasks.sending, tasks.periodic, tasks.customer_webhooks, tasks.scheduler\n"
        "import tasks.actors\n"
        "after = [type(m).__name__ for m in broker.middleware]\n"
        "print(before == after, threading.active_count() - threads, ','.join(after))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BROKER_URL": "memory://"},
        check=True,
    )
    same, threads, middleware = result.stdout.split()
    assert same == "True" and threads == "0"
    assert "WorkerLoop" in middleware.split(",") and "SignalOnce" in middleware.split(",")
