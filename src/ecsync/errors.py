"""Typed exceptions that cross module boundaries; the CLI maps them to exit codes."""

from __future__ import annotations


class EcsyncError(Exception):
    """Base of every error ecsync raises on purpose."""

    exit_code = 1


class UsageError(EcsyncError):
    """Bad usage, configuration or input: the message says what and where (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration file or environment is invalid."""


class DatabaseError(UsageError):
    """The database cannot be opened or written (bad URL, refused port, read-only file):
    the message names the URL (password masked), the file and the cause (exit 2)."""


class ImportRejected(UsageError):
    """A CSV import had bad rows; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class LockHeld(EcsyncError):
    """Another ecsync instance holds the lock (exit 3)."""

    exit_code = 3


class Interrupted(EcsyncError):
    """SIGINT/SIGTERM arrived; work done so far is kept (exit 130)."""

    exit_code = 130
