"""Chooses the Dramatiq broker from BROKER_URL before any actor module is imported.

`memory://` (default) is an in-process StubBroker that `portal serve` drains with a worker
thread; `redis://` and `amqp://` are the real brokers that `portal worker` processes read.
"""

from __future__ import annotations

from urllib.parse import urlparse

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, Middleware

from tenants.settings import get_settings


def broker_url() -> str:
    return get_settings().broker.url


class DatabasePool(Middleware):
    """Opens the PostgreSQL pool on the worker's event-loop thread (an asyncpg pool
    belongs to one loop) and closes it when the worker stops.

    Before boot, not after: worker threads consume as soon as they start, and a
    transaction begun on a fresh connection while the pool appears would be released
    into the pool ("not a member of this pool"). The AsyncIO middleware, added first,
    has started the loop thread by then."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        from tenants.db import start_pool

        thread = get_event_loop_thread()
        if thread is not None:
            thread.run_coroutine(start_pool())

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        from tenants.db import close_pool

        thread = get_event_loop_thread()
        if thread is not None:
            thread.run_coroutine(close_pool())


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
    broker.add_middleware(AsyncIO())
    broker.add_middleware(DatabasePool())
    return broker


def is_in_process(broker: dramatiq.Broker) -> bool:
    return isinstance(broker, StubBroker)


# Chosen at import on purpose: Dramatiq binds each actor to the broker set when its module
# is imported, so the broker (and BROKER_URL) must be settled before any actor module.
broker = make_broker(broker_url())
dramatiq.set_broker(broker)
