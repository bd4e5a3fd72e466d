"""The one logging setup, done at the entry point on the root logger.

The system ecsync replaces configured a handler on one named logger, so every record from
its child modules vanished and a 40-hour hang left no trace. Here handlers hang on the root
logger only, every module just calls ``logging.getLogger(__name__)``, and a redaction filter
on each handler keeps tokens and secrets out of every line, wherever they were logged from.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.logging import RichHandler

REDACTED = "***"

# Token shapes that must never reach a log line even when nobody declared them secret.
_PATTERNS = [
    re.compile(r"Atz[ar]\|[A-Za-z0-9_\-|.+/=]+"),  # Amazon LWA access and refresh tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.~+/=|]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|x-amz-access-token|code)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
    ),
]

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Replaces known secret values and token-shaped strings before any handler formats."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            set(self._secrets) | {s for s in secrets if s}, key=len, reverse=True
        )

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(
                lambda m: (m.group(1) if m.lastindex else "") + REDACTED,
                text,
            )
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra=`` fields kept as keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info or record.exc_text:
            data["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(data, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_OWNED_MARK = "_ecsync_handler"


def setup_logging(
    *,
    level: str = "INFO",
    file: Path | None = None,
    json_lines: bool = False,
    rotate: bool = True,
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    secrets: Iterable[str] = (),
    console_stream: IO[str] | None = None,
    console_level: str | None = None,
) -> RedactingFilter:
    """Install ecsync's handlers on the root logger, replacing any installed before.

    ``rotate`` is for the process that owns the file (the daemon): a manual run beside it
    appends without ever rotating, so it cannot pull the file from under the daemon.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OWNED_MARK, False):
            root.removeHandler(handler)
            handler.close()
    redactor = RedactingFilter(secrets)
    console = Console(file=console_stream, stderr=console_stream is None, soft_wrap=True)
    console_handler = RichHandler(
        console=console, show_path=False, rich_tracebacks=False, markup=False
    )
    console_handler.setLevel(console_level or level)
    handlers: list[logging.Handler] = [console_handler]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler
        if rotate:
            file_handler = logging.handlers.RotatingFileHandler(
                file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        else:
            file_handler = logging.handlers.WatchedFileHandler(file, encoding="utf-8")
        file_handler.setFormatter(
            JsonLinesFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
        )
        file_handler.setLevel(level)
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(redactor)
        setattr(handler, _OWNED_MARK, True)
        root.addHandler(handler)
    root.setLevel(min(logging.getLevelName(level), logging.getLevelName(console_level or level)))
    # Quiet libraries: apprise's DEBUG lines carry webhook URLs with their tokens.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "alembic.runtime.migration", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor
