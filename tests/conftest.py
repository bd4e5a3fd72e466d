"""Fixtures shared by every test layer: config files, the CLI in-process, databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ecsync.cli import run

POSTGRES_URL = os.environ.get("ECSYNC_TEST_POSTGRES_URL", "")

BASIC_CONFIG = """
[[accounts]]
name = "base-1"
platform = "base"

[[accounts]]
name = "base-2"
platform = "base"

[[accounts]]
name = "ebay-1"
platform = "ebay"
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory as CWD, with no ECSYNC_* variables leaking in from the machine."""
    for key in list(os.environ):
        if key.startswith("ECSYNC_") and key != "ECSYNC_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_config(workdir: Path) -> Callable[[str], Path]:
    def write(body: str = BASIC_CONFIG, name: str = "ecsync.toml") -> Path:
        path = workdir / name
        path.write_text(body, encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``ecsync ARGS`` in-process and capture its output."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL with a schema of its own, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("ECSYNC_TEST_POSTGRES_URL not set: no PostgreSQL server to test against")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
