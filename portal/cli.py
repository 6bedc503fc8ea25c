"""The `portal` command: migrate, demo, serve, simulator, worker, scheduler, create-operator,
apikey."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from tenants import secrets_box
from tenants.settings import SettingsError, export_env, get_settings


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _migrate() -> None:
    from tenants.schema import migrate

    await migrate()


def cmd_migrate(args: argparse.Namespace) -> int:
    _run(_migrate())
    print("migrations applied")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    async def seed() -> dict[str, int]:
        from tenants.demo import seed_demo
        from tenants.schema import migrate, wipe_all_data

        await migrate()
        if args.reset:
            await wipe_all_data()
        return await seed_demo()

    ids = _run(seed())
    print(f"demo data ready: {', '.join(sorted(ids))}")
    print("sign in as owner@northwind.test / demo-pass-123")
    if args.seed_only:
        return 0
    return cmd_serve(args)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from portal.app import create_app
    from tasks.broker import broker, is_in_process

    _run(_migrate())
    # Simulator callbacks and submissions go to this server unless told otherwise.
    export_env("PORTAL_BASE_URL", f"http://{args.host}:{args.port}", replace=False)
    # With the in-process broker this process is the whole deployment, scheduler included;
    # with Redis or RabbitMQ the scheduler is `portal scheduler` / `portal worker --scheduler`.
    in_process = is_in_process(broker)
    workers = max(1, getattr(args, "workers", 1) or 1)
    if workers > 1 and in_process:
        print(
            "--workers N needs BROKER_URL=redis://... or amqp://...: with memory:// one "
            "process is the whole deployment (its queues and scheduler live in it).",
            file=sys.stderr,
        )
        return 2
    print(f"serving on http://{args.host}:{args.port} ({workers} process(es))")
    # Behind a load balancer every request comes from its address: only when its address is
    # trusted does X-Forwarded-For name the client the sign-in throttle counts.
    proxies = get_settings().web.trusted_proxies
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "info",
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }
    if workers > 1:
        # Each process builds its own app (and pools); the sockets are shared by uvicorn.
        uvicorn.run(
            "portal.cli:web_app",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **options,
        )
    else:
        uvicorn.run(create_app(run_workers=in_process, run_scheduler=in_process), **options)
    return 0


# How long uvicorn's supervisor waits for a `--workers N` process to answer its ping. Its
# default (5 s) is shorter than a process takes to start and import the portal on a busy
# machine: it killed each one before it answered and started another, for ever.
WORKER_HEALTHCHECK_SECONDS = 60


def web_app() -> Any:
    """The app of one `portal serve --workers N` process: web only (the broker's workers
    and the scheduler are `portal worker` processes)."""
    from portal.app import create_app

    return create_app()


def cmd_simulator(args: argparse.Namespace) -> int:
    import uvicorn

    from tasks.simulator import simulator_app

    # Its callbacks go where each submission says (the portal's PORTAL_BASE_URL); inbound
    # messages injected here go to this process's PORTAL_BASE_URL.
    print(f"provider simulator on http://{args.host}:{args.port} (SIMULATOR_URL)")
    uvicorn.run(simulator_app, host=args.host, port=args.port, log_level="warning")
    return 0


def _refuse_in_process(command: str) -> int | None:
    from tasks.broker import broker, is_in_process

    if not is_in_process(broker):
        return None
    print(
        f"BROKER_URL is memory:// (in-process): `portal serve` runs the {command} itself. "
        "Set BROKER_URL=redis://... or amqp://... for separate processes.",
        file=sys.stderr,
    )
    return 2


def cmd_worker(args: argparse.Namespace) -> int:
    refused = _refuse_in_process("workers")
    if refused is not None:
        return refused
    from dramatiq.cli import main as dramatiq_main

    # Worker processes read SECRET_KEY from the environment (secrets at rest are keyed
    # from it); pass on the one kept in the data folder when none is set.
    export_env("SECRET_KEY", secrets_box.server_secret(), replace=False)

    sys.argv = [
        "dramatiq",
        # A callable in the broker's place runs in every worker process first.
        "tasks.actors:prepare_worker",
        "tasks.actors",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        # SIGTERM: in-flight chunks get this long to finish, then the rest is requeued.
        "--worker-shutdown-timeout",
        str(int(args.shutdown_timeout * 1000)),
    ]
    if args.scheduler:
        # Dramatiq forks it next to the workers and stops it with them.
        sys.argv += ["--fork-function", "tasks.scheduler:run_scheduler"]
    return int(dramatiq_main() or 0)


def cmd_scheduler(args: argparse.Namespace) -> int:
    refused = _refuse_in_process("scheduler")
    if refused is not None:
        return refused
    import logging

    from tasks.actors import register_actors
    from tasks.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(name)s] %(message)s")
    register_actors()
    return run_scheduler()


def cmd_create_operator(args: argparse.Namespace) -> int:
    async def create() -> int:
        from tenants.access import users
        from tenants.demo import ensure_platform_account
        from tenants.schema import migrate

        await migrate()
        platform = await ensure_platform_account()
        user = await users.create_user(email=args.email, password=args.password, is_operator=True)
        await users.add_membership(user_id=user.id, account_id=platform.id, role="Owner")
        return user.id

    from tenants.errors import ValidationFailed

    try:
        user_id = _run(create())
    except ValidationFailed as exc:
        for field, message in exc.errors.items():
            print(f"{field}: {message}", file=sys.stderr)
        return 2
    print(json.dumps({"user_id": user_id, "email": args.email.strip().lower()}))
    return 0


def cmd_apikey_create(args: argparse.Namespace) -> int:
    async def create():  # type: ignore[no-untyped-def]
        from tenants.access import apikeys
        from tenants.accounts.tree import get_account_by_slug
        from tenants.audit.record import SYSTEM

        account = await get_account_by_slug(args.account)
        return await apikeys.create_api_key(
            actor=SYSTEM, account_id=account.id, name=args.name, role=args.role
        )

    from tenants.errors import NotFound, ValidationFailed

    try:
        key = _run(create())
    except NotFound:
        print(f"account: no account with slug {args.account!r}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        for field, message in exc.errors.items():
            print(f"{field}: {message}", file=sys.stderr)
        return 2
    print(json.dumps({"key_id": key.key_id, "secret": key.secret}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description="SMS Portal")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply all migrations to DATABASE_URL")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("demo", help="migrate, seed the demo data, then serve")
    p.add_argument("--reset", action="store_true", help="wipe all data first")
    p.add_argument("--seed-only", action="store_true", help="seed and exit")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve the portal (and in-process workers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="web processes sharing the port (one per core; needs a Redis or RabbitMQ broker)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "simulator",
        help="run the built-in provider simulator alone (point SIMULATOR_URL at it)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.set_defaults(func=cmd_simulator)

    p = sub.add_parser("worker", help="run Dramatiq workers for the configured broker")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=15.0,
        help="seconds in-flight work gets to finish after SIGTERM (default 15)",
    )
    p.add_argument(
        "--scheduler",
        action="store_true",
        help="also run the deployment's one periodic scheduler (else run `portal scheduler`)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "scheduler", help="send the periodic actors on their intervals (run exactly one)"
    )
    p.set_defaults(func=cmd_scheduler)

    p = sub.add_parser("create-operator", help="create a platform operator")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.set_defaults(func=cmd_create_operator)

    p = sub.add_parser("apikey", help="API keys")
    apisub = p.add_subparsers(dest="apikey_command", required=True)
    c = apisub.add_parser("create", help="create an API key; prints key_id and secret once")
    c.add_argument("--account", required=True, help="account slug")
    c.add_argument("--name", required=True)
    c.add_argument("--role", default="Sender")
    c.set_defaults(func=cmd_apikey_create)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Validate every setting before doing anything: a bad value stops here, named.
        get_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
