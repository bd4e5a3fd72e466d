"""What the cycle benchmarks share: a simulator in its own process, a shop against it, and
``ecsync`` commands run as a user runs them, with their peak memory."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ECSYNC = [sys.executable, "-m", "ecsync"]


@dataclass
class Shop:
    url: str
    dir: Path
    config: Path
    http: httpx.Client
    sim_pid: int = 0  # the simulator's process, for its memory (peak_rss_mib)

    @property
    def env(self) -> dict[str, str]:
        """The environment an ``ecsync`` process against this shop runs with."""
        return {**os.environ, "ECSYNC_CONFIG": str(self.config)}

    def run(
        self, *args: str, ok_codes: tuple[int, ...] = (0,)
    ) -> tuple[subprocess.CompletedProcess[str], float, float]:
        """Run ``ecsync ARGS``; returns the process, its wall time and its peak RSS in MiB."""
        started = time.monotonic()
        done = subprocess.run(
            [*ECSYNC, *args], capture_output=True, text=True, env=self.env, check=False
        )
        wall = time.monotonic() - started
        peak = _peak_rss_mib()
        if done.returncode not in ok_codes:
            command = " ".join(args)
            raise SystemExit(f"ecsync {command} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return done, wall, peak

    def sync(self, *args: str) -> tuple[dict[str, Any], float, float]:
        done, wall, peak = self.run("sync", "--json", *args)
        return json.loads(done.stdout), wall, peak

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get("/_sim/stats").json()
        return data

    def reset_stats(self) -> None:
        self.http.post("/_sim/stats/reset").raise_for_status()


def _peak_rss_mib() -> float:
    # ru_maxrss of all waited-for children: the ecsync run just reaped is the largest so far
    # (the simulator still runs and is not counted).
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return maxrss / 1024


def peak_rss_mib(pid: int) -> float | None:
    """A live process's peak resident memory (Linux VmHWM), in MiB; None once it is gone.
    Poll it during a run: it disappears with the process."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


@contextmanager
def simulator_shop(*sim_args: str, pull: bool = True) -> Iterator[Shop]:
    """Start ``ecsync sim`` in its own process, write its config, init and (unless ``pull``
    is False, for a benchmark of the pull itself) pull the shop."""
    directory = Path(tempfile.mkdtemp(prefix="ecsync-bench-"))
    config = directory / "ecsync.toml"
    proc = subprocess.Popen(
        [*ECSYNC, "sim", "--port", "0", "--write-config", str(config), *sim_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if line.startswith("simulator listening on "):
                url = line.split()[-1]
                break
        if not url:
            raise SystemExit("the simulator did not start")
        shop = Shop(
            url=url,
            dir=directory,
            config=config,
            http=httpx.Client(base_url=url, timeout=60),
            sim_pid=proc.pid,
        )
        shop.run("init")
        if pull:
            shop.run("pull", "--all")
        yield shop
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"
