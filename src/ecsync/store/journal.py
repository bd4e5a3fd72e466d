"""The change journal: written before a channel call, settled after it.

A change goes planned -> sent -> applied | failed, or is held by a guard. A crash leaves
changes ``planned`` or ``sent``; the next cycle supersedes them and re-plans from the
confirmed state (channel writes are idempotent), so nothing is lost and nothing is pushed
twice without need.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ecsync.domain.model import ListingState
from ecsync.domain.plan import PlannedChange
from ecsync.ports import ChangeResult, ChannelChange, ChannelItem, ListingIds, Outcome, addressing
from ecsync.store.schema import Account, Change, Cycle, Listing, Product

OPEN = ("planned", "sent")


def supersede_open_changes(session: Session, cycle_id: int, now: datetime) -> int:
    """Changes an earlier cycle left unfinished are re-planned by this one.

    A ``planned`` change never left ecsync: it is ``superseded``. A ``sent`` one may well have
    reached the channel before the process died, and nobody knows: it becomes ``unknown``
    (channel writes are idempotent: re-planning it resends at most the same state).
    """
    never_sent = session.execute(
        update(Change)
        .where(Change.status == "planned", Change.cycle_id != cycle_id)
        .values(status="superseded", finished_at=now, error=f"re-planned by cycle {cycle_id}")
    )
    maybe_sent = session.execute(
        update(Change)
        .where(Change.status == "sent", Change.cycle_id != cycle_id)
        .values(
            status="unknown",
            finished_at=now,
            error=(
                "unknown: sent before an interruption, outcome never confirmed; "
                f"re-planned by cycle {cycle_id}"
            ),
        )
    )
    return sum(int(getattr(r, "rowcount", 0) or 0) for r in (never_sent, maybe_sent))


def open_changes(session: Session, cycle_id: int) -> list[tuple[int, str]]:
    """(listing id, ASIN) of every listing with a change an earlier cycle left open
    (``planned`` or ``sent``), read before ``supersede_open_changes`` closes them.

    A sweep re-plans every ASIN each cycle, so superseding is enough there. A continuous
    window plans an ASIN only when it is next quoted, maybe hours later: it must re-plan these
    at once, or a hide a channel outage or a deadline kept back would wait that long.
    """
    query = (
        select(Listing.id, Listing.asin)
        .join(Change, Change.listing_id == Listing.id)
        .where(Change.status.in_(OPEN), Change.cycle_id != cycle_id)
        .distinct()
        .order_by(Listing.asin, Listing.id)
    )
    return [(int(listing_id), str(asin)) for listing_id, asin in session.execute(query)]


INTERRUPTED = "interrupted: "  # how a cycle a stop cut short starts its error (engine/cycle.py)


def unplanned_quotes(session: Session, cycle_id: int) -> list[str]:
    """Listed ASINs quoted since the previous cycle started, when that cycle did not finish
    (a stop, a crash, a failure): their quotes were written but maybe never planned.

    A stop cancels the planning of quotes already written (and a crash loses them). A sweep
    re-plans every ASIN next cycle; a continuous window plans an ASIN only when it is quoted
    again, hours later for one just quoted, so a sell-out found just before a restart would
    stay on sale that long. Read when a continuous window opens, after
    ``mark_interrupted_cycles`` (a crashed cycle is ``failed`` by then).
    """
    previous = session.execute(
        select(Cycle.started_at, Cycle.status, Cycle.error)
        .where(Cycle.id < cycle_id, Cycle.dry_run.is_(False))
        .order_by(Cycle.id.desc())
        .limit(1)
    ).first()
    if previous is None:
        return []
    started, status, error = previous
    if status != "failed" and not (error or "").startswith(INTERRUPTED):
        return []
    query = (
        select(Product.asin)
        .join(Listing, Listing.asin == Product.asin)
        .where(Product.fetched_at >= started, Listing.status == "listed")
        .distinct()
        .order_by(Product.asin)
    )
    return [str(asin) for asin in session.scalars(query)]


def mark_interrupted_cycles(session: Session, now: datetime) -> int:
    """Cycles still ``running`` when a new one starts were cut off by a crash or kill."""
    result = session.execute(
        update(Cycle)
        .where(Cycle.status == "running")
        .values(status="failed", finished_at=now, error="did not finish (process ended)")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def recent_hides(
    session: Session, since: datetime, replanned: Collection[int] = frozenset()
) -> dict[str, list[datetime]]:
    """Each account's hides asked for since ``since``: one time per listing (its latest hide).

    The continuous-mode mass-hide guard's memory (domain/guards.py RollingHideGuard): read
    from the journal when a reporting window starts, so hides of the previous window, or of
    a daemon that restarted, still count. Every status counts (planned, sent, applied,
    failed, unknown, held, released, rejected, superseded): the guard measures how many hides
    the source asked for, not how many got through; a listing re-planned (a new window
    supersedes its open row) counts once. ``replanned``: listing ids this window plans again
    at its start (``open_changes``); their hide, if the source still asks for it, is counted
    by that plan, so the journal's row must not count it a second time.
    """
    query = (
        select(Account.name, Change.listing_id, func.max(Change.created_at))
        .join(Listing, Listing.id == Change.listing_id)
        .join(Account, Account.id == Listing.account_id)
        .where(Change.kind == "hide", Change.created_at >= since)
        .group_by(Account.name, Change.listing_id)
    )
    out: dict[str, list[datetime]] = {}
    for name, listing_id, at in session.execute(query):
        if listing_id not in replanned:
            out.setdefault(name, []).append(at)
    return {name: sorted(times) for name, times in out.items()}


@dataclass(frozen=True, slots=True)
class JournaledChange:
    """A change row as the push step needs it."""

    change_id: int
    listing_id: int
    account: str
    kind: str
    priority: int
    channel_change: ChannelChange


def record_plan(
    session: Session,
    cycle_id: int,
    account: Account,
    changes: Sequence[PlannedChange],
    listings: dict[int, Listing],
    now: datetime,
) -> list[JournaledChange]:
    """Write the changes; return the ``planned`` ones (held ones stay in the journal only)."""
    rows = []
    for planned in changes:
        row = _change_row(cycle_id, planned, planned.status.value, now)
        session.add(row)
        rows.append((row, planned))
    session.flush()
    out = []
    for row, planned in rows:
        if row.status != "planned":
            continue
        listing = listings[planned.listing_id]
        out.append(
            JournaledChange(
                change_id=row.id,
                listing_id=planned.listing_id,
                account=account.name,
                kind=row.kind,
                priority=planned.priority,
                channel_change=_channel_change(row.id, account.platform, listing, planned),
            )
        )
    return out


def record_skips(
    session: Session, cycle_id: int, skipped: Sequence[PlannedChange], now: datetime
) -> int:
    """Journal price moves too small to send as ``skipped`` rows, once per listing and target.

    A skipped move is planned again every cycle while the source stays put; a row each time
    would grow the journal forever, so a listing whose latest row is the same skip (same old
    and new state) gets none. ``skipped`` is never open: nothing supersedes, sends or counts
    it as planned. Returns the rows written.
    """
    if not skipped:
        return 0
    latest_ids = (
        select(func.max(Change.id))
        .where(Change.listing_id.in_({c.listing_id for c in skipped}))
        .group_by(Change.listing_id)
    )
    latest = {
        row.listing_id: row
        for row in session.scalars(select(Change).where(Change.id.in_(latest_ids)))
    }
    written = 0
    for planned in skipped:
        last = latest.get(planned.listing_id)
        if last is not None and last.status == "skipped" and _same_move(last, planned):
            continue
        row = _change_row(cycle_id, planned, "skipped", now)
        row.finished_at = now
        session.add(row)
        latest[planned.listing_id] = row
        written += 1
    return written


def _change_row(cycle_id: int, planned: PlannedChange, status: str, now: datetime) -> Change:
    """The journal row of one planned change (or skipped move), before or instead of a send."""
    return Change(
        cycle_id=cycle_id,
        listing_id=planned.listing_id,
        kind=planned.kind.value,
        priority=planned.priority,
        old_price=planned.old.price,
        new_price=planned.new.price,
        old_visible=planned.old.visible,
        new_visible=planned.new.visible,
        old_quantity=planned.old.quantity,
        new_quantity=planned.new.quantity,
        reason=planned.reason,
        status=status,
        attempts=0,
        created_at=now,
    )


def _same_move(row: Change, planned: PlannedChange) -> bool:
    return ListingState(row.old_price, row.old_visible, row.old_quantity) == planned.old and (
        ListingState(row.new_price, row.new_visible, row.new_quantity) == planned.new
    )


def _channel_change(
    change_id: int, platform: str, listing: Listing, planned: PlannedChange
) -> ChannelChange:
    """The change as its channel addresses it: the channel kind picks the id (ports)."""
    old, new = planned.old, planned.new
    ids = ListingIds(listing.item_id, listing.sku or listing.asin, listing.offer_id)
    return ChannelChange(
        change_id=change_id,
        item_id=addressing(platform).change_item_id(ids),
        sku=ids.sku,
        price=new.price if new.price != old.price else None,
        visible=new.visible if new.visible != old.visible else None,
        quantity=new.quantity if new.quantity != old.quantity else None,
    )


def mark_sent(session: Session, change_ids: Iterable[int], now: datetime) -> None:
    session.execute(
        update(Change)
        .where(Change.id.in_(list(change_ids)))
        .values(status="sent", sent_at=now, attempts=Change.attempts + 1)
    )


def settle(session: Session, results: Sequence[ChangeResult], now: datetime) -> None:
    """Record each channel answer on its change, and the confirmed state on its listing."""
    changes = {
        c.id: c
        for c in session.scalars(
            select(Change).where(Change.id.in_([r.change_id for r in results]))
        )
    }
    listings = {
        listing.id: listing
        for listing in session.scalars(
            select(Listing).where(Listing.id.in_({c.listing_id for c in changes.values()}))
        )
    }
    for result in results:
        change = changes[result.change_id]
        listing = listings[change.listing_id]
        if result.offer_id:
            listing.offer_id = result.offer_id
        if result.outcome is Outcome.APPLIED:
            change.status = "applied"
            change.finished_at = now
            change.error = None
            _confirm(listing, change, result.confirmed, now)
        elif result.outcome is Outcome.DEFERRED:
            change.status = "planned"
            change.error = result.error
        else:
            change.status = "failed"
            change.finished_at = now
            change.error = result.error or result.outcome.value
            if result.outcome is Outcome.GONE:
                listing.status = "gone"
                listing.updated_at = now


def _confirm(listing: Listing, change: Change, seen: ChannelItem | None, now: datetime) -> None:
    state = ListingState(change.new_price, change.new_visible, change.new_quantity)
    listing.confirmed_price = seen.price if seen and seen.price is not None else state.price
    if seen and seen.visible is not None:
        listing.confirmed_visible = seen.visible
    else:
        listing.confirmed_visible = state.visible
    if seen and seen.quantity is not None:
        listing.confirmed_quantity = seen.quantity
    else:
        listing.confirmed_quantity = state.quantity
    listing.confirmed_at = now
    listing.updated_at = now


def cycle_change_counts(session: Session, cycle_id: int) -> dict[str, int]:
    return {
        status: count
        for status, count in session.execute(
            select(Change.status, func.count())
            .where(Change.cycle_id == cycle_id)
            .group_by(Change.status)
        )
    }
