"""Journal retention with an injected clock: finished changes and ended cycles older than
keep_days go, in bounded batches; recent rows and open ones (planned, sent, held, rejected)
stay whatever their age; a cycle that still has a change stays; so does the newest cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ecsync.config import Settings
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.retention import prune_journal, run_retention
from ecsync.store.schema import Account, Change, Cycle, Listing, Product

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEEP = timedelta(days=90)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


def _store(url: str) -> sessionmaker[Session]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    return session_factory(engine)


def _seed(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Cycles old and recent, each with changes in every interesting status."""
    ids: dict[str, int] = {}
    with transaction(sessions) as s:
        account = Account(name="base-1", platform="base", created_at=OLD)
        s.add_all([account, Product(asin="B000000001")])
        s.flush()
        listing = Listing(
            account_id=account.id, asin="B000000001", item_id="1", created_at=OLD, updated_at=OLD
        )
        s.add(listing)
        s.flush()

        def cycle(name: str, at: datetime, status: str = "ok") -> Cycle:
            row = Cycle(started_at=at, finished_at=at + timedelta(minutes=5), status=status)
            s.add(row)
            s.flush()
            ids[name] = row.id
            return row

        def change(name: str, of: Cycle, status: str, at: datetime) -> None:
            row = Change(
                cycle_id=of.id,
                listing_id=listing.id,
                kind="price",
                status=status,
                created_at=at,
                finished_at=at if status not in ("planned", "sent", "held") else None,
            )
            s.add(row)
            s.flush()
            ids[name] = row.id

        old_done = cycle("old_done", OLD - timedelta(days=5))
        for status in ("applied", "failed", "superseded"):
            change(f"old_{status}", old_done, status, OLD - timedelta(days=5))
        old_open = cycle("old_open", OLD - timedelta(days=3))
        for status in ("planned", "sent", "held", "rejected"):
            change(f"old_{status}", old_open, status, OLD - timedelta(days=3))
        for index in range(7):  # more than a batch of old, finished, empty cycles
            cycle(f"old_empty_{index}", OLD - timedelta(days=2, minutes=index))
        cycle("old_running", OLD, status="running")
        recent = cycle("recent", RECENT)
        change("recent_applied", recent, "applied", RECENT)
    return ids


def _left(sessions: sessionmaker[Session], ids: dict[str, int]) -> set[str]:
    with transaction(sessions) as s:
        cycles = set(s.scalars(select(Cycle.id)))
        changes = set(s.scalars(select(Change.id)))
    return {
        name for name, row_id in ids.items() if row_id in (cycles if name in _CYCLES else changes)
    }


_CYCLES = {"old_done", "old_open", "old_running", "recent"} | {f"old_empty_{i}" for i in range(7)}


def _check(sessions: sessionmaker[Session]) -> None:
    ids = _seed(sessions)
    pruned = prune_journal(sessions, KEEP, NOW, batch=3)
    assert pruned.changes == 3  # applied, failed, superseded of the old finished cycle
    assert pruned.cycles == 8  # that cycle, now empty, and the 7 old empty ones
    assert _left(sessions, ids) == {
        "old_open",  # still has open changes
        "old_planned",
        "old_sent",
        "old_held",
        "old_rejected",
        "old_running",  # never a running cycle
        "recent",
        "recent_applied",
    }
    # Nothing more to do: a second call deletes nothing.
    assert prune_journal(sessions, KEEP, NOW) == type(pruned)()
    # A later clock makes the recent rows old too; the newest cycle still stays.
    later = prune_journal(sessions, KEEP, NOW + timedelta(days=2))
    assert (later.changes, later.cycles) == (1, 0)
    with transaction(sessions) as s:
        assert s.scalar(select(func.max(Cycle.id))) == ids["recent"]


def test_old_finished_rows_go_and_recent_or_open_ones_stay(tmp_path: Path) -> None:
    _check(_store(f"sqlite:///{tmp_path / 'ecsync.db'}"))


@pytest.mark.postgres
def test_the_same_on_postgresql(postgres_url: str) -> None:
    _check(_store(postgres_url))


def test_batches_are_bounded(tmp_path: Path) -> None:
    sessions = _store(f"sqlite:///{tmp_path / 'ecsync.db'}")
    _seed(sessions)
    pruned = prune_journal(sessions, KEEP, NOW, batch=2, max_batches=1)
    assert (pruned.changes, pruned.cycles) == (2, 2)  # one batch of each kind, no more


def test_keep_days_is_configured_and_scaled(tmp_path: Path) -> None:
    sessions = _store(f"sqlite:///{tmp_path / 'ecsync.db'}")
    ids = _seed(sessions)
    assert Settings().journal.keep_days == 90
    # 90 simulated days at time_scale 1000 are 2.16 real hours: 3 hours on, all is old.
    fast = Settings.model_validate({"journal": {"keep_days": 90}, "runtime": {"time_scale": 1000}})
    pruned = run_retention(sessions, fast, RECENT + timedelta(hours=3))
    assert pruned.changes == 4 and "recent_applied" not in _left(sessions, ids)
    with pytest.raises(ValueError, match="keep_days"):
        Settings.model_validate({"journal": {"keep_days": 0}})
