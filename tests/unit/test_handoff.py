"""Work is handed to the background only once the transaction that wrote it commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from tenants import handoff
from tenants.db import transaction


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
