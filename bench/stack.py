"""A local stack for benchmarks and fault scripts: `portal serve` (the hooks, and the
simulator unless `start_simulator` runs it apart) and `portal worker` processes on
loopback, each in its own process group so a script can stop, or kill -9, exactly the
processes it started."""

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
# How long a process may take to answer: two web processes importing the portal at once on
# a shared 2-core machine (load 20+) took more than a minute.
STARTUP_SECONDS = 180


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
        # The portal's own /simulator mount, until start_simulator runs one apart.
        self.simulator_url = f"{self.base_url}/simulator"
        self.serve: subprocess.Popen[bytes] | None = None
        self.simulator: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(
        self, name: str, args: list[str], module: str = "portal.cli"
    ) -> subprocess.Popen[bytes]:
        # The child writes to its own copy of the descriptor; ours is closed once it is made.
        with open(self.log_dir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_for(self, proc: subprocess.Popen[bytes], name: str, url: str) -> None:
        """Until `url` answers (uvicorn listens once the app has started)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                httpx.get(url, headers=self.simulator_headers, timeout=1)
                return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"portal {name} exited; see {self.log_dir / f'{name}.log'}")
            time.sleep(0.2)
        raise RuntimeError(f"portal {name} did not start within {STARTUP_SECONDS} s")

    def start_serve(
        self, *, bench_routes: bool = False, workers: int = 1
    ) -> subprocess.Popen[bytes]:
        """`portal serve`; with `bench_routes` the same app plus a bare route for baselines
        (bench/report_server.py), in `workers` web processes."""
        if bench_routes:
            args = ["--port", str(self.port), "--workers", str(workers)]
            serve = self._spawn("serve", args, module="bench.report_server")
        else:
            serve = self._spawn("serve", ["serve", "--port", str(self.port)])
        self.serve = serve
        # /login, not /healthz: with Redis and no worker yet, the health ping waits.
        self._wait_for(serve, "serve", f"{self.base_url}/login")
        return serve

    def start_simulator(self) -> subprocess.Popen[bytes]:
        """The provider simulator in a process of its own (`portal simulator`), which keeps
        its records and pending callbacks when `portal serve` dies; call before
        start_serve so the portal's gateway is pointed at it (SIMULATOR_URL)."""
        port = free_port()
        self.simulator_url = f"http://127.0.0.1:{port}"
        self.env["SIMULATOR_URL"] = self.simulator_url
        self.simulator = self._spawn("simulator", ["simulator", "--port", str(port)])
        self._wait_for(self.simulator, "simulator", f"{self.simulator_url}/config")
        return self.simulator

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
        r = httpx.post(f"{self.simulator_url}/config", json=values, headers=self.simulator_headers)
        r.raise_for_status()

    def outbox(self) -> list[dict[str, object]]:
        r = httpx.get(f"{self.simulator_url}/outbox", headers=self.simulator_headers, timeout=60)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        others = [p for p in (self.serve, self.simulator) if p is not None]
        for proc in [*self.workers, *others]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.workers.clear()
        self.serve = None
        self.simulator = None
