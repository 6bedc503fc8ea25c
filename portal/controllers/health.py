"""/healthz: the database answers and a worker answers a ping through the broker."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from litestar import Controller, Response, get

from tenants.platform import health

PING_TIMEOUT_SECONDS = 5.0


async def broker_round_trip(wait_seconds: float | None = None) -> tuple[bool, float]:
    from tasks.health import ping

    token = secrets.token_hex(16)
    started = time.monotonic()
    ping.send(token)
    limit = PING_TIMEOUT_SECONDS if wait_seconds is None else wait_seconds
    while time.monotonic() - started < limit:
        if await health.pong_received(token):
            return True, time.monotonic() - started
        await asyncio.sleep(0.05)
    return False, time.monotonic() - started


class HealthController(Controller):
    @get("/healthz", opt={"public": True}, name="healthz")
    async def healthz(self) -> Response[dict[str, Any]]:
        checks: dict[str, Any] = {}
        try:
            checks["database"] = {"ok": await health.database_ok()}
        except Exception as exc:  # the probe reports any failure rather than raising
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        if checks["database"]["ok"]:
            try:
                ok, seconds = await broker_round_trip()
                checks["broker"] = {"ok": ok, "round_trip_ms": round(seconds * 1000, 1)}
            except Exception as exc:
                checks["broker"] = {"ok": False, "error": type(exc).__name__}
        else:
            checks["broker"] = {"ok": False, "error": "database unavailable"}
        healthy = all(c["ok"] for c in checks.values())
        return Response(
            content={"status": "ok" if healthy else "unavailable", "checks": checks},
            status_code=200 if healthy else 503,
        )
