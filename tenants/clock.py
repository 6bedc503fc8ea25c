"""The one clock of the domain (UTC, timezone-aware), so tests can reason about time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
