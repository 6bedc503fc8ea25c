"""Statements per signed-in page: each page of the demo tree requested through the app in
this process, every SQL statement the request runs counted (PRAGMA, BEGIN and COMMIT
aside) and the repeated ones (same statement, same arguments) listed. SQLite only (it counts at aiosqlite's execute).

    PYTHONPATH=. .venv/bin/python bench/page_queries.py [/path ...]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='page-queries-')}/pages.db"
os.environ.setdefault("BROKER_URL", "memory://")
os.environ.setdefault("SECRET_KEY", "bench-secret")

import aiosqlite
from litestar.testing import AsyncTestClient

from portal.app import create_app
from tenants.demo import DEMO_PASSWORD, seed_demo
from tenants.schema import migrate

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
PAGES = ["/", "/messages", "/campaigns", "/contacts", "/credits"]
statements: list[str] = []
_execute = aiosqlite.Connection.execute
_execute_fetchall = aiosqlite.Connection.execute_fetchall


def _seen(sql: str, parameters: object) -> None:
    if not re.match(r"\s*(PRAGMA|BEGIN|COMMIT|ROLLBACK)", sql, re.I):
        text = re.sub(r"\s+", " ", sql)[:100]
        statements.append(f"{text} {list(parameters or [])[:4]}")  # type: ignore[call-overload]


def counting(self, sql, parameters=None):  # type: ignore[no-untyped-def]
    _seen(sql, parameters)
    return _execute(self, sql, parameters)


def counting_fetchall(self, sql, parameters=None):  # type: ignore[no-untyped-def]
    _seen(sql, parameters)
    return _execute_fetchall(self, sql, parameters)


async def main(pages: list[str]) -> dict[str, object]:
    await migrate()
    await seed_demo()
    aiosqlite.Connection.execute = counting  # type: ignore[method-assign]
    aiosqlite.Connection.execute_fetchall = counting_fetchall  # type: ignore[method-assign]
    figures: dict[str, object] = {}
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as client:
        token = CSRF.search((await client.get("/login")).text).group(1)  # type: ignore[union-attr]
        data = {"_csrf_token": token, "email": "owner@northwind.test", "password": DEMO_PASSWORD}
        await client.post("/login", data=data, follow_redirects=False)
        for page in pages:
            await client.get(page)  # warm
            statements.clear()
            answer = await client.get(page)
            repeats = {sql: n for sql, n in Counter(statements).items() if n > 1}
            figures[page] = {
                "status": answer.status_code,
                "statements": len(statements),
                "repeated": repeats,
            }
            print(f"{page:12s} {answer.status_code} {len(statements):3d} statements")
            for sql, n in repeats.items():
                print(f"    x{n} {sql}")
    return figures


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1:] or PAGES))
    out = ROOT / "bench" / "results" / "page_queries.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
