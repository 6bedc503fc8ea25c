"""What rich sends add to accepting a send, on a scratch SQLite database (or DATABASE_URL):
accept_send for N recipients (medians of interleaved rounds after one warm-up) as plain SMS (the baseline, measured in the same run), as free
WhatsApp text (the customer service window looked up for every recipient, half of them
inside it) and as an RCS card (one rich-content row per message). Prints milliseconds per
send and the ratio to the SMS baseline, and writes bench/results/rich.json.

    /work/main/.venv/bin/python bench/rich_bench.py            # N=5000, 3 rounds
    BENCH_RECIPIENTS=20000 /work/main/.venv/bin/python bench/rich_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = Path(tempfile.mkdtemp(prefix="rich-bench-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_TMP}/bench.db")
os.environ["BROKER_URL"] = "memory://"
os.environ["DATA_DIR"] = str(_TMP / "data")
os.environ.setdefault("SECRET_KEY", "bench-secret")
RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS") or 5000)
ROUNDS = int(os.environ.get("BENCH_ROUNDS") or 3)
SENDER = "+61480000099"


async def main() -> dict[str, float]:
    from tenants.accounts.tree import create_root_account
    from tenants.audit.record import SYSTEM
    from tenants.credits import ledger
    from tenants.messaging import accept
    from tenants.messaging.tables import Message
    from tenants.numbers import numbers
    from tenants.rich.content import Card, RichRequest, Suggestion
    from tenants.schema import migrate

    await migrate()
    account = await create_root_account(name="Bench", slug="bench")
    await ledger.adjust(account.id, 10_000_000, reason="bench", actor=SYSTEM)
    await numbers.add_number(
        actor=SYSTEM, owner_account_id=account.id, number=SENDER, kind="long_code"
    )
    phones = [f"+614{10_000_000 + i:08d}" for i in range(RECIPIENTS)]
    # Half of them wrote on WhatsApp within the day: inside the window.
    for start in range(0, RECIPIENTS // 2, 500):
        await Message.insert(
            *[
                Message(account_id=account.id, direction="in", to_number=SENDER, from_number=p,
                        body="hi", channel="whatsapp", status="incoming_message")
                for p in phones[start : min(start + 500, RECIPIENTS // 2)]
            ]
        )  # fmt: skip
    card = Card("Your table", "Show this at the door", "https://cdn.example.com/t.png",
                (Suggestion("reply", "On my way"),), "Table ready")  # fmt: skip
    cases = {
        "sms_text": dict(channel="sms", body="Hello there"),
        "whatsapp_text_window": dict(channel="whatsapp", body="Hello there"),
        "rcs_card": dict(channel="rcs", rich=RichRequest(card=card)),
    }
    figures: dict[str, float] = {}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    # Rounds interleave the cases, so warm-up and a busy machine weigh on each alike.
    for _ in range(ROUNDS + 1):
        for name, extra in cases.items():
            req = accept.SendRequest(
                account_id=account.id, numbers=phones, sender=SENDER,
                permissions=accept.PLATFORM_SEND, **extra,  # type: ignore[arg-type]
            )  # fmt: skip
            start = time.perf_counter()
            result = await accept.accept_send(req, actor=SYSTEM)
            samples[name].append(time.perf_counter() - start)
            assert result.accepted, name
    for name, seconds in samples.items():
        figures[f"{name}_ms"] = round(statistics.median(seconds[1:]) * 1000, 1)  # first: warm-up
    base = figures["sms_text_ms"]
    for name in ("whatsapp_text_window", "rcs_card"):
        figures[f"{name}_ratio_to_sms"] = round(figures[f"{name}_ms"] / base, 2)
    return figures


if __name__ == "__main__":
    results = asyncio.run(main())
    results["recipients"] = RECIPIENTS
    for key, value in results.items():
        print(f"{key}: {value}")
    out = ROOT / "bench" / "results" / "rich.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
