"""What one listing *should* look like, given what we know about its Amazon source.

This is where the stock policy lives: sell while the source can be bought at a price that
clears the floor, take the listing off sale when it cannot (sold out, no eligible offer, or
an ASIN Amazon says is not valid in the marketplace), and do nothing on no evidence.
A failed fetch is not evidence (the listing stays as it is) until the last good quote is too
old to trust, or a listing has gone without any good quote for longer than that since it was
listed, and then the account's stale policy decides (hide by default: an oversold order
costs more than a missed sale). The result is a *desired* state; ``plan`` turns the
difference from the confirmed state into changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from ecsync.config import AccountSettings, PricingStrategy
from ecsync.domain.model import (
    ListingState,
    QuoteStatus,
    check_platform,
    currency_of,
    hidden,
    platform_traits,
)
from ecsync.domain.pricing import listing_currency, price_listing
from ecsync.domain.quotes import Quote

__all__ = ["Desired", "ProductQuote", "desired_state", "record_quote"]


@dataclass(frozen=True, slots=True)
class ProductQuote:
    """What the store knows about one product's source, as on the product row.

    ``status``, ``price`` (landed JPY) and ``fetched_at`` describe the last *good* quote
    (ok, out_of_stock, no_eligible_offer or unknown_asin: an answer, not an error);
    ``last_error`` is set while the latest attempt failed. ``status`` None (or ``error``:
    no good quote yet) means never quoted.
    """

    status: QuoteStatus | None = None
    price: Decimal | None = None
    fetched_at: datetime | None = None
    last_error: str | None = None


def record_quote(previous: ProductQuote | None, quote: Quote, fetched_at: datetime) -> ProductQuote:
    """The product's quote after a fetch: a good quote replaces it, an error only marks it."""
    if quote.status is QuoteStatus.ERROR:
        return replace(previous or ProductQuote(), last_error=quote.error or "unknown error")
    return ProductQuote(status=quote.status, price=quote.price, fetched_at=fetched_at)


@dataclass(frozen=True, slots=True)
class Desired:
    """The state a listing should have, the floor its price was held to, and why.

    ``floor`` is None when no price was computed (kept, hidden before pricing, stock-only);
    ``plan`` uses it to refuse any listed price below it.
    """

    state: ListingState
    floor: Decimal | None
    reason: str
    warnings: tuple[str, ...] = ()


def desired_state(
    account: AccountSettings,
    strategy: PricingStrategy,
    quote: ProductQuote,
    confirmed: ListingState,
    now: datetime,
    *,
    default_stale_after: timedelta,
    stock_only: bool = False,
    listed_since: datetime | None = None,
) -> Desired:
    """The desired state of one listing of ``account`` whose product has ``quote``.

    ``default_stale_after`` applies when the account sets no ``stale_after`` (the daemon
    passes twice its interval). ``stock_only`` leaves the price as confirmed and prices
    nothing. ``listed_since`` (when the listing was created or imported) lets a listing that
    never got a good quote fall under the stale policy once that is older than the limit.
    ``now``, ``quote.fetched_at`` and ``listed_since`` must all be aware (or all naive).
    """
    platform = check_platform(account.platform)
    if listing_currency(strategy) != currency_of(platform):
        raise ValueError(
            f"account {account.name!r} lists in {currency_of(platform)} but its pricing strategy "
            f"{strategy.kind!r} prices in {listing_currency(strategy)}"
        )
    stale_after = account.stale_after or default_stale_after
    if quote.status in (None, QuoteStatus.ERROR) or quote.fetched_at is None:
        note = f" (last error: {quote.last_error})" if quote.last_error else ""
        if listed_since is None or now - listed_since <= stale_after:
            return Desired(confirmed, None, f"no good quote yet{note}: kept as is")
        why = (
            f"no good quote in the {_age(now - listed_since)} since listed"
            f"{note} (limit {_age(stale_after)})"
        )
        if account.on_stale == "keep":
            return Desired(confirmed, None, f"{why}: kept as is (on_stale=keep)")
        return Desired(hidden(platform, confirmed), None, f"{why}: hidden")

    age = now - quote.fetched_at
    if age > stale_after:
        why = f"last good quote is {_age(age)} old (limit {_age(stale_after)})"
        if account.on_stale == "keep":
            return Desired(confirmed, None, f"{why}: kept as is (on_stale=keep)")
        return Desired(hidden(platform, confirmed), None, f"{why}: hidden")
    if quote.last_error is not None:
        why = f"latest fetch failed ({quote.last_error}); last good quote {_age(age)} old"
        return Desired(confirmed, None, f"{why}: kept as is")

    if quote.status is QuoteStatus.UNKNOWN_ASIN:
        why = "source unknown to Amazon (ASIN not valid in the marketplace): hidden"
        return Desired(hidden(platform, confirmed), None, why)
    if quote.status is not QuoteStatus.OK:
        return Desired(hidden(platform, confirmed), None, f"source {quote.status}: hidden")
    if quote.price is None:
        return Desired(hidden(platform, confirmed), None, "source ok but without a price: hidden")
    if stock_only:
        state = _on_sale(platform, account, confirmed, confirmed.price)
        return Desired(state, None, f"source in stock at {quote.price} yen (stock only)")

    decision = price_listing(strategy, quote.price, now)
    if decision.price is None:
        why = f"source {quote.price} yen cannot be priced: {decision.reason}"
        return Desired(hidden(platform, confirmed), decision.floor, why, decision.warnings)
    why = f"source {quote.price} yen -> {decision.price} {decision.currency} ({strategy.kind})"
    if decision.reason:
        why += f"; {decision.reason}"
    state = _on_sale(platform, account, confirmed, decision.price)
    return Desired(state, decision.floor, why, decision.warnings)


def _on_sale(
    platform: str, account: AccountSettings, confirmed: ListingState, price: Decimal | None
) -> ListingState:
    """Hidden by a flag (BASE): shown, with at least the restock quantity (restores an item
    sold out there); hidden by quantity (eBay): exactly the restock quantity (the source's
    real quantity is never known)."""
    if platform_traits(platform).hides_with == "visible":
        quantity = max(confirmed.quantity or 0, account.restock_quantity)
        return ListingState(price=price, visible=True, quantity=quantity)
    return ListingState(price=price, visible=confirmed.visible, quantity=account.restock_quantity)


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f}h"
