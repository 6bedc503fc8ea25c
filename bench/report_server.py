"""`portal serve` for benchmarks, plus one bare route (`GET /bench/bare`, no database, no
template) so a bench can print each figure beside the cost of the framework alone, served
by the same process in the same run. The portal itself is unchanged: same app, same
settings, same in-process workers and scheduler with the memory broker.

    PYTHONPATH=. .venv/bin/python -m bench.report_server --port 8123
"""

from __future__ import annotations

import argparse

import uvicorn
from litestar import Litestar, get

from portal.app import create_app
from portal.cli import WORKER_HEALTHCHECK_SECONDS, _migrate, _run
from tasks.broker import broker, is_in_process
from tenants.settings import export_env


@get("/bench/bare", opt={"public": True}, media_type="text/plain", sync_to_thread=False)
def bare() -> str:
    return "ok"


def web_app() -> Litestar:
    """One process of `--workers N`: web only, as `portal serve --workers N` runs it."""
    app = create_app()
    app.register(bare)
    return app


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    _run(_migrate())
    export_env("PORTAL_BASE_URL", f"http://{args.host}:{args.port}", replace=False)
    options = {"host": args.host, "port": args.port, "log_level": "warning", "proxy_headers": False}
    if args.workers > 1:
        # Pages only: the broker's workers (if any) are not these processes' business.
        uvicorn.run(
            "bench.report_server:web_app",
            factory=True,
            workers=args.workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **options,
        )
        return 0
    in_process = is_in_process(broker)
    app = create_app(run_workers=in_process, run_scheduler=in_process)
    app.register(bare)
    uvicorn.run(app, **options)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
