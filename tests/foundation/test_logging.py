"""A record from any module reaches console and file; secrets never do."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsync.logs import setup_logging


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_deep_module_records_reach_console_and_file(tmp_path: Path) -> None:
    console = io.StringIO()
    log_file = tmp_path / "logs" / "ecsync.log"
    setup_logging(level="INFO", file=log_file, console_stream=console)
    logging.getLogger("ecsync.amazon.governor").warning("throttled on batch %d", 12)
    logging.getLogger("ecsync.channels.thebase").debug("not shown at INFO")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "throttled on batch 12" in console.getvalue()
    text = log_file.read_text(encoding="utf-8")
    assert "ecsync.amazon.governor: throttled on batch 12" in text
    assert "not shown" not in text


def test_a_fresh_process_logs_child_modules_to_file(tmp_path: Path) -> None:
    """The regression that hid a 40-hour hang: the real entry point, a real child module."""
    config = tmp_path / "ecsync.toml"
    config.write_text('[logging]\nfile = "out.log"\n', encoding="utf-8")
    code = (
        "import logging, sys\n"
        "from ecsync.cli import app, run\n"
        "@app.command('probe')\n"
        "def probe() -> None:\n"
        "    from ecsync.cli import _settings\n"
        "    _settings()\n"
        "    logging.getLogger('ecsync.amazon.client').warning('deep record %s', 42)\n"
        "sys.exit(run(['--config', sys.argv[1], 'probe']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "deep record 42" in result.stderr
    assert "ecsync.amazon.client: deep record 42" in (tmp_path / "out.log").read_text()


SECRET = "my-client-secret-value"


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ("using secret " + SECRET, SECRET),
        ("token Atza|IwEBIAbcDEF123-_xyz received", "IwEBIAbcDEF123"),
        ("refresh with Atzr|IwEBIrefresh987", "IwEBIrefresh987"),
        ("header Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("basic Basic c2ltLWNsaWVudDpzaW0tc2VjcmV0", "c2ltLWNsaWVudDpzaW0tc2VjcmV0"),
        ("form grant_type=refresh_token&refresh_token=abc123def&client_id=x", "abc123def"),
        ('body {"access_token": "tok-9876", "expires_in": 3600}', "tok-9876"),
        ("client_secret=s3cr3t-val other", "s3cr3t-val"),
    ],
)
def test_secrets_are_redacted_in_console_and_file(tmp_path: Path, message: str, leak: str) -> None:
    console = io.StringIO()
    log_file = tmp_path / "ecsync.log"
    setup_logging(level="INFO", file=log_file, console_stream=console, secrets=[SECRET])
    logging.getLogger("ecsync.channels.ebay").info("%s", message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    for text in (console.getvalue(), log_file.read_text()):
        assert leak not in text
        assert "***" in text


def test_secrets_in_tracebacks_are_redacted(tmp_path: Path) -> None:
    log_file = tmp_path / "ecsync.log"
    setup_logging(level="INFO", file=log_file, console_stream=io.StringIO(), secrets=[SECRET])
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        logging.getLogger("ecsync.engine").exception("boom")
    text = log_file.read_text()
    assert "RuntimeError" in text and SECRET not in text


def test_json_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "ecsync.jsonl"
    setup_logging(level="INFO", file=log_file, json_lines=True, console_stream=io.StringIO())
    logging.getLogger("ecsync.engine.cycle").info("cycle done", extra={"cycle_id": 7})
    record = json.loads(log_file.read_text().splitlines()[-1])
    assert record["logger"] == "ecsync.engine.cycle"
    assert record["msg"] == "cycle done"
    assert record["cycle_id"] == 7


def test_no_print_outside_the_cli() -> None:
    """ruff's T20 rule enforces it; this keeps the rule from being switched off silently."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"T20"' in pyproject
