"""A simulator and a shop configured against it, driven through ``ecsync`` subprocesses
exactly as a user (or cron) runs it; the proofs then judge the channels by the simulator's
truth and the oracle in ``oracle.py``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecsync.cli import run
from tests.proof.oracle import PROOF_GUARDS

ECSYNC = [sys.executable, "-m", "ecsync"]
# Short client timeouts and backoff, so hangs and retries cost seconds, not minutes.
FAST_AMAZON = (
    "connect_timeout_s = 2\nread_timeout_s = 1.5\ntotal_timeout_s = 4\n"
    "retry_base_s = 0.02\nmax_retries = 2\n"
)
FAST_CHANNELS = (
    "\n[channels]\nconnect_timeout_s = 2\nread_timeout_s = 1.5\ntotal_timeout_s = 4\n"
    "retry_base_s = 0.02\nmax_retries = 2\n"
)
# Generous: a bound against a wedged run, never a measure of speed.
RUN_TIMEOUT_S = 180.0


def ecsync_env(config: Path) -> dict[str, str]:
    """This checkout's sources first, no ECSYNC_* from the machine, the shop's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECSYNC_")}
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["ECSYNC_CONFIG"] = str(config)
    return env


@dataclass
class ProofShop:
    url: str
    dir: Path
    config: Path
    http: httpx.Client

    @property
    def env(self) -> dict[str, str]:
        return ecsync_env(self.config)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*ECSYNC, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.dir,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ECSYNC, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.dir,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )

    def sync(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``ecsync sync --json`` in a subprocess: its exit code and summary."""
        done = self.run("sync", "--json", *args)
        return done.returncode, summary_of(done.stdout, done.stderr)

    def sync_here(
        self, capsys: pytest.CaptureFixture[str], *args: str
    ) -> tuple[int, dict[str, Any]]:
        """``ecsync sync --json`` in this process (no interpreter start: cheaper per case)."""
        capsys.readouterr()
        code = run(["--config", str(self.config), "sync", "--json", *args])
        captured = capsys.readouterr()
        return code, summary_of(captured.out, captured.err)

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.sim("GET", "/_sim/stats")
        return result

    def writes(self) -> dict[str, int]:
        stats = self.stats()
        return {name: c["writes"] for name, c in {**stats["base"], **stats["ebay"]}.items()}


def summary_of(out: str, err: str) -> dict[str, Any]:
    """The JSON summary ``sync --json`` printed last (``{}`` if none), with stderr's tail."""
    start = 0 if out.startswith("{") else out.find("\n{") + 1
    try:
        summary: dict[str, Any] = json.loads(out[start:]) if start or out.startswith("{") else {}
    except ValueError:
        summary = {}
    summary.setdefault("stderr", err[-3000:])
    return summary


def proof_config(text: str, extra_amazon: str = FAST_AMAZON) -> str:
    """The simulator's config with fast client timeouts, ``min_change = 0`` on every
    account and the guards opened wide (see ``oracle.py``).

    ``stale_after`` is set far out: at a high ``--speed`` the default (twice the 3 h
    interval) lasts seconds of wall time, and the stale policy (hide after long failure)
    would then be mistaken for a hide caused by one failed fetch."""
    head, sep, rest = text.partition("[amazon]\n")
    assert sep, "the simulator's config has an [amazon] table"
    text = head + sep + extra_amazon + rest
    text = re.sub(
        r'^(platform = "(?:base|ebay)")$',
        r'\1\nmin_change = 0\nmin_change_pct = 0\nstale_after = "1000h"',
        text,
        flags=re.M,
    )
    # Reconcile (read every channel item) in every cycle: what a read under faults concludes
    # about gone listings is then judged in every case, not every 8th cycle.
    text = text.replace("[daemon]\n", "[daemon]\nreconcile_every = 1\n", 1)
    return text + PROOF_GUARDS + FAST_CHANNELS


@contextmanager
def _simulator(directory: Path, options: dict[str, Any]) -> Iterator[str]:
    """``ecsync sim`` in its own process (so polling it never slows it), until the block ends."""
    config = directory / "ecsync.toml"
    args = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    proc = subprocess.Popen(
        [*ECSYNC, "sim", "--port", "0", "--write-config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ecsync_env(config),
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:  # ends at EOF if the simulator dies: never hangs
            if line.startswith("simulator listening on "):
                url = line.split()[-1]
                break
        assert url, "the simulator did not start"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def proof_shop(directory: Path, pull: bool = True, **options: Any) -> Iterator[ProofShop]:
    """A simulator and a shop in ``directory``: initialised and, unless ``pull=False``,
    pulled from the channels (both in-process: the runs under test are subprocesses)."""
    config = directory / "ecsync.toml"
    defaults: dict[str, Any] = {"products": 200, "speed": 500.0, "seed": 1}
    with _simulator(directory, {**defaults, **options}) as url:
        config.write_text(proof_config(config.read_text(encoding="utf-8")), encoding="utf-8")
        with httpx.Client(base_url=url, timeout=30) as http:
            shop = ProofShop(url=url, dir=directory, config=config, http=http)
            for command in (["init"], ["pull", "--all"] if pull else []):
                if command:
                    assert run(["--config", str(config), *command]) == 0, command
            yield shop
