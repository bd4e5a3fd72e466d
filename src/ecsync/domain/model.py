"""Value types that several domain modules share.

The quote status travels from ``quotes`` (where it is decided) through the store to ``rules``
(where it decides the listing's state); the listing state travels from ``rules`` to ``plan``
and back from the channels. Keeping them here gives every module one definition, and keeps
the platform differences (BASE hides with a flag, eBay with quantity 0) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final

BASE: Final = "base"
EBAY: Final = "ebay"
PLATFORMS: Final = (BASE, EBAY)

# The listing currency of each platform: BASE sells in integer yen, eBay (EBAY_US) in USD.
CURRENCY: Final = {BASE: "JPY", EBAY: "USD"}
# The smallest amount a platform accepts in a price: a floor is rounded up to it.
MINOR_UNIT: Final = {"JPY": Decimal(1), "USD": Decimal("0.01")}


class QuoteStatus(StrEnum):
    """What one look at an item's Amazon offers found.

    ``out_of_stock`` and ``no_eligible_offer`` are evidence that the item cannot be bought
    now; ``unknown_asin`` is Amazon's answer that the ASIN is not valid in the marketplace
    (given while other items of the same batch were answered); ``error`` is not evidence of
    anything (see DESIGN: "an error is not evidence").
    """

    OK = "ok"
    OUT_OF_STOCK = "out_of_stock"
    NO_ELIGIBLE_OFFER = "no_eligible_offer"
    UNKNOWN_ASIN = "unknown_asin"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ListingState:
    """The channel-facing state of one listing: what is confirmed there, or what we want.

    ``None`` in a field means "unknown" in a confirmed state and "no opinion, leave it" in a
    desired one. BASE uses ``visible`` and ``quantity`` (its stock); eBay has no visibility
    flag, so ``visible`` stays ``None`` there and quantity 0 takes the listing off sale.
    """

    price: Decimal | None = None
    visible: bool | None = None
    quantity: int | None = None


def check_platform(platform: str) -> str:
    """Fail loudly on a platform the domain knows nothing about (a programming error)."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r} (known: {', '.join(PLATFORMS)})")
    return platform


def is_listed(platform: str, state: ListingState) -> bool:
    """Whether buyers can see the listing: BASE by its flag, eBay by a non-zero quantity.

    An unknown field counts as listed: when in doubt, assume the listing can still sell, so
    that hiding it is planned rather than skipped.
    """
    if check_platform(platform) == BASE:
        return state.visible is not False
    return state.quantity != 0


def hidden(platform: str, state: ListingState) -> ListingState:
    """``state`` taken off sale the platform's way, every other field left as it is."""
    if check_platform(platform) == BASE:
        return replace(state, visible=False)
    return replace(state, quantity=0)
