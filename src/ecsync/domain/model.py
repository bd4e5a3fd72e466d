"""Value types that several domain modules share, and the traits of each sales platform.

The quote status travels from ``quotes`` (where it is decided) through the store to ``rules``
(where it decides the listing's state); the listing state travels from ``rules`` to ``plan``
and back from the channels. Keeping them here gives every module one definition.

The platform traits the domain needs (the listing currency, and whether a listing is taken
off sale with a visibility flag or with quantity 0) live in one table here. The domain
names no platform: the channel kinds (``ecsync.channels.kinds``) fill the table when they
register, so a new channel needs no change to the domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal

HidesWith = Literal["visible", "quantity"]

# The smallest amount a currency accepts in a price: a floor is rounded up to it.
MINOR_UNIT: Final = {"JPY": Decimal(1), "USD": Decimal("0.01")}


@dataclass(frozen=True, slots=True)
class PlatformTraits:
    """What the domain must know of a platform: its listing currency, and how it hides.

    ``hides_with="visible"``: a flag takes the listing off sale and its stock is kept (BASE);
    ``"quantity"``: quantity 0 takes it off sale, and no flag exists (eBay).
    """

    name: str
    currency: str
    hides_with: HidesWith


_PLATFORMS: dict[str, PlatformTraits] = {}


def register_platform(name: str, *, currency: str, hides_with: HidesWith) -> PlatformTraits:
    """Make ``name`` known to the domain (called by the channel kinds, and by tests)."""
    if currency not in MINOR_UNIT:
        raise ValueError(f"platform {name!r}: unknown currency {currency!r}")
    traits = PlatformTraits(name, currency, hides_with)
    _PLATFORMS[name] = traits
    return traits


def unregister_platform(name: str) -> None:
    _PLATFORMS.pop(name, None)


def known_platforms() -> tuple[str, ...]:
    return tuple(_PLATFORMS)


def platform_traits(platform: str) -> PlatformTraits:
    """The registered traits of ``platform``; ValueError names the known ones."""
    try:
        return _PLATFORMS[platform]
    except KeyError:
        known = ", ".join(_PLATFORMS) or "none registered"
        raise ValueError(f"unknown platform {platform!r} (known: {known})") from None


def currency_of(platform: str) -> str:
    """The one answer to "what currency does this platform list in"."""
    return platform_traits(platform).currency


class _CurrencyView(Mapping[str, str]):
    """``CURRENCY[platform]``, read live from the traits table (kept for existing callers)."""

    def __getitem__(self, platform: str) -> str:
        try:
            return _PLATFORMS[platform].currency
        except KeyError:
            raise KeyError(platform) from None

    def __iter__(self) -> Iterator[str]:
        return iter(_PLATFORMS)

    def __len__(self) -> int:
        return len(_PLATFORMS)


CURRENCY: Final[Mapping[str, str]] = _CurrencyView()


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
    desired one. A platform that hides with a flag uses ``visible`` and ``quantity`` (its
    stock); one that hides with quantity 0 has no flag, so ``visible`` stays ``None`` there.
    """

    price: Decimal | None = None
    visible: bool | None = None
    quantity: int | None = None


def check_platform(platform: str) -> str:
    """Fail loudly on a platform the domain knows nothing about (a programming error)."""
    platform_traits(platform)
    return platform


def is_listed(platform: str, state: ListingState) -> bool:
    """Whether buyers can see the listing: by its flag, or by a non-zero quantity, as the
    platform hides.

    An unknown field counts as listed: when in doubt, assume the listing can still sell, so
    that hiding it is planned rather than skipped.
    """
    if platform_traits(platform).hides_with == "visible":
        return state.visible is not False
    return state.quantity != 0


def hidden(platform: str, state: ListingState) -> ListingState:
    """``state`` taken off sale the platform's way, every other field left as it is."""
    if platform_traits(platform).hides_with == "visible":
        return replace(state, visible=False)
    return replace(state, quantity=0)
