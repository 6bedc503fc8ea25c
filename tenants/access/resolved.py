"""What a signed-in request resolves before its page (the session, the person, the grants,
the branding chain, the account switcher), kept per process while the database's
cache_version counter stands (tenants.memo holds what is kept).

Triggers bump the counter in the same transaction as any write to those tables (an
account's balance aside), so a request that reads the counter first and finds the value
its memo was filled under sees exactly what it would have read: one cheap statement
instead of six, with invalidation that holds across every `portal serve` process."""

from __future__ import annotations

from tenants.db import run_sql
from tenants.memo import forget, remembered

__all__ = ["forget", "read_version", "remembered", "renew"]


async def read_version() -> int | None:
    """The counter now (None when its row is missing: nothing is then remembered)."""
    rows = await run_sql("SELECT n FROM cache_version WHERE id = 1")
    return int(rows[0]["n"]) if rows else None


async def renew(seen: int | None) -> None:
    """After the database went back to an older state (a test's snapshot restored): set
    the counter past `seen` (read before) and past itself, so no process answers from
    what it kept of another state, and drop this process's memo."""
    floor = seen or 0
    await run_sql(
        "UPDATE cache_version SET n = CASE WHEN n > {} THEN n ELSE {} END + 1 WHERE id = 1",
        floor,
        floor,
    )
    forget()
