"""`portal worker` hands Dramatiq's CLI a callable in the broker's place: each worker
process declares the actors and installs the broker hand-off before it consumes."""

from __future__ import annotations

import os
import subprocess
import sys

from portal import cli

PROBE = """
from dramatiq.cli import import_broker
from tenants import handoff
assert not handoff._installed, "nothing is installed on import"
import_broker(sys.argv[1])
assert handoff._installed, "the hand-off is installed"
from tasks.broker import broker
assert "accept_list_campaign" in broker.get_declared_actors()
print("ok")
"""


def test_the_worker_broker_argument_installs_the_handoff(tmp_path, monkeypatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(cli, "_refuse_in_process", lambda command: None)
    monkeypatch.setattr("dramatiq.cli.main", lambda: seen.extend(sys.argv) or 0)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    parser = cli.build_parser()
    assert cli.cmd_worker(parser.parse_args(["worker"])) == 0
    broker_argument = seen[1]
    assert broker_argument == "tasks.actors:prepare_worker"
    env = dict(os.environ, BROKER_URL="memory://", DATA_DIR=str(tmp_path))
    code = "import sys\n" + PROBE
    done = subprocess.run(
        [sys.executable, "-c", code, broker_argument],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
