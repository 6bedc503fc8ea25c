"""Runs Dramatiq workers and the periodic scheduler inside the web process for the
embedded (memory://) broker; both stop within a bounded time when the server stops."""

from __future__ import annotations

import dramatiq
from apscheduler.schedulers.background import BackgroundScheduler

from tasks.actors import register_actors
from tasks.broker import broker
from tasks.scheduler import background_scheduler

# In-flight chunks get this long to finish when the server stops; what is left is
# recovered on the next start (claims expire, the sweep re-dispatches lost work).
STOP_TIMEOUT_MS = 10_000


class InProcessWorkers:
    def __init__(self, threads: int = 4) -> None:
        self.threads = threads
        self.worker: dramatiq.Worker | None = None

    def start(self) -> None:
        register_actors()
        self.worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=100)
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=STOP_TIMEOUT_MS)
            self.worker = None


class InProcessScheduler:
    """The deployment's one scheduler when `portal serve` owns the broker."""

    def __init__(self) -> None:
        self.scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        if self.scheduler is None:
            self.scheduler = background_scheduler()
            self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
