"""Writing quotes onto product rows, where an error is never evidence of a sell-out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.domain.model import QuoteStatus
from ecsync.domain.quotes import Quote
from ecsync.store.schema import Product

AVAILABLE = QuoteStatus.OK


@dataclass(frozen=True, slots=True)
class QuoteWrite:
    asin: str
    quote: Quote


def write_quotes(session: Session, quotes: Sequence[QuoteWrite], now: datetime) -> None:
    """One batch in one transaction. Good quotes replace the product's quote; an ``error``
    touches only the error fields, keeping the last good price and availability."""
    rows = {
        p.asin: p
        for p in session.scalars(select(Product).where(Product.asin.in_([q.asin for q in quotes])))
    }
    for item in quotes:
        product = rows.get(item.asin)
        if product is None:
            product = Product(asin=item.asin, error_count=0)
            session.add(product)
        quote = item.quote
        product.last_attempt_at = now
        if quote.status == QuoteStatus.ERROR:
            product.last_error = quote.error or "unknown error"
            product.last_error_at = now
            product.error_count = (product.error_count or 0) + 1
            continue
        was_available = product.quote_status == AVAILABLE
        is_available = quote.status == AVAILABLE
        if product.quote_status is None or was_available != is_available:
            product.stock_changed_at = now
        if quote.price is not None and quote.price != product.price:
            product.price = quote.price
            product.price_changed_at = now
        product.quote_status = quote.status.value
        offer = quote.offer
        product.seller_id = offer.seller_id if offer else None
        product.is_fba = offer.is_fba if offer else None
        product.is_prime = offer.is_prime if offer else None
        product.handling_hours = offer.max_handling_hours if offer else None
        product.offer_count = quote.offer_count
        product.fetched_at = now
        product.error_count = 0
