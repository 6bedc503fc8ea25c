"""kill -9 of `portal serve` on the embedded stack (in-process broker, the suite's database)
mid-send: every message ends final within the window, none is submitted twice, a
submission in flight at the kill is found by lookup instead of being sent again, and the
credits add up. The figures: tests/load/kill_serve.py (run by hand, it writes them to
bench/results/kill_serve.json)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.load.kill_serve import run

pytestmark = pytest.mark.slow


async def test_kill_9_of_serve_mid_send_leaves_every_message_final_and_sent_once(
    tmp_path: Path,
):
    figures = await run(os.environ["DATABASE_URL"], tmp_path, messages=2_000)
    print(asdict(figures))
    assert figures.problems() == []
    assert figures.in_flight_at_kill > 0, "the kill must land while a submission is in flight"
    assert figures.submitted == figures.messages
    assert figures.submitted_twice == 0


async def test_kill_9_of_serve_with_its_own_simulator_leaves_nothing_stuck_in_sent(
    tmp_path: Path,
):
    """The demo's setup: the simulator dies with serve, and with it every report it owed.
    The messages left `sent` are asked about after the no-report window and end `failed`
    with NO_DELIVERY_REPORT (not refunded: the provider took them)."""
    figures = await run(os.environ["DATABASE_URL"], tmp_path, messages=2_000, simulator="inside")
    print(asdict(figures))
    assert figures.problems() == []
    assert figures.statuses_at_kill.get("sent", 0) > 0
    assert figures.no_delivery_report > 0
