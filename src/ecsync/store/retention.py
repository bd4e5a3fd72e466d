"""Journal retention: finished changes and cycles older than ``[journal] keep_days`` go.

A daemon writes a cycle row and its changes every interval, for months: without pruning the
database only grows (the soak benchmark measures it). What may go is only what no decision
reads any more: changes that reached a final state (applied, failed, superseded, ...) and
cycles that ended and have no change left. Planned, sent, held and rejected changes stay
whatever their age: they are the seller's open business (a rejected change stops the same
target from being re-planned). The newest cycle always stays, so ``status`` has a last one.

Deletes run in bounded batches (each its own transaction), so a first prune of a large
journal never holds a long write lock; what a call leaves is taken by the next one.
Plain SQLAlchemy core statements: the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ecsync.config import Settings
from ecsync.store.engine import transaction
from ecsync.store.schema import Change, Cycle

log = logging.getLogger(__name__)

# Statuses that are never pruned: open work, or a decision that later cycles still read.
KEEP_STATUSES = ("planned", "sent", "held", "rejected")
BATCH = 2000
MAX_BATCHES = 50  # at most 100,000 rows of each kind per call


@dataclass(frozen=True, slots=True)
class Pruned:
    changes: int = 0
    cycles: int = 0


def run_retention(
    sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> Pruned:
    """Prune by the configured ``[journal] keep_days`` (on the simulator's clock scale).

    Never raises a database error: a prune that fails leaves the journal as it was, says so
    in the log, and is tried again by the next call; the cycle it follows is not affected.
    """
    keep = settings.scaled(timedelta(days=settings.journal.keep_days))
    try:
        return prune_journal(sessions, keep, now or datetime.now(UTC))
    except SQLAlchemyError as exc:
        log.warning("journal retention skipped this time: %s", exc.__class__.__name__)
        return Pruned()


def prune_journal(
    sessions: sessionmaker[Session],
    keep: timedelta,
    now: datetime,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> Pruned:
    """Delete finished changes, then ended cycles without changes, older than ``now - keep``.

    ``now`` must be timezone-aware UTC, as the journal's timestamps are.
    """
    cutoff = now - keep
    changes = _in_batches(
        sessions, lambda s: _old_change_ids(s, cutoff, batch), Change, max_batches
    )
    cycles = _in_batches(sessions, lambda s: _old_cycle_ids(s, cutoff, batch), Cycle, max_batches)
    if changes or cycles:
        log.info(
            "journal retention: deleted %d changes and %d cycles older than %s",
            changes,
            cycles,
            cutoff.isoformat(timespec="seconds"),
        )
    return Pruned(changes=changes, cycles=cycles)


def _in_batches(
    sessions: sessionmaker[Session],
    pick: Callable[[Session], list[int]],
    table: type[Change] | type[Cycle],
    max_batches: int,
) -> int:
    total = 0
    for _ in range(max_batches):
        with transaction(sessions) as session:
            ids = pick(session)
            if not ids:
                break
            session.execute(delete(table).where(table.id.in_(ids)))
            total += len(ids)
    return total


def _old_change_ids(session: Session, cutoff: datetime, batch: int) -> list[int]:
    when = func.coalesce(Change.finished_at, Change.created_at)
    # A release not used yet (finished_at NULL) is a decision a later cycle still reads.
    unused_release = (Change.status == "released") & Change.finished_at.is_(None)
    query = (
        select(Change.id)
        .where(Change.status.not_in(KEEP_STATUSES), ~unused_release, when < cutoff)
        .order_by(Change.id)
        .limit(batch)
    )
    return list(session.scalars(query))


def _old_cycle_ids(session: Session, cutoff: datetime, batch: int) -> list[int]:
    newest = select(func.max(Cycle.id)).scalar_subquery()
    when = func.coalesce(Cycle.finished_at, Cycle.started_at)
    query = (
        select(Cycle.id)
        .where(
            Cycle.status != "running",
            when < cutoff,
            Cycle.id != newest,
            ~exists().where(Change.cycle_id == Cycle.id),
        )
        .order_by(Cycle.id)
        .limit(batch)
    )
    return list(session.scalars(query))
