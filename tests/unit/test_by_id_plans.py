"""Statements that find messages by id and only check their status (a claim, a status
move) keep to the primary key whatever the planner's statistics say."""

from __future__ import annotations

import pytest

from tenants.db import filter_only, is_sqlite, run_sql, transaction


async def test_filter_only_keeps_the_rows_the_condition_keeps():
    rows = await run_sql(
        "SELECT v FROM (SELECT 1 AS v UNION ALL SELECT 2 UNION ALL SELECT NULL) AS t "  # noqa: S608 (constants only)
        f"WHERE {filter_only('v <> {}')} ORDER BY v",
        2,
    )
    assert [r["v"] for r in rows] == [1]  # 2 fails the condition, NULL is not TRUE


@pytest.mark.skipif(is_sqlite(), reason="the PostgreSQL planner's choice")
async def test_without_statistics_the_status_check_stays_off_the_status_index():
    """A table never analysed (a campaign just wrote it): PostgreSQL takes the status as
    rare and ANDs the whole status index with the ids; as a filter, only the ids' index."""
    ids = ", ".join(str(n) for n in range(1, 101))
    async with transaction():
        await run_sql(
            "CREATE TEMP TABLE probe (id INTEGER PRIMARY KEY, status VARCHAR(20), v INTEGER) "
            "ON COMMIT DROP"
        )
        await run_sql("CREATE INDEX probe_status ON probe (status)")
        await run_sql(
            "INSERT INTO probe SELECT g, 'enqueued', 0 FROM generate_series(1, 50000) AS g"
        )

        async def plan(condition: str) -> str:
            rows = await run_sql(
                f"EXPLAIN UPDATE probe SET v = 1 WHERE id IN ({ids}) AND {condition}"  # noqa: S608 (constants only)
            )
            return "\n".join(str(next(iter(r.values()))) for r in rows)

        assert "probe_status" in await plan("status = 'enqueued'")
        kept = await plan(filter_only("status = 'enqueued'"))
        assert "probe_status" not in kept
        assert "probe_pkey" in kept
