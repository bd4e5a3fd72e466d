"""A database that cannot be used ends ``ecsync`` with one line saying what and where, exit 2.

Each case runs the real entry point (``python -m ecsync``) against a URL a seller could
write: a PostgreSQL port nobody listens on, an unknown driver, a read-only SQLite file, a
directory that cannot be made. No traceback, and never the password.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PASSWORD = "s3cr3t-pw"


ACCOUNT = '[[accounts]]\nname = "base-1"\nplatform = "base"\n'


def _ecsync(
    workdir: Path, url: str, *args: str, accounts: str = ACCOUNT
) -> subprocess.CompletedProcess[str]:
    config = workdir / "ecsync.toml"
    config.write_text(f'[database]\nurl = "{url}"\n\n{accounts}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECSYNC_")}
    env["ECSYNC_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "ecsync", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
    )


def _closed_port() -> int:
    """A loopback port with no listener: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [("init",), ("status",)])
def test_a_refused_postgresql_port_is_one_line(workdir: Path, command: tuple[str, ...]) -> None:
    port = _closed_port()
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/test"
    result = _ecsync(workdir, url, *command)
    _assert_one_line(result, f"postgresql://postgres:***@127.0.0.1:{port}/test", "refused")


def test_an_unknown_driver_is_one_line(workdir: Path) -> None:
    result = _ecsync(workdir, f"oracle2://scott:{PASSWORD}@db/orcl", "init")
    _assert_one_line(result, "oracle2://scott:***@db/orcl", "unknown database driver 'oracle2'")


def test_a_read_only_sqlite_file_is_one_line(workdir: Path) -> None:
    database = workdir / "shop.db"
    assert _ecsync(workdir, f"sqlite:///{database}", "init", accounts="").returncode == 0
    # mode=ro: read-only whoever runs the test (a chmod does not stop root). Opening records
    # the newly configured account: a write.
    result = _ecsync(workdir, f"sqlite:///file:{database}?mode=ro&uri=true", "accounts", "list")
    _assert_one_line(result, str(database), "readonly")


def test_a_directory_that_cannot_be_made_is_one_line(workdir: Path) -> None:
    blocker = workdir / "not-a-directory"
    blocker.write_text("a file where the database directory should be", encoding="utf-8")
    result = _ecsync(workdir, f"sqlite:///{blocker}/sub/ecsync.db", "init")
    _assert_one_line(result, str(blocker), "cannot create the directory")


def test_a_url_that_does_not_parse_is_one_line(workdir: Path) -> None:
    result = _ecsync(workdir, "shop.db", "init")
    _assert_one_line(result, "database shop.db: not a database URL")
