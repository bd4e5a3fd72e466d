"""Writing quotes onto product rows, where an error is never evidence of a sell-out.

Each good quote also keeps what it implied for probes (the Buy Box and the new offer count)
and extends the ASIN's change history (``quote_changes`` over ``observed_s``), from which the
refresh scheduler learns how often the ASIN moves. An error touches neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.domain.model import QuoteStatus
from ecsync.domain.probes import QuoteView, quote_view_from_stored
from ecsync.domain.quotes import Quote
from ecsync.store.schema import Product

AVAILABLE = QuoteStatus.OK


@dataclass(frozen=True, slots=True)
class QuoteWrite:
    asin: str
    quote: Quote
    view: QuoteView | None = None  # what the full answer implied for probes (None: unsaid)


def write_quotes(session: Session, quotes: Sequence[QuoteWrite], now: datetime) -> dict[str, bool]:
    """One batch in one transaction. Good quotes replace the product's quote; an ``error``
    touches only the error fields, keeping the last good price and availability.

    Returns, for every good quote written, whether it *changed* the product: its price or
    its availability moved since the previous good quote (a first quote is no change).
    """
    rows = {
        p.asin: p
        for p in session.scalars(select(Product).where(Product.asin.in_([q.asin for q in quotes])))
    }
    changed: dict[str, bool] = {}
    for item in quotes:
        product = rows.get(item.asin)
        if product is None:
            product = rows[item.asin] = Product(
                asin=item.asin, error_count=0, quote_changes=0, observed_s=0.0
            )
            session.add(product)
        quote = item.quote
        product.last_attempt_at = now
        if quote.status == QuoteStatus.ERROR:
            product.last_error = quote.error or "unknown error"
            product.last_error_at = now
            product.error_count = (product.error_count or 0) + 1
            continue
        first = product.quote_status is None
        was_available = product.quote_status == AVAILABLE
        is_available = quote.status == AVAILABLE
        moved = False
        if first or was_available != is_available:
            product.stock_changed_at = now
            moved = not first
        if quote.price is not None and quote.price != product.price:
            moved = moved or product.price is not None
            product.price = quote.price
            product.price_changed_at = now
        if not first and product.fetched_at is not None:
            product.observed_s = (product.observed_s or 0.0) + max(
                0.0, (now - product.fetched_at).total_seconds()
            )
        if moved:
            product.quote_changes = (product.quote_changes or 0) + 1
        changed[item.asin] = moved
        product.quote_status = quote.status.value
        offer = quote.offer
        product.seller_id = offer.seller_id if offer else None
        product.is_fba = offer.is_fba if offer else None
        product.is_prime = offer.is_prime if offer else None
        product.handling_hours = offer.max_handling_hours if offer else None
        product.offer_count = quote.offer_count
        view = item.view
        product.buy_box_present = view.buy_box_present if view else None
        product.buy_box_landed = view.buy_box_landed if view else None
        product.new_offer_count = view.new_offer_count if view else None
        product.fetched_at = now
        product.error_count = 0
    return changed


def stored_view(product: Product) -> QuoteView | None:
    """What the product's last good quote implied for a probe: the kept Buy Box and count
    when the quote said them, else the little its status and offer count imply."""
    if product.buy_box_present is not None or product.new_offer_count is not None:
        return QuoteView(
            buy_box_present=product.buy_box_present,
            buy_box_landed=product.buy_box_landed,
            new_offer_count=product.new_offer_count,
        )
    return quote_view_from_stored(product.quote_status, product.offer_count)
