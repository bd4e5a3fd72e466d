"""Reading channels in bulk: ``pull`` imports an account's items as listings, and the
periodic reconcile refreshes every listing's confirmed state from the channel's truth.

Drift comes from outside ecsync: an item edited by hand, sold out on the channel, deleted.
Planning compares desired with *confirmed* state, so confirmed state must be what the
channel really shows, or a needed change would never be sent.

Both judge by the adapter's ``ChannelRead`` (``ecsync.ports``), and an error is never
evidence that a listing is gone: a listing is retired only when the channel answered about
that very item (its id in ``read.gone``, its SKU in ``read.gone_skus``), or when it is absent
from a read that is ``complete``. A partial read refreshes what it did read and retires
nothing by absence. How a listing's ids match an item is the channel kind's business
(``ecsync.ports.addressing``); this module names no channel.

Memory: listings are loaded, judged and flushed in chunks of ``CHUNK`` and dropped from the
session after each, so a pull of 100,000 items holds the items of the read and one chunk of
ORM rows, not 100,000 of them (the transaction still covers the whole account).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecsync.channels.protocol import ChannelAdapter
from ecsync.listings_csv import ASIN_PATTERN
from ecsync.ports import ChannelItem, ChannelRead, ListingIds, ReadProblem, addressing
from ecsync.store.schema import Account, Listing, Product

log = logging.getLogger(__name__)

CHUNK = 1000  # listings judged per flush; also bounds each IN (...) list
SHOWN_PROBLEMS = 5  # problems of a partial read spelled out in the log


@dataclass(frozen=True, slots=True)
class ReadResult:
    """One account's bulk read, as the engine received it from the adapter."""

    account: str
    read: ChannelRead

    @property
    def items(self) -> list[ChannelItem]:
        return self.read.items

    @property
    def calls(self) -> int:
        return self.read.calls

    @property
    def complete(self) -> bool:
        return self.read.complete


async def read_account(adapter: ChannelAdapter, expected_skus: Iterable[str] = ()) -> ReadResult:
    """The account's items and what could not be read, through ``adapter.read()``.

    ``expected_skus`` (see ``listed_skus``) lets an adapter read one by one what its bulk
    read can miss.
    """
    read = await adapter.read(expected_skus)
    if read.problems:
        log_problems(adapter.account, read.problems)
    return ReadResult(adapter.account, read)


def listed_skus(session: Session, account_name: str) -> set[str]:
    """The SKUs of the account's listed listings (the ASIN where no SKU is stored)."""
    account = session.scalars(select(Account).where(Account.name == account_name)).one_or_none()
    if account is None:
        return set()
    rows = session.execute(
        select(Listing.sku, Listing.asin).where(
            Listing.account_id == account.id, Listing.status == "listed"
        )
    )
    return {sku or asin for sku, asin in rows}


def log_problems(account: str, problems: Sequence[ReadProblem]) -> None:
    shown = "; ".join(f"{p.where}: {p.error}" for p in problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    log.warning(
        "%s: partial read, %d items could not be read, nothing retired by absence: %s%s",
        account,
        len(problems),
        shown,
        more,
    )


State = tuple[Decimal | None, bool | None, int | None]


def _state(listing: Listing) -> State:
    return (listing.confirmed_price, listing.confirmed_visible, listing.confirmed_quantity)


def _apply_state(listing: Listing, item: ChannelItem, now: datetime) -> bool:
    """Copy the channel's state onto the listing's confirmed state; True if it changed."""
    before = _state(listing)
    listing.confirmed_price = item.price
    listing.confirmed_visible = item.visible
    listing.confirmed_quantity = item.quantity
    listing.confirmed_at = now
    # Decimal compares by value: 1000.00 from the database equals the channel's 1000.
    return before != (item.price, item.visible, item.quantity)


def _ids(listing: Listing) -> ListingIds:
    return ListingIds(listing.item_id, listing.sku or listing.asin, listing.offer_id)


def _chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _account(session: Session, name: str) -> Account:
    return session.scalars(select(Account).where(Account.name == name)).one()


@dataclass(frozen=True, slots=True)
class PullOutcome:
    account: str
    items: int
    added: int  # new listings
    changed: int  # existing listings whose ids, status or confirmed state changed
    unchanged: int  # existing listings the read confirmed as they were
    skipped: list[str]
    gone: int = 0
    problems: int = 0  # items the read could not get (a partial read)

    @property
    def updated(self) -> int:
        """Kept for callers of the earlier name: the listings that actually changed."""
        return self.changed


def moved_item_id(item_id: str, to_asin: str) -> str:
    """The item id kept on a listing whose channel item now carries another ASIN.

    The unique key (account, item_id) lets one listing hold an item id, so the old listing
    keeps its original id with a note a person can read ("1001 (moved to B000000002)")
    rather than an opaque tombstone; it is ``gone`` and never pushed again.
    """
    return f"{item_id} (moved to {to_asin})"[:64]


def apply_pull(session: Session, result: ReadResult, now: datetime) -> PullOutcome:
    """Upsert listings from the channel's items, keyed on (account, ASIN).

    Each kind carries the ASIN in its item's ``sku`` (BASE ``identifier``, eBay SKU); an item
    whose code is not an ASIN is skipped and reported, never guessed. Listings the read says
    are gone are retired; listings absent from a *complete* read too (a pull is a full read).
    """
    account = _account(session, result.account)
    addr = addressing(account.platform)
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
    added = changed = unchanged = 0
    asins = list(wanted)
    for chunk in _chunks(asins):
        _add_products(session, chunk)
        existing = {
            listing.asin: listing
            for listing in session.scalars(
                select(Listing).where(Listing.account_id == account.id, Listing.asin.in_(chunk))
            )
        }
        item_ids = {addr.listing_ids(wanted[asin]).item_id: asin for asin in chunk}
        holders = {
            listing.item_id: listing
            for listing in session.scalars(
                select(Listing).where(
                    Listing.account_id == account.id, Listing.item_id.in_(list(item_ids))
                )
            )
        }
        for asin in chunk:
            item = wanted[asin]
            ids = addr.listing_ids(item)
            listing = existing.get(asin)
            holder = holders.get(ids.item_id)
            if holder is not None and holder is not listing and holder.item_id == ids.item_id:
                # The channel moved this item id to another ASIN: the channel is the truth.
                _retire_moved(session, holder, asin, now)
            if listing is None:
                listing = Listing(
                    account_id=account.id,
                    asin=asin,
                    item_id=ids.item_id,
                    sku=ids.sku,
                    offer_id=ids.offer_id,
                    status="listed",
                    created_at=now,
                    updated_at=now,
                )
                session.add(listing)
                _apply_state(listing, item, now)
                added += 1
                continue
            before = (listing.item_id, listing.sku, listing.offer_id, listing.status)
            if ids.sku:
                listing.sku = ids.sku
            if ids.offer_id is not None:
                listing.offer_id = ids.offer_id
            listing.status = "listed"
            if listing.item_id != ids.item_id:
                listing.item_id = ids.item_id
                session.flush()  # now, while no other listing holds it (ids may swap)
            moved = before != (listing.item_id, listing.sku, listing.offer_id, listing.status)
            drifted = _apply_state(listing, item, now)
            if moved or drifted:
                listing.updated_at = now
                changed += 1
            else:
                unchanged += 1
        session.flush()
        session.expunge_all()
    gone = _retire(session, account, result, seen=wanted.keys(), now=now)
    if result.complete:
        # A complete pull is a full read: no reconcile needed right after it.
        _account(session, result.account).last_reconciled_at = now
    session.flush()
    return PullOutcome(
        result.account,
        len(result.items),
        added,
        changed,
        unchanged,
        skipped,
        gone=gone,
        problems=len(result.read.problems),
    )


def _add_products(session: Session, asins: Sequence[str]) -> None:
    known = set(session.scalars(select(Product.asin).where(Product.asin.in_(list(asins)))))
    for asin in asins:
        if asin not in known:
            session.add(Product(asin=asin, error_count=0))
    session.flush()


def _retire_moved(session: Session, holder: Listing, to_asin: str, now: datetime) -> None:
    new_id = moved_item_id(holder.item_id, to_asin)
    taken = session.scalar(
        select(Listing.id).where(Listing.account_id == holder.account_id, Listing.item_id == new_id)
    )
    if taken is not None and taken != holder.id:
        new_id = f"{new_id[:50]} #{holder.id}"
    log.info(
        "listing %d (ASIN %s): item %s now carries ASIN %s on the channel: listing gone",
        holder.id,
        holder.asin,
        holder.item_id,
        to_asin,
    )
    holder.item_id = new_id
    holder.status = "gone"
    holder.updated_at = now
    session.flush()


def _retire(
    session: Session,
    account: Account,
    result: ReadResult,
    *,
    seen: Iterable[str],
    now: datetime,
) -> int:
    """Pull: retire listed listings the read positively says are gone, and, when the read
    is complete, those whose ASIN it did not carry at all."""
    read = result.read
    if not read.gone and not read.gone_skus and not read.complete:
        return 0
    addr = addressing(account.platform)
    seen_asins = set(seen)
    rows = session.execute(
        select(Listing.id, Listing.asin, Listing.item_id, Listing.sku, Listing.offer_id).where(
            Listing.account_id == account.id, Listing.status == "listed"
        )
    )
    retired = [
        listing_id
        for listing_id, asin, item_id, sku, offer_id in rows
        if (read.complete and asin not in seen_asins)
        or addr.positively_gone(ListingIds(item_id, sku or asin, offer_id), read)
    ]
    for start in range(0, len(retired), CHUNK):
        session.execute(
            update(Listing)
            .where(Listing.id.in_(retired[start : start + CHUNK]))
            .values(status="gone", updated_at=now)
        )
    gone = len(retired)
    if gone:
        log.warning(
            "%s: %d listings no longer exist on the channel: marked gone", account.name, gone
        )
    return gone


@dataclass(frozen=True, slots=True)
class ReconcileOutcome:
    account: str
    items: int
    drifted: int
    gone: int
    problems: int = 0
    complete: bool = True
    gone_ids: list[int] = field(default_factory=list)


def apply_reconcile(session: Session, result: ReadResult, now: datetime) -> ReconcileOutcome:
    """Refresh confirmed state of the account's listed listings from the read.

    A listing the read has is refreshed (and an id the channel assigned since, such as an
    eBay offer id, stored). A listing it lacks becomes ``gone`` (never pushed again unless
    re-imported or pulled) only on positive evidence about it, or when the read is complete;
    after a partial read it keeps its confirmed state until a read can tell.
    """
    account = _account(session, result.account)
    addr = addressing(account.platform)
    read = result.read
    by_item = {item.item_id: item for item in read.items if item.item_id}
    by_sku = {item.sku: item for item in read.items}
    listing_ids = list(
        session.scalars(
            select(Listing.id)
            .where(Listing.account_id == account.id, Listing.status == "listed")
            .order_by(Listing.id)
        )
    )
    drifted = 0
    gone_ids: list[int] = []
    kept_absent = 0
    for start in range(0, len(listing_ids), CHUNK):
        chunk = listing_ids[start : start + CHUNK]
        for listing in session.scalars(select(Listing).where(Listing.id.in_(chunk))):
            ids = _ids(listing)
            item = addr.match(ids, by_item, by_sku)
            if item is not None:
                found = addr.listing_ids(item)
                if found.offer_id and listing.offer_id != found.offer_id:
                    listing.offer_id = found.offer_id
                drifted += _apply_state(listing, item, now)
                continue
            if addr.positively_gone(ids, read) or read.complete:
                listing.status = "gone"
                listing.updated_at = now
                gone_ids.append(listing.id)
            else:
                kept_absent += 1
        session.flush()
        session.expunge_all()
    account = _account(session, result.account)
    account.last_reconciled_at = now
    if gone_ids:
        log.warning(
            "%s: %d listings no longer exist on the channel: marked gone",
            result.account,
            len(gone_ids),
        )
    if kept_absent:
        log.warning(
            "%s: %d listings missing from a partial read kept as listed",
            result.account,
            kept_absent,
        )
    return ReconcileOutcome(
        result.account,
        len(read.items),
        drifted,
        len(gone_ids),
        problems=len(read.problems),
        complete=read.complete,
        gone_ids=gone_ids,
    )
