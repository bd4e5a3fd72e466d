"""What every command needs: validated settings, logging, and a migrated database."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ecsync.config import Settings, secret_values
from ecsync.errors import ConfigError, UsageError
from ecsync.logs import setup_logging
from ecsync.store.engine import database_error, make_engine, session_factory, transaction
from ecsync.store.migrate import current_revision, head_revision, upgrade_to_head
from ecsync.store.repo import sync_accounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    def close(self) -> None:
        self.engine.dispose()


def configure_logging(settings: Settings, *, owns_log_file: bool = False) -> None:
    setup_logging(
        level=settings.logging.level,
        file=settings.log_file,
        json_lines=settings.logging.json_lines,
        rotate=owns_log_file,
        max_bytes=settings.logging.max_bytes,
        backup_count=settings.logging.backup_count,
        secrets=secret_values(settings),
    )


def open_app(settings: Settings, *, migrate: bool = False) -> App:
    """Open the database; ``migrate`` upgrades it to head, otherwise it must be there already."""
    engine = make_engine(settings.database_url, busy_timeout_s=settings.database.busy_timeout_s)
    try:
        if migrate:
            before, after = upgrade_to_head(engine)
            if before != after:
                log.info("database migrated from %s to %s", before or "empty", after)
        else:
            current = current_revision(engine)
            if current != head_revision():
                state = "not initialised" if current is None else f"at revision {current}"
                raise UsageError(
                    f"database {engine.url.render_as_string(hide_password=True)} is {state}: "
                    "run `ecsync init`"
                )
        app = App(settings=settings, engine=engine, sessions=session_factory(engine))
        with transaction(app.sessions) as session:
            try:
                sync_accounts(session, settings.accounts)
            except ValueError as exc:
                raise ConfigError(f"{settings.config_path}: accounts: {exc}") from None
        return app
    except SQLAlchemyError as exc:  # refused port, read-only file, ...: one line, exit 2
        engine.dispose()
        raise database_error(settings.database_url, exc) from None
    except BaseException:
        engine.dispose()
        raise
