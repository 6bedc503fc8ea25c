"""Runs Dramatiq workers inside the web process for the embedded (memory://) broker."""

from __future__ import annotations

import dramatiq

from tasks.broker import broker


class InProcessWorkers:
    def __init__(self, threads: int = 4) -> None:
        self.threads = threads
        self.worker: dramatiq.Worker | None = None

    def start(self) -> None:
        import tasks.actors  # noqa: F401  (declares the actors on the broker)

        self.worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=100)
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
