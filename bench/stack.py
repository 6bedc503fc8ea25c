"""A local stack for benchmarks and fault scripts: `portal serve` (the simulator and the
hooks live there) and `portal worker` processes on loopback, each in its own process
group so a script can stop, or kill -9, exactly the processes it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_peak_rss_mb(pgid: int) -> float:
    """The largest peak RSS among the processes of a process group."""
    peak = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid:
                peak = max(peak, peak_rss_mb(int(entry.name)))
        except (ProcessLookupError, PermissionError):
            continue
    return peak


class Stack:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **env,
            "PYTHONPATH": str(ROOT),
            "PORTAL_BASE_URL": self.base_url,
        }
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.serve: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child)
        return subprocess.Popen(
            [sys.executable, "-m", "portal.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_serve(self) -> None:
        self.serve = self._spawn("serve", ["serve", "--port", str(self.port)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                config = httpx.get(
                    f"{self.base_url}/simulator/config", headers=self.simulator_headers, timeout=1
                )
                if config.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.serve.poll() is not None:
                raise RuntimeError(f"portal serve exited; see {self.log_dir / 'serve.log'}")
            time.sleep(0.2)
        raise RuntimeError("portal serve did not start within 60 s")

    def start_worker(
        self, processes: int = 1, threads: int = 8, *, scheduler: bool = True
    ) -> subprocess.Popen[bytes]:
        """A `portal worker`; `scheduler` also runs the periodic scheduler in it (give it
        to one worker at a time: `portal serve` runs none with Redis or RabbitMQ)."""
        args = ["worker", "--processes", str(processes), "--threads", str(threads)]
        worker = self._spawn(
            f"worker-{len(self.workers)}", [*args, "--scheduler"] if scheduler else args
        )
        self.workers.append(worker)
        return worker

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and the worker processes it forked (its own group)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    @property
    def simulator_headers(self) -> dict[str, str]:
        return {"X-Simulator-Secret": self.env.get("SIMULATOR_SECRET") or "simulator-secret"}

    def configure_simulator(self, values: dict[str, object]) -> None:
        r = httpx.post(
            f"{self.base_url}/simulator/config", json=values, headers=self.simulator_headers
        )
        r.raise_for_status()

    def outbox(self) -> list[dict[str, object]]:
        r = httpx.get(
            f"{self.base_url}/simulator/outbox", headers=self.simulator_headers, timeout=60
        )
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        for proc in [*self.workers, *([self.serve] if self.serve else [])]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.workers.clear()
        self.serve = None
