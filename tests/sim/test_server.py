"""``ecsync sim`` in the foreground: prints its URL, serves, stops cleanly on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ecsync.config import load_settings

# The command as the CLI will run it: typer over sim_command, ecsync errors as exit codes.
RUNNER = """
import sys, typer
from ecsync.errors import EcsyncError
from ecsync.sim.command import sim_command
try:
    typer.run(sim_command)
except EcsyncError as exc:
    print(f"ecsync: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith("simulator listening on"):
            break
    return process, lines


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_runs_in_the_foreground_until_a_signal(tmp_path: Path, stop: signal.Signals) -> None:
    config = tmp_path / "ecsync.toml"
    process, lines = start(
        "--port", "0", "--products", "40", "--seed", "3", "--write-config", str(config)
    )
    try:
        assert lines and lines[-1].startswith("simulator listening on http://127.0.0.1:"), lines
        url = lines[-1].rsplit(" ", 1)[1]
        health = httpx.get(f"{url}/_sim/health", timeout=5).json()
        assert (health["status"], health["products"], health["seed"]) == ("ok", 40, 3)
        assert load_settings(config).amazon.endpoint == url
        process.send_signal(stop)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert f"simulator stopped by {stop.name}" in err
    assert f"config written to {config}" in lines


def test_bad_options_are_usage_errors() -> None:
    process = subprocess.run(
        [sys.executable, "-c", RUNNER, "--drift", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert process.returncode == 2
    assert "--drift" in process.stderr
    faults = subprocess.run(
        [sys.executable, "-c", RUNNER, "--faults", "spapi.explode=1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert faults.returncode == 2
    assert "spapi.explode" in faults.stderr
