"""How fast the live composer answers: `compose()` alone, and POST /composer/count through
the whole app (session, guard, render) on a scratch SQLite database. The counter fires at
most every 150 ms per typing user, so its cost per request bounds how many people can type
at once on one process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_TMP = Path(tempfile.mkdtemp(prefix="composer-bench-"))
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP}/bench.db"
os.environ["BROKER_URL"] = "memory://"
os.environ["DATA_DIR"] = str(_TMP / "data")
os.environ.setdefault("SECRET_KEY", "bench-secret")

TEXTS = {
    "gsm_160": "Hi there, your appointment is confirmed for Tuesday at 10:30. Reply STOP to opt out. "
    * 2,
    "ucs2_mixed_612": (
        "Hi {{first_name|there}} 👋 it’s confirmed — see you at {{time}} 👩‍👩‍👧 " * 9
    ),
    "gsm_1600": "a" * 1590 + "{[]}€",
}


def _median_us(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


async def _http(rounds: int) -> dict[str, float]:
    from litestar.testing import AsyncTestClient

    from portal.app import create_app
    from tenants.access import users
    from tenants.accounts.tree import create_root_account
    from tenants.schema import migrate

    await migrate()
    account = await create_root_account(name="Bench", slug="bench")
    user = await users.create_user(email="bench@bench.test", password="bench-password-1")
    await users.add_membership(user_id=user.id, account_id=account.id, role="Sender")
    figures: dict[str, float] = {}
    async with AsyncTestClient(app=create_app(), base_url="http://127.0.0.1") as client:
        page = await client.get("/login")
        token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
        await client.post(
            "/login",
            data={
                "_csrf_token": token,
                "email": "bench@bench.test",
                "password": "bench-password-1",
            },
        )
        page = await client.get("/composer")
        token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
        for name, text in TEXTS.items():
            data = {"_csrf_token": token, "composer_id": "body", "body": text}
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                response = await client.post(
                    "/composer/count", data=data, headers={"HX-Request": "true"}
                )
                samples.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
            figures[name] = statistics.median(samples) * 1000
    return figures


def main() -> None:
    from tenants.templates.composer import compose

    logging.getLogger("httpx").setLevel(logging.WARNING)
    results: dict[str, dict[str, float]] = {"compose_us": {}, "http_ms": {}}
    for name, text in TEXTS.items():
        results["compose_us"][name] = round(_median_us(lambda t=text: compose(t), 300), 1)
    results["http_ms"] = {k: round(v, 2) for k, v in asyncio.run(_http(150)).items()}
    for kind, figures in results.items():
        for name, value in figures.items():
            print(f"{kind:11} {name:16} {value:>9}")
    out = ROOT / "bench" / "results" / "composer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
