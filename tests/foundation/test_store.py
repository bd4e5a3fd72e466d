"""Migrations run to head on SQLite and PostgreSQL alike; the unique keys hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.migrate import alembic_config, current_revision, head_revision, upgrade_to_head
from ecsync.store.schema import Account, Listing, Product

TABLES = {"products", "accounts", "listings", "changes", "cycles", "tokens", "api_usage"}


def _check_migrated(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert upgrade_to_head(engine) == (None, head_revision())
    assert upgrade_to_head(engine) == (head_revision(), head_revision())  # idempotent
    assert set(inspect(engine).get_table_names()) >= TABLES
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # models and migrations agree: no pending autogenerate diff


def _check_unique_keys(engine: Engine) -> None:
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        account = Account(name="base-1", platform="base", active=True, created_at=now)
        session.add_all([account, Product(asin="B000000001"), Product(asin="B000000002")])
        session.flush()
        session.add(
            Listing(
                account_id=account.id,
                asin="B000000001",
                item_id="1",
                created_at=now,
                updated_at=now,
            )
        )
        account_id = account.id
    for asin, item_id in [("B000000001", "2"), ("B000000002", "1")]:
        with pytest.raises(IntegrityError), transaction(sessions) as session:
            session.add(
                Listing(
                    account_id=account_id,
                    asin=asin,
                    item_id=item_id,
                    created_at=now,
                    updated_at=now,
                )
            )
    with pytest.raises(IntegrityError), transaction(sessions) as session:  # FK enforced
        session.add(
            Listing(
                account_id=account_id,
                asin="B00NOTHERE",
                item_id="9",
                created_at=now,
                updated_at=now,
            )
        )


def _check_times_are_utc(engine: Engine) -> None:
    sessions = session_factory(engine)
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2026, 5, 1, 9, 0, tzinfo=tokyo)
    with transaction(sessions) as session:
        session.add(Product(asin="B00000TIME", fetched_at=moment))
    with transaction(sessions) as session:
        stored = session.scalar(select(Product.fetched_at).where(Product.asin == "B00000TIME"))
    assert stored == moment and stored is not None and stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)


def test_sqlite_migrates_with_wal_fks_and_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'e.db'}", busy_timeout_s=7)
    _check_migrated(engine)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 7000
    _check_unique_keys(engine)
    _check_times_are_utc(engine)
    engine.dispose()


@pytest.mark.postgres
def test_postgresql_runs_the_same_migrations(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    _check_migrated(engine)
    _check_unique_keys(engine)
    _check_times_are_utc(engine)
    engine.dispose()


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    upgrade_to_head(engine)
    with (
        pytest.raises(Exception, match="naive datetime"),
        transaction(session_factory(engine)) as s,
    ):
        s.add(Product(asin="B00000NAIV", fetched_at=datetime(2026, 1, 1)))
    engine.dispose()
