"""Transactions and what follows them: work is handed to the background only once the
transaction that wrote it commits, and a deadlock victim runs again whole."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import asyncpg
import pytest

from tenants import handoff
from tenants.db import retrying_deadlocks, transaction


class Recorder:
    def __init__(self) -> None:
        self.submitted: list[list[int]] = []
        self.webhook_calls = 0

    def submit(self, message_ids: Sequence[int]) -> None:
        self.submitted.append(list(message_ids))

    async def deliver_webhooks(self) -> None:
        self.webhook_calls += 1


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    handoff.install(r)
    yield r
    handoff.install(None)


async def test_chunks_go_after_commit_and_webhooks_once(recorder: Recorder) -> None:
    async with transaction():
        await handoff.outbox_written([[1, 2], [3]])
        async with transaction():  # nested: joins the outer one
            await handoff.outbox_written([[4]])
            await handoff.webhooks_queued()
        await handoff.webhooks_queued()
        assert recorder.submitted == [] and recorder.webhook_calls == 0
    assert recorder.submitted == [[1, 2], [3], [4]]
    assert recorder.webhook_calls == 1


async def test_a_rollback_hands_nothing_over(recorder: Recorder) -> None:
    with pytest.raises(RuntimeError):
        async with transaction():
            await handoff.outbox_written([[1]])
            await handoff.webhooks_queued()
            raise RuntimeError("refused")
    assert recorder.submitted == [] and recorder.webhook_calls == 0


async def test_outside_a_transaction_it_goes_at_once(recorder: Recorder) -> None:
    await handoff.outbox_written([[7]])
    assert recorder.submitted == [[7]]


async def test_a_deadlock_victim_runs_again_whole() -> None:
    attempts: list[int] = []

    async def work() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return "done"

    assert await retrying_deadlocks(work) == "done"
    assert len(attempts) == 3


async def test_a_deadlock_inside_an_open_transaction_is_the_outer_ones_to_handle() -> None:
    attempts: list[int] = []

    async def work() -> None:
        attempts.append(1)
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
        async with transaction():
            await retrying_deadlocks(work)
    assert len(attempts) == 1


async def test_other_errors_are_not_retried() -> None:
    attempts: list[int] = []

    async def work() -> None:
        attempts.append(1)
        raise ValueError("not a deadlock")

    with pytest.raises(ValueError):
        await retrying_deadlocks(work)
    assert len(attempts) == 1
