"""What a bulk action on the contacts list costs per contact, against the same-run baseline
of doing it one contact at a time through the single-contact services (what a person
without bulk actions does, one edit or delete a contact).

Runs on DATABASE_URL (default: a fresh SQLite file in a temporary folder): seeds one
account with BENCH_CONTACTS contacts, then times a bulk tag, untag, add to list and delete
of all of them ("select all matching"), and BENCH_BASELINE contacts tagged and deleted one
by one. Prints µs per contact and the load average, writes bench/results/contacts_bulk.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.db")

from tenants.accounts.tree import create_root_account
from tenants.audit.record import SYSTEM
from tenants.contacts import bulk, contacts
from tenants.contacts.tables import Contact
from tenants.db import database_url, pool
from tenants.schema import migrate

CONTACTS = int(os.environ.get("BENCH_CONTACTS") or 20_000)
BASELINE = int(os.environ.get("BENCH_BASELINE") or 200)


async def _seed(account_id: int, count: int, first: str, start: int) -> list[int]:
    ids: list[int] = []
    for offset in range(0, count, 1000):
        rows = await Contact.insert(
            *[
                Contact(
                    account_id=account_id,
                    phone=f"+614{start + n:08d}",
                    account_phone=f"{account_id}|+614{start + n:08d}",
                    first_name=first,
                )
                for n in range(offset, min(offset + 1000, count))
            ]
        ).returning(Contact.id)
        ids.extend(r["id"] for r in rows)
    return ids


def _load() -> float:
    return round(os.getloadavg()[0], 2)


async def _bulk(account_id: int, action: str, **extra: object) -> dict[str, float]:
    request = bulk.BulkRequest(
        action=action, selection=bulk.Selection(all_matching=True, q="Bulk"), **extra
    )  # type: ignore[arg-type]
    started = time.perf_counter()
    result = await bulk.apply_bulk_action(actor=SYSTEM, account_id=account_id, request=request)
    seconds = time.perf_counter() - started
    assert result.selected == CONTACTS, result
    return {
        "contacts": CONTACTS,
        "seconds": round(seconds, 3),
        "us_per_contact": round(seconds * 1e6 / CONTACTS, 1),
        "load_average": _load(),
    }


async def _one_by_one(account_id: int, ids: list[int], action: str) -> dict[str, float]:
    started = time.perf_counter()
    for contact_id in ids:
        if action == "tag":
            c = await contacts.get_contact(account_id, contact_id)
            await contacts.update_contact(
                actor=SYSTEM,
                account_id=account_id,
                contact_id=contact_id,
                phone=c.phone,
                first_name=c.first_name,
                tags=[*c.tags, "vip"],
            )
        else:
            await contacts.delete_contact(
                actor=SYSTEM, account_id=account_id, contact_id=contact_id
            )
    seconds = time.perf_counter() - started
    return {
        "contacts": len(ids),
        "seconds": round(seconds, 3),
        "us_per_contact": round(seconds * 1e6 / len(ids), 1),
        "load_average": _load(),
    }


def _show(label: str, bulk_figure: dict[str, float], baseline: dict[str, float] | None) -> None:
    line = (
        f"{label:<22} {bulk_figure['us_per_contact']:>9} µs/contact "
        f"({bulk_figure['contacts']} in {bulk_figure['seconds']} s, load {bulk_figure['load_average']})"
    )
    if baseline:
        line += (
            f"  baseline one by one {baseline['us_per_contact']} µs/contact"
            f" (load {baseline['load_average']})"
        )
    print(line)


async def main() -> None:
    async with pool():
        await migrate()
        account = await create_root_account(name="Bench", slug="bench-contacts")
        await _seed(account.id, CONTACTS, "Bulk", 0)
        singles = await _seed(account.id, BASELINE, "Single", 50_000_000)
        listed = await contacts.create_list(actor=SYSTEM, account_id=account.id, name="All")
        base_tag = await _one_by_one(account.id, singles, "tag")
        results = {
            "tag": await _bulk(account.id, "tag", tag="vip"),
            "untag": await _bulk(account.id, "untag", tag="vip"),
            "add_to_list": await _bulk(account.id, "add_to_list", list_id=listed.id),
            "remove_from_list": await _bulk(account.id, "remove_from_list", list_id=listed.id),
        }
        base_delete = await _one_by_one(account.id, singles, "delete")
        results["delete"] = await _bulk(account.id, "delete")
        results["baseline_tag_one_by_one"] = base_tag
        results["baseline_delete_one_by_one"] = base_delete
    for action in ("tag", "untag", "add_to_list", "remove_from_list", "delete"):
        baseline = {"tag": base_tag, "delete": base_delete}.get(action)
        _show(f"bulk {action}", results[action], baseline)
    scheme = database_url().split(":", 1)[0]
    target = ROOT / "bench" / "results" / "contacts_bulk.json"
    out = json.loads(target.read_text()) if target.exists() else {}
    out[scheme] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    target.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"written {target.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
