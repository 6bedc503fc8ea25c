"""What quiet hours add to accepting a send: working out, for 100,000 recipients of mixed
countries (+61 landlines and mobiles, +1 area codes, +44, +33), which are held and until
when, against the destination-country lookup every send already does for pricing on the
same numbers (the baseline, measured in the same run). Pure CPU, no database."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")

from tenants.messaging import accept, quiet_hours  # noqa: E402

# (prefix, digits after the +) of valid numbers: AU 11, NANP 11, UK 12, FR 11.
PREFIXES = [
    ("+612", 11), ("+6189", 11), ("+614", 11), ("+1212", 11), ("+1310", 11),
    ("+1613", 11), ("+1800", 11), ("+447", 12), ("+4420", 12), ("+336", 11),
]  # fmt: skip
COUNT = 100_000


def numbers(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(COUNT):
        prefix, digits = rng.choice(PREFIXES)
        rest = digits - (len(prefix) - 1)
        out.append(prefix + "".join(rng.choice("23456789") for _ in range(rest)))
    return out


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    phones = numbers()
    window = quiet_hours.QuietWindow(True, clock_time(9), clock_time(20), frozenset({6}), 1)
    at = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
    utc = ZoneInfo("UTC")
    # Cold (caches empty), then warm (the prefix caches filled, as in a long-running worker).
    cold_baseline = timed(lambda: [accept.destination_country(p) for p in phones])
    cold_quiet = timed(lambda: quiet_hours.hold_until(window, at, phones, utc))
    warm_baseline = timed(lambda: [accept.destination_country(p) for p in phones])
    warm_quiet = timed(lambda: quiet_hours.hold_until(window, at, phones, utc))
    held = quiet_hours.hold_until(window, at, phones, utc)
    result = {
        "recipients": COUNT,
        "held": len(held),
        "distinct_release_times": len(set(held.values())),
        "cold_seconds": {
            "country_lookup": round(cold_baseline, 3),
            "quiet_hours": round(cold_quiet, 3),
        },
        "warm_seconds": {
            "country_lookup": round(warm_baseline, 3),
            "quiet_hours": round(warm_quiet, 3),
        },
        "ratio_quiet_to_country_cold": round(cold_quiet / cold_baseline, 2),
        "ratio_quiet_to_country_warm": round(warm_quiet / warm_baseline, 2),
    }
    print(json.dumps(result, indent=2))
    (ROOT / "bench" / "results" / "quiet_hours.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
