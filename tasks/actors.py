"""The one list of actor modules. Importing a module in tasks/ only defines its actors on
the broker that tasks.broker set; workers (and `portal serve`) import this list."""

from __future__ import annotations

import dramatiq

from tasks import (
    customer_webhooks,
    health,
    inbound_media,
    list_campaigns,
    mail,
    periodic,
    sending,
)
from tasks.broker import broker

ACTOR_MODULES = (
    health,
    mail,
    sending,
    customer_webhooks,
    periodic,
    inbound_media,
    list_campaigns,
)


def register_actors() -> list[dramatiq.Actor]:  # type: ignore[type-arg]
    """Every actor of the portal, declared on the broker (the modules above are imported
    once, here); a worker calls this before it consumes. Work the worker's own
    transactions write (statuses that queue webhooks) is handed to the same broker."""
    sending.install_handoff()
    return [broker.get_actor(name) for name in sorted(broker.get_declared_actors())]


def prepare_worker() -> None:
    """Dramatiq's CLI calls this in each worker process before it consumes (`portal
    worker` names it as the broker, `tasks.actors:prepare_worker`): the actors are declared
    and the broker hand-off installed, so statuses and sweeps that a worker's own
    transactions write reach the queues."""
    register_actors()
