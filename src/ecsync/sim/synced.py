"""What a correct sync would have left on the channels: the simulator's own small rules.

The seeding needs "the price ecsync's default config would list this product at", but it must
not ask ecsync (``ecsync.domain``) for it: a pricing or parsing bug in the client would then
agree with itself and no test could see it. These rules are written out here, independently
and only as far as the simulator's market and the default config need them:

Source offer (the default ``[amazon.offers]`` rules). Of a product's offers, only those that
are new (sub-condition ``new``), available now (``availabilityType`` NOW) and ship within
72 hours (``maximumHours`` <= 72) count; the source cost is the cheapest *landed* price of
those, landed = listing price + shipping (points are not subtracted). No such offer: no
source, the listing is hidden (BASE) or at quantity 0 (eBay).

BASE, the ``markup`` strategy with its defaults: cost x 1.3, rounded to the nearest 10 yen
with halves going up (1,625 -> 1,630), and never below the floor cost x 1.05 (rounded up to
the yen, then up to the next 10 yen).

eBay, the ``ebay_formula`` strategy with its defaults: (cost + 4,000 yen shipping + 500 yen
packaging) / (1 - 0.17 fees - 0.15 duty - 0.20 margin), divided by 150 yen per dollar, rounded
to the nearest cent with halves going up; never below the floor cost x 1.05 / 150 (rounded up
to the cent).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from ecsync.sim.market import Offer

__all__ = ["base_price", "ebay_price", "source_cost"]

MAX_HANDLING_HOURS = 72
BASE_RATIO = Decimal("1.3")
BASE_STEP = Decimal(10)
MIN_MARGIN = Decimal("1.05")
EBAY_EXTRA_YEN = Decimal(4000 + 500)
EBAY_KEEP = 1 - Decimal("0.17") - Decimal("0.15") - Decimal("0.20")
USD_JPY = Decimal(150)
CENT = Decimal("0.01")


def source_cost(offers: Iterable[Offer]) -> int | None:
    """The cheapest landed yen price of an offer a reseller would buy from, or None."""
    landed = [
        offer.price + offer.shipping
        for offer in offers
        if offer.sub_condition == "new"
        and offer.availability == "NOW"
        and offer.max_hours <= MAX_HANDLING_HOURS
    ]
    return min(landed, default=None)


def _on_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).quantize(Decimal(1), rounding=rounding) * step


def base_price(cost: int) -> int:
    """The BASE listing price (yen) for a source cost of ``cost`` yen."""
    price = _on_step(cost * BASE_RATIO, BASE_STEP, ROUND_HALF_UP)
    floor = _on_step(cost * MIN_MARGIN, Decimal(1), ROUND_CEILING)
    if price < floor:
        price = _on_step(floor, BASE_STEP, ROUND_CEILING)
    return int(price)


def ebay_price(cost: int) -> Decimal:
    """The eBay listing price (dollars, two decimals) for a source cost of ``cost`` yen."""
    price = _on_step((cost + EBAY_EXTRA_YEN) / EBAY_KEEP / USD_JPY, CENT, ROUND_HALF_UP)
    floor = _on_step(cost * MIN_MARGIN / USD_JPY, CENT, ROUND_CEILING)
    return max(price, floor)
