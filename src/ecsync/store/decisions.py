"""Held changes in the seller's hands: list them, release or reject them, and what the planner
reads of those decisions.

A held change is ``released`` (the next cycle that plans its listing sends the same target
without the guard that held it, then sets ``finished_at``) or ``rejected`` (the channel is
kept as it is; the same target is left out of every plan until the product's price or
availability moves after the rejection). Only ``held`` changes can be decided, and a bad id
rejects the whole command before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecsync.domain.guards import Decision, DecisionKind, guard_of
from ecsync.domain.model import ListingState
from ecsync.errors import UsageError
from ecsync.store.schema import Account, Change, Listing, Product

OPEN = ("held", "planned", "sent")
STATUSES = (
    "held",
    "planned",
    "sent",
    "failed",
    "applied",
    "released",
    "rejected",
    "superseded",
    "skipped",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One journal change as ``ecsync changes`` shows it."""

    id: int
    cycle_id: int
    account: str
    asin: str
    item_id: str
    kind: str
    old_price: Decimal | None
    new_price: Decimal | None
    old_visible: bool | None
    new_visible: bool | None
    old_quantity: int | None
    new_quantity: int | None
    reason: str
    status: str
    error: str | None
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


def list_changes(
    session: Session,
    *,
    statuses: Sequence[str] = OPEN,
    account: str | None = None,
    asin: str | None = None,
) -> list[ChangeRow]:
    """Changes with the given statuses, oldest first."""
    query = (
        select(Change, Account.name, Listing.asin, Listing.item_id)
        .join(Listing, Listing.id == Change.listing_id)
        .join(Account, Account.id == Listing.account_id)
        .where(Change.status.in_(list(statuses)))
        .order_by(Change.created_at, Change.id)
    )
    if account is not None:
        query = query.where(Account.name == account)
    if asin is not None:
        query = query.where(Listing.asin == asin)
    return [
        ChangeRow(
            id=c.id,
            cycle_id=c.cycle_id,
            account=name,
            asin=listing_asin,
            item_id=item_id,
            kind=c.kind,
            old_price=c.old_price,
            new_price=c.new_price,
            old_visible=c.old_visible,
            new_visible=c.new_visible,
            old_quantity=c.old_quantity,
            new_quantity=c.new_quantity,
            reason=c.reason,
            status=c.status,
            error=c.error,
            created_at=c.created_at,
            decided_by=c.decided_by,
            decided_at=c.decided_at,
        )
        for c, name, listing_asin, item_id in session.execute(query)
    ]


def decide(
    session: Session,
    kind: DecisionKind,
    change_ids: Sequence[int] | None,
    *,
    account: str | None,
    by: str,
    now: datetime,
) -> list[int]:
    """Release or reject held changes: the given ids, or (``None``) every held change, of
    ``account`` when given. Every id must name a held change (of ``account`` when given),
    else ``UsageError`` names the bad ones and nothing is written. Returns the ids decided."""
    query = select(Change, Account.name).join(Listing, Listing.id == Change.listing_id)
    query = query.join(Account, Account.id == Listing.account_id)
    if change_ids is None:
        query = query.where(Change.status == "held")
        if account is not None:
            query = query.where(Account.name == account)
    else:
        query = query.where(Change.id.in_(list(change_ids)))
    # Locked (PostgreSQL) so a cycle superseding the same held row cannot interleave.
    query = query.with_for_update(of=Change)
    found = {change.id: (change, name) for change, name in session.execute(query)}
    if change_ids is not None:
        problems = []
        for change_id in dict.fromkeys(change_ids):
            if change_id not in found:
                problems.append(f"change {change_id}: no such change")
                continue
            change, name = found[change_id]
            if change.status != "held":
                problems.append(f"change {change_id}: {change.status}, not held")
            elif account is not None and name != account:
                problems.append(f"change {change_id}: belongs to account {name!r}, not {account!r}")
        if problems:
            verb = "release" if kind is DecisionKind.RELEASED else "reject"
            raise UsageError(f"changes {verb}: nothing written\n" + "\n".join(problems))
    for change, _name in found.values():
        change.status = kind.value
        change.decided_by = by
        change.decided_at = now
        change.finished_at = now if kind is DecisionKind.REJECTED else None
    session.flush()
    return sorted(found)


def decisions_for(session: Session, listing_ids: Iterable[int]) -> dict[int, Decision]:
    """The decisions in force for these listings, the latest one per listing: a release not
    yet used by a cycle, or a rejection whose product has not moved since."""
    ids = list(listing_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Change, Product.price_changed_at, Product.stock_changed_at)
        .join(Listing, Listing.id == Change.listing_id)
        .join(Product, Product.asin == Listing.asin)
        .where(
            Change.listing_id.in_(ids),
            (Change.status == "released") & Change.finished_at.is_(None)
            | (Change.status == "rejected"),
        )
        .order_by(Change.decided_at, Change.id)
    )
    out: dict[int, Decision] = {}
    for change, price_moved, stock_moved in rows:
        decided = change.decided_at
        if decided is None:
            continue
        kind = DecisionKind(change.status)
        if kind is DecisionKind.REJECTED and _moved(decided, price_moved, stock_moved):
            out.pop(change.listing_id, None)  # an older decision is no longer in force either
            continue
        out[change.listing_id] = Decision(
            kind=kind,
            change_id=change.id,
            target=ListingState(change.new_price, change.new_visible, change.new_quantity),
            guard=guard_of(change.kind),
            by=change.decided_by or "?",
            at=decided,
        )
    return out


def _moved(decided: datetime, *changed: datetime | None) -> bool:
    return any(at is not None and at > decided for at in changed)


def close_superseded_holds(
    session: Session, listing_ids: Iterable[int], cycle_id: int, now: datetime
) -> int:
    """Held changes of earlier cycles for listings this cycle plans again: the new plan (held
    again, or not needed any more) replaces them, so each listing has one open hold."""
    result = session.execute(
        update(Change)
        .where(
            Change.listing_id.in_(list(listing_ids)),
            Change.status == "held",
            Change.cycle_id != cycle_id,
        )
        .values(status="superseded", finished_at=now, error=f"re-planned by cycle {cycle_id}")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def finish_releases(session: Session, change_ids: Iterable[int], now: datetime) -> None:
    """Releases a cycle has used (or that no longer match what the source asks for)."""
    ids = list(change_ids)
    if ids:
        session.execute(update(Change).where(Change.id.in_(ids)).values(finished_at=now))


def hold_journaled(session: Session, change_ids: Iterable[int], note: str) -> None:
    """Journaled changes a guard held after they were written (a hide that waited for the
    mass-hide guard's sample): held, with the guard's reason added to theirs."""
    ids = list(change_ids)
    if not ids:
        return
    for change in session.scalars(select(Change).where(Change.id.in_(ids))):
        change.status = "held"
        change.reason = f"{change.reason}; {note}" if change.reason else note
