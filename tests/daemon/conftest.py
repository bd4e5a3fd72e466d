"""Daemons in real subprocesses against the simulator, and what the tests poll them with.

Nothing here sleeps to pass: every wait polls a condition (the database, the log, an HTTP
endpoint) against a deadline and fails saying what it waited for.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ecsync.store.schema import Lease
from tests.conftest import CliResult
from tests.integration.conftest import Shop, import_channel_listings, make_shop  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
# A clean stop takes the cycle's grace (1.2 s) plus the interpreter's exit. The bound is loose
# enough for a machine busy with another CPU-heavy process, and still well below what a stop
# that does not work costs (a rate slot 10 s away, a 30 s hung call, an interval's sleep).
PROMPT_STOP_S = 6.0


def wait_for(
    condition: Callable[[], Any], what: str, *, timeout: float = 60.0, every: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``.

    ``timeout`` only bounds a wedged test: generous, since a loaded machine is slow, not wrong.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return json.dumps(str(value))


def set_config(path: Path, section: str, **values: Any) -> None:
    """Set ``key = value`` lines in a ``[section]`` of the config, replacing existing ones."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = f"[{section}]"
    if header not in lines:
        lines += ["", header]
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for key, value in values.items():
        line = f"{key} = {_literal(value)}"
        for i in range(start + 1, end):
            if re.match(rf"{re.escape(key)}\s*=", lines[i]):
                lines[i] = line
                break
        else:
            lines.insert(start + 1, line)
            end += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Db:
    """Read-only SQL on the shop's SQLite database (WAL: reads never block the daemon)."""

    def __init__(self, path: Path) -> None:
        self._engine = create_engine(f"sqlite:///{path}")

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self._engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(text(sql), params)]

    def one(self, sql: str, **params: Any) -> Any:
        rows = self.rows(sql, **params)
        return next(iter(rows[0].values())) if rows else None

    def cycles(self, pid: int | None = None) -> list[dict[str, Any]]:
        where = "WHERE pid = :pid" if pid is not None else ""
        rows = self.rows(f"SELECT * FROM cycles {where} ORDER BY id", pid=pid)
        for row in rows:
            if isinstance(row["summary"], str):
                row["summary"] = json.loads(row["summary"])
        return rows

    def finished(self, pid: int | None = None) -> list[dict[str, Any]]:
        return [c for c in self.cycles(pid) if c["status"] != "running"]

    def lease(self, name: str = "daemon") -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM leases WHERE name = :n", n=name)
        return rows[0] if rows else None

    def close(self) -> None:
        self._engine.dispose()


@dataclass
class DaemonProcess:
    """``python -m ecsync daemon`` in a subprocess, with its output in files."""

    config: Path
    args: tuple[str, ...]
    dir: Path
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.stdout = self.dir / f"daemon-{id(self)}.out"
        self.stderr = self.dir / f"daemon-{id(self)}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ecsync",
                    "--config",
                    str(self.config),
                    "daemon",
                    *self.args,
                ],
                stdout=out,
                stderr=err,
                cwd=self.dir,
                env={**os.environ, "COLUMNS": "200"},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Send ``sig``; return the exit status and the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def exited(self) -> int | None:
        return self.proc.poll()


def log_text(directory: Path, name: str = "ecsync.log") -> str:
    """The daemon's log across rotations, oldest file first."""
    files = sorted(
        directory.glob(f"{name}*"),
        key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
    )
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


def cycle_records(log: str) -> list[dict[str, Any]]:
    """The per-cycle JSON records the daemon logs at INFO."""
    records = []
    for line in log.splitlines():
        _, sep, rest = line.partition("ecsync.daemon: {")
        if sep:
            records.append(json.loads("{" + rest))
    return records


@pytest.fixture
def daemons(workdir: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, *args: str) -> DaemonProcess:
        process = DaemonProcess(config, args, workdir)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.exited() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)


@pytest.fixture
def shop_for_daemon(
    make_shop: Callable[..., Shop],  # noqa: F811 (the fixture imported above)
    cli: Callable[..., CliResult],
) -> Iterator[Callable[..., tuple[Shop, Db]]]:
    """A simulator, a shop with its listings imported, and SQL on its database."""
    dbs: list[Db] = []

    def make(**options: Any) -> tuple[Shop, Db]:
        shop = make_shop(**options)
        import_channel_listings(shop, cli)
        # These tests were written for the cycle-every-interval daemon and keep proving it
        # (``--mode sweep``); continuous mode, the default, has tests of its own that set it.
        set_config(shop.config, "daemon", mode="sweep")
        db = Db(shop.dir / "ecsync.db")
        dbs.append(db)
        return shop, db

    yield make
    for db in dbs:
        db.close()


@dataclass
class Webhook:
    """A local JSON webhook receiver for apprise's ``json://`` URLs."""

    url: str
    messages: list[dict[str, Any]]

    def titles(self) -> list[str]:
        return [str(m.get("title", "")) for m in self.messages]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    messages: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                messages.append(json.loads(body))
            except ValueError:
                messages.append({"raw": body.decode(errors="replace")})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Webhook(f"json://127.0.0.1:{server.server_address[1]}/", messages)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metrics_url(directory: Path) -> str:
    """Where the daemon serves /healthz and /metrics (it logs the URL; port 0 = any)."""
    found = wait_for(
        lambda: re.search(r"serving (http://127\.0\.0\.1:\d+)/healthz", log_text(directory)),
        "the health server's URL in the log",
    )
    return str(found.group(1))


def daemon_lease(
    *,
    since: datetime,
    heartbeat_at: datetime,
    phase: str,
    progress: dict[str, Any],
    next_cycle_at: datetime | None = None,
) -> Lease:
    """The ``daemon`` lease a running daemon of this process would hold (its pid is alive),
    for status tests that stage a daemon's state without running one."""
    return Lease(
        name="daemon",
        holder="me",
        pid=os.getpid(),
        host=socket.gethostname(),
        since=since,
        heartbeat_at=heartbeat_at,
        state="running",
        phase=phase,
        progress=progress,
        next_cycle_at=next_cycle_at,
    )
