"""Opening the database: one place that knows SQLite needs WAL, a busy timeout and FKs on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ecsync.errors import DatabaseError


def normalise_url(url: str) -> str:
    """Let users write ``postgresql://``; we drive PostgreSQL with psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for ``url``; raises :class:`DatabaseError` (what, where, why) when the URL
    names no usable driver or the SQLite file's directory cannot be made."""
    try:
        parsed = make_url(normalise_url(url))
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not _is_uri(parsed):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, connect_args={"timeout": busy_timeout_s})
            _sqlite_pragmas(engine, busy_timeout_s)
            return engine
        return create_engine(parsed, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, OSError) as exc:
        raise database_error(url, exc) from None


def _is_uri(parsed: URL) -> bool:
    """``sqlite:///file:PATH?mode=ro&uri=true``: SQLite opens it itself; no directory to make."""
    return str(parsed.query.get("uri", "")).lower() == "true" or bool(
        parsed.database and parsed.database.startswith("file:")
    )


def masked_url(url: str) -> str:
    """The URL as the user wrote it, any password replaced (even when it does not parse)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def database_error(url: str, exc: BaseException) -> DatabaseError:
    """One line saying what went wrong with the database, where, and why (no traceback)."""
    where = f"database {masked_url(url)}"
    if isinstance(exc, NoSuchModuleError) or (
        isinstance(exc, ArgumentError) and "Can't load plugin" in str(exc)
    ):
        scheme = url.split("://", 1)[0] if "://" in url else url
        return DatabaseError(
            f"{where}: unknown database driver {scheme!r} "
            "(use sqlite:///PATH or postgresql://USER@HOST:PORT/NAME)"
        )
    if isinstance(exc, ArgumentError):
        return DatabaseError(
            f"{where}: not a database URL (use sqlite:///PATH or postgresql://USER@HOST:PORT/NAME)"
        )
    if isinstance(exc, ImportError):
        return DatabaseError(
            f"{where}: its driver is not installed ({exc.name or exc}); ecsync ships drivers "
            "for SQLite and PostgreSQL (psycopg)"
        )
    if isinstance(exc, OSError):
        path = exc.filename or ""
        return DatabaseError(f"{where}: cannot create the directory {path}: {exc.strerror or exc}")
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    detail = "; ".join(line for line in lines if not line.startswith("(Background"))
    backend = _backend(url)
    if backend == "sqlite":
        path = _sqlite_path(url)
        return DatabaseError(f"{where}: SQLite file {path}: {detail}")
    return DatabaseError(f"{where}: {detail}")


def _backend(url: str) -> str:
    try:
        return make_url(url).get_backend_name()
    except (SQLAlchemyError, ValueError):
        return ""


def _sqlite_path(url: str) -> str:
    database = make_url(url).database or ":memory:"
    database = database.removeprefix("file:").split("?", 1)[0]
    return str(Path(database).resolve()) if database != ":memory:" else database


def _sqlite_pragmas(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 opens transactions lazily; let SQLAlchemy issue BEGIN itself so
        # that a write transaction takes the lock up front (BEGIN IMMEDIATE) and waits on
        # busy_timeout instead of failing on upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception."""
    with factory() as session, session.begin():
        yield session
