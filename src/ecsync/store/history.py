"""Read models for ``history`` and the dry-run plan: changes with their listing's names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ecsync.store.schema import Account, Change, Listing


@dataclass(frozen=True, slots=True)
class ListingName:
    account: str
    platform: str
    asin: str
    item_id: str


def listing_names(session: Session, listing_ids: Iterable[int]) -> dict[int, ListingName]:
    rows = session.execute(
        select(Listing.id, Account.name, Account.platform, Listing.asin, Listing.item_id)
        .join(Account, Account.id == Listing.account_id)
        .where(Listing.id.in_(list(listing_ids)))
    )
    return {row[0]: ListingName(row[1], row[2], row[3], row[4]) for row in rows}


@dataclass(frozen=True, slots=True)
class HistoryRow:
    at: datetime
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
    status: str
    reason: str
    error: str | None
    decided_by: str | None = None  # who released or rejected the held change, and when
    decided_at: datetime | None = None


def change_history(session: Session, asin: str) -> list[HistoryRow]:
    return _changes(session, Listing.asin == asin)


def cycle_changes(session: Session, cycle_id: int) -> list[HistoryRow]:
    return _changes(session, Change.cycle_id == cycle_id)


def _changes(session: Session, where: ColumnElement[bool]) -> list[HistoryRow]:
    rows = session.execute(
        select(Change, Account.name, Listing.item_id, Listing.asin)
        .join(Listing, Listing.id == Change.listing_id)
        .join(Account, Account.id == Listing.account_id)
        .where(where)
        .order_by(Change.created_at, Change.priority, Change.id)
    )
    return [
        HistoryRow(
            at=change.finished_at or change.sent_at or change.created_at,
            cycle_id=change.cycle_id,
            account=account,
            asin=asin,
            item_id=item_id,
            kind=change.kind,
            old_price=change.old_price,
            new_price=change.new_price,
            old_visible=change.old_visible,
            new_visible=change.new_visible,
            old_quantity=change.old_quantity,
            new_quantity=change.new_quantity,
            status=change.status,
            reason=change.reason,
            error=change.error,
            decided_by=change.decided_by,
            decided_at=change.decided_at,
        )
        for change, account, item_id, asin in rows
    ]
