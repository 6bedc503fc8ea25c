"""The scheduler: APScheduler sends each periodic actor's message on its interval.

Exactly one runs per deployment: inside `portal serve` with the in-process broker; as
`portal scheduler` (or `portal worker --scheduler`) with Redis or RabbitMQ. It only sends
messages, so it holds no database connection and stops at once; workers do the work.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from types import FrameType

import dramatiq
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from tasks.periodic import schedule

log = logging.getLogger("portal.scheduler")
# How often the main thread of `portal scheduler` looks for a stop signal.
SIGNAL_POLL_SECONDS = 0.2


def _send(actor: dramatiq.Actor) -> None:  # type: ignore[type-arg]
    actor.send()


def add_periodic_jobs(scheduler: BaseScheduler) -> BaseScheduler:
    """One interval job per periodic actor; the first tick comes right away. A tick
    missed while the process was busy is run once, not once per missed interval."""
    for actor, seconds in schedule():
        scheduler.add_job(
            _send,
            "interval",
            args=(actor,),
            id=actor.actor_name,
            seconds=seconds,
            next_run_time=datetime.now(UTC) + timedelta(milliseconds=100),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(seconds)),
        )
    return scheduler


def background_scheduler() -> BackgroundScheduler:
    """For `portal serve` (in-process broker): a thread; stop it with shutdown()."""
    scheduler = add_periodic_jobs(BackgroundScheduler(timezone=UTC))
    assert isinstance(scheduler, BackgroundScheduler)
    return scheduler


def run_scheduler() -> int:
    """Run in the foreground until SIGTERM or SIGINT (`portal scheduler`, and the process
    `portal worker --scheduler` forks next to its workers).

    The signal handler only notes the signal: stopping a scheduler takes locks (APScheduler's
    BlockingScheduler.shutdown sets an Event), and a handler runs on the main thread between
    two bytecodes, perhaps while that thread holds the very lock, which then never comes
    free (a worker that hung on SIGTERM, once in many runs). The scheduler runs on its own
    thread; the main thread sleeps until a signal arrived and then stops it."""
    scheduler = background_scheduler()
    received: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)  # a group SIGTERM arrives twice in a forked scheduler

    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    log.info("scheduler running: %s", ", ".join(job.id for job in scheduler.get_jobs()))
    scheduler.start()
    while not received:
        time.sleep(SIGNAL_POLL_SECONDS)
    log.info("stopping the scheduler")
    scheduler.shutdown(wait=False)
    log.info("scheduler stopped")
    return 0
