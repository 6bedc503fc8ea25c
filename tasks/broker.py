"""Chooses the Dramatiq broker from BROKER_URL and sets it before any actor module is
imported; its middleware owns the worker's event loop, database pool and SIGTERM.

`memory://` (default) is an in-process StubBroker that `portal serve` drains with a worker
thread; `redis://` and `amqp://` are the real brokers that `portal worker` processes read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, Middleware

from tenants.db import close_pool, start_pool
from tenants.settings import get_settings

DEFAULT_BROKER_URL = "memory://"
# How long a stopping worker waits for the database pool's in-flight queries.
POOL_CLOSE_SECONDS = 5.0
# A SIGTERM this soon after the first is the same request: sent to the process group,
# each worker process gets it once directly and once relayed by Dramatiq's main process.
REPEATED_SIGNAL_SECONDS = 5.0

log = logging.getLogger("portal.worker")


def broker_url() -> str:
    return get_settings().broker.url


class WorkerLoop(AsyncIO):
    """The event loop of async actors, with the PostgreSQL pool that lives on it.

    An asyncpg pool belongs to one loop: it opens once the loop runs and before the
    worker threads consume (a transaction begun on a fresh connection while the pool
    appears would be released into it: "not a member of this pool"), and it closes after
    the worker threads stopped, before the loop does, so in-flight chunks keep their
    connections until they finish."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        super().before_worker_boot(broker, worker)
        thread = get_event_loop_thread()
        assert thread is not None
        thread.run_coroutine(start_pool())

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        thread = get_event_loop_thread()
        if thread is not None:
            try:
                thread.run_coroutine(asyncio.wait_for(close_pool(), POOL_CLOSE_SECONDS))
            except Exception:  # a stuck connection must not keep the process alive
                log.exception("the database pool did not close cleanly")
        super().after_worker_shutdown(broker, worker)


class SignalOnce(Middleware):
    """In `portal worker` processes, one SIGTERM means one graceful stop.

    Dramatiq's worker process treats a second SIGTERM as "kill now" and calls sys.exit
    from the signal handler; the event loop thread then keeps the interpreter alive, so a
    SIGTERM to the process group (which arrives twice) left the worker up for minutes.
    A repeat within REPEATED_SIGNAL_SECONDS is ignored; a later one ends the process at
    once with os._exit (the claims it held expire and are looked up before a resend).

    Only Dramatiq's CLI emits `process_boot` after the middleware is installed, so the
    web process (uvicorn owns its signals there) and test workers are left alone."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        graceful = signal.getsignal(signal.SIGTERM)
        first: list[float] = []

        def on_sigterm(signum: int, frame: FrameType | None) -> Any:
            if not first:
                first.append(time.monotonic())
                if callable(graceful):
                    return graceful(signum, frame)
                return None
            if time.monotonic() - first[0] < REPEATED_SIGNAL_SECONDS:
                return None
            log.warning("second SIGTERM: exiting without waiting for in-flight work")
            os._exit(1)

        signal.signal(signal.SIGTERM, on_sigterm)


def make_broker(url: str) -> dramatiq.Broker:
    scheme = urlparse(url).scheme
    broker: dramatiq.Broker
    if scheme == "memory":
        broker = StubBroker()
        broker.emit_after("process_boot")
    elif scheme in ("redis", "rediss"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, namespace=get_settings().broker.namespace)
    elif scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        raise ValueError(
            f"BROKER_URL: unsupported scheme {scheme!r} (memory://, redis://, amqp://)"
        )
    broker.add_middleware(WorkerLoop())
    broker.add_middleware(SignalOnce())
    return broker


def is_in_process(broker: dramatiq.Broker) -> bool:
    return isinstance(broker, StubBroker)


broker = make_broker(broker_url())
dramatiq.set_broker(broker)
