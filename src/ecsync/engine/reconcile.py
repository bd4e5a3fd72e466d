"""Reading channels in bulk: ``pull`` imports an account's items as listings, and the
periodic reconcile refreshes every listing's confirmed state from the channel's truth.

Drift comes from outside ecsync: an item edited by hand, sold out on the channel, deleted.
Planning compares desired with *confirmed* state, so confirmed state must be what the
channel really shows, or a needed change would never be sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.channels.protocol import ChannelAdapter, ChannelItem
from ecsync.listings_csv import ASIN_PATTERN
from ecsync.store.schema import Account, Listing, Product

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadResult:
    account: str
    items: list[ChannelItem]
    calls: int


async def read_account(adapter: ChannelAdapter) -> ReadResult:
    before = adapter.calls
    items = [item async for item in adapter.read_items()]
    return ReadResult(adapter.account, items, adapter.calls - before)


@dataclass(frozen=True, slots=True)
class PullOutcome:
    account: str
    items: int
    added: int
    updated: int
    skipped: list[str]


def _apply_state(listing: Listing, item: ChannelItem, now: datetime) -> bool:
    """Copy the channel's state onto the listing's confirmed state; True if it changed."""
    before = (listing.confirmed_price, listing.confirmed_visible, listing.confirmed_quantity)
    listing.confirmed_price = item.price
    listing.confirmed_visible = item.visible
    listing.confirmed_quantity = item.quantity
    listing.confirmed_at = now
    return before != (item.price, item.visible, item.quantity)


def apply_pull(session: Session, result: ReadResult, now: datetime) -> PullOutcome:
    """Upsert listings from the channel's items, keyed on (account, ASIN).

    BASE carries the ASIN in the item's ``identifier``, eBay in the SKU; an item whose code is
    not an ASIN is skipped and reported, never guessed.
    """
    account = session.scalars(select(Account).where(Account.name == result.account)).one()
    existing = {
        listing.asin: listing
        for listing in session.scalars(select(Listing).where(Listing.account_id == account.id))
    }
    by_item = {listing.item_id: listing for listing in existing.values()}
    skipped: list[str] = []
    wanted: dict[str, ChannelItem] = {}
    for item in result.items:
        asin = item.sku.strip()
        if not ASIN_PATTERN.fullmatch(asin):
            skipped.append(f"item {item.item_id}: code {item.sku!r} is not an ASIN")
            continue
        if asin in wanted:
            skipped.append(
                f"item {item.item_id}: ASIN {asin} already on item {wanted[asin].item_id}"
            )
            continue
        wanted[asin] = item
    known = set(session.scalars(select(Product.asin).where(Product.asin.in_(list(wanted)))))
    for asin in sorted(set(wanted) - known):
        session.add(Product(asin=asin, error_count=0))
    session.flush()
    added = updated = 0
    for asin, item in wanted.items():
        listing = existing.get(asin)
        holder = by_item.get(item.item_id)
        if holder is not None and holder is not listing:
            # The channel moved this item id to another ASIN: the channel is the truth.
            holder.item_id = f"~moved~{holder.id}"
            holder.status = "gone"
            session.flush()
        if listing is None:
            listing = Listing(
                account_id=account.id,
                asin=asin,
                item_id=item.item_id,
                sku=item.sku if account.platform == "ebay" else "",
                offer_id=item.item_id if account.platform == "ebay" else None,
                status="listed",
                created_at=now,
                updated_at=now,
            )
            session.add(listing)
            added += 1
        else:
            listing.item_id = item.item_id
            if account.platform == "ebay":
                listing.offer_id = item.item_id
            listing.status = "listed"
            listing.updated_at = now
            updated += 1
        _apply_state(listing, item, now)
    account.last_reconciled_at = now  # a pull is a full read: no reconcile needed right after
    session.flush()
    return PullOutcome(result.account, len(result.items), added, updated, skipped)


@dataclass(frozen=True, slots=True)
class ReconcileOutcome:
    account: str
    items: int
    drifted: int
    gone: int


def apply_reconcile(session: Session, result: ReadResult, now: datetime) -> ReconcileOutcome:
    """Refresh confirmed state of the account's listings; listings the channel no longer
    has become ``gone`` (they are never pushed again unless re-imported or pulled)."""
    account = session.scalars(select(Account).where(Account.name == result.account)).one()
    listings: Sequence[Listing] = session.scalars(
        select(Listing).where(Listing.account_id == account.id, Listing.status == "listed")
    ).all()
    by_item = {item.item_id: item for item in result.items}
    by_sku = {item.sku: item for item in result.items}
    drifted = gone = 0
    for listing in listings:
        key = listing.offer_id if account.platform == "ebay" and listing.offer_id else None
        item = by_item.get(key or listing.item_id)
        if item is None and account.platform == "ebay":
            item = by_sku.get(listing.sku or listing.asin)
        if item is None:
            listing.status = "gone"
            listing.updated_at = now
            gone += 1
            continue
        if account.platform == "ebay" and not listing.offer_id:
            listing.offer_id = item.item_id
        drifted += _apply_state(listing, item, now)
    account.last_reconciled_at = now
    if gone:
        log.warning(
            "%s: %d listings no longer exist on the channel: marked gone", result.account, gone
        )
    return ReconcileOutcome(result.account, len(result.items), drifted, gone)
