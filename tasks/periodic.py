"""The periodic outbox job (release due scheduled sends, re-dispatch lost work), run in a
thread of `portal serve` and of each `portal worker` process. Every step is a conditional
UPDATE, so any number of processes may run it at the same time."""

from __future__ import annotations

import asyncio
import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware

from tenants.messaging import outbox as dispatch
from tenants.settings import get_settings

log = logging.getLogger("portal.sweeper")


def sweep_interval() -> float:
    return get_settings().sending.sweep_interval_seconds


async def sweep_once() -> int:
    """One pass: returns how many chunks were handed to the broker."""
    from tasks.customer_webhooks import dispatch_pending
    from tasks.sending import dispatch_chunks

    chunks = dispatch_chunks(await dispatch.sweep())
    # Customer webhook deliveries written by any path (and those whose work was lost).
    await dispatch_pending()
    return chunks


class OutboxSweeper:
    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval if interval is not None else sweep_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox-sweeper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from tenants.db import close_pool, start_pool

        await start_pool()
        try:
            while not self._stop.is_set():
                try:
                    chunks = await sweep_once()
                    if chunks:
                        log.info("sweeper handed %d chunks to the broker", chunks)
                except Exception:  # the next pass retries; a failing pass must not end the job
                    log.exception("outbox sweep failed")
                # Short sleeps: a stop request ends the loop within a fraction of a second.
                waited = 0.0
                while waited < self.interval and not self._stop.is_set():
                    await asyncio.sleep(0.2)
                    waited += 0.2
        finally:
            await close_pool()


class SweeperMiddleware(Middleware):
    """Starts the sweeper in `portal worker` processes (PORTAL_SWEEPER=1, set by the CLI)."""

    def __init__(self) -> None:
        self.sweeper: OutboxSweeper | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if get_settings().broker.run_sweeper and self.sweeper is None:
            self.sweeper = OutboxSweeper()
            self.sweeper.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None
