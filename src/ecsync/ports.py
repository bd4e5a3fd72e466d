"""The values that cross the channel port, and how a listing is addressed on its channel.

These types are neutral ground: the adapters in ``ecsync.channels`` produce and consume them,
the engine passes them along, and the store records them, without the store (or the pure
domain) importing any adapter. ``ecsync.channels.protocol`` re-exports every name, so code
that imports them from there keeps working.

How a listing's ids map to the id a channel call uses belongs to the channel: each channel
kind (``ecsync.channels.kinds``) registers an :class:`Addressing` here, and the journal asks
for it by platform name when it turns a planned change into a ``ChannelChange``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Addressing",
    "Budget",
    "ChangeResult",
    "ChannelChange",
    "ChannelItem",
    "ChannelRead",
    "ListingIds",
    "Outcome",
    "ReadProblem",
    "addressing",
    "register_addressing",
    "unregister_addressing",
]


@dataclass(frozen=True, slots=True)
class ChannelItem:
    """An item as the channel holds it now."""

    item_id: str  # BASE item_id; eBay offerId
    sku: str  # BASE: identifier (the ASIN ecsync stores there); eBay: SKU (= ASIN)
    price: Decimal | None  # JPY for BASE, USD for eBay
    visible: bool | None  # BASE visible flag; None on eBay
    quantity: int | None  # BASE stock; eBay availableQuantity
    title: str = ""
    status: str = ""  # eBay PUBLISHED / UNPUBLISHED; BASE empty


@dataclass(frozen=True, slots=True)
class ChannelChange:
    """One listing's change to send. ``None`` fields are left as they are on the channel."""

    change_id: int
    item_id: str  # BASE item_id; eBay offerId (may be "" when not yet known)
    sku: str
    price: Decimal | None = None
    visible: bool | None = None
    quantity: int | None = None


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """Something a bulk read could not get: the read is *partial* because of it.

    ``where`` names the place for the log (``"SKU B000000001"``, ``"item 1234"``,
    ``"page offset=300"``); ``error`` is the channel's answer or the transport error.
    """

    where: str
    error: str


@dataclass(frozen=True, slots=True)
class ChannelRead:
    """The outcome of reading a whole account in bulk.

    An error is never evidence that an item is gone: only a read that is ``complete`` (no
    problem at all) lets the engine retire listings by their *absence*, and ``gone`` lists the
    ids the channel answered about positively (BASE ``bad_item_id``/``no_item``, eBay 404 or
    errorId 25713 for that SKU or offer). Ids in ``gone`` are item ids as in ``ChannelItem``;
    ``gone_skus`` holds SKUs the channel said have no offer at all.
    """

    items: list[ChannelItem]
    problems: list[ReadProblem] = field(default_factory=list)
    gone: frozenset[str] = frozenset()
    gone_skus: frozenset[str] = frozenset()
    calls: int = 0

    @property
    def complete(self) -> bool:
        return not self.problems


class Outcome(StrEnum):
    APPLIED = "applied"  # the channel confirmed the new state
    FAILED = "failed"  # the channel refused this change; retrying it as-is would not help
    GONE = "gone"  # the item no longer exists on the channel (BASE bad_item_id, eBay 25713)
    DEFERRED = "deferred"  # not sent or not settled: budget exhausted, transient error


@dataclass(frozen=True, slots=True)
class ChangeResult:
    change_id: int
    outcome: Outcome
    error: str | None = None
    confirmed: ChannelItem | None = None  # the state the channel reported back, when it did
    offer_id: str | None = None  # eBay: the offer id found for the SKU, to store on the listing
    retry_after: datetime | None = None  # DEFERRED: when the budget is expected back


@dataclass(frozen=True, slots=True)
class Budget:
    """What is left of an account's API allowance, for ``status`` and metrics."""

    name: str  # e.g. "hour", "day"
    limit: int
    used: int
    resets_at: datetime | None


@dataclass(frozen=True, slots=True)
class ListingIds:
    """A listing's ids as the store keeps them, for a channel to address or match it.

    ``sku`` is the listing's SKU, or its ASIN when it has none (ecsync stores the ASIN as the
    channel's SKU or identifier); ``offer_id`` is set by channels that have one (eBay).
    """

    item_id: str
    sku: str
    offer_id: str | None = None


class Addressing(Protocol):
    """The channel-specific part of addressing and matching listings (see channels/kinds)."""

    @property
    def name(self) -> str:
        """The platform name it is registered under."""
        ...

    def change_item_id(self, ids: ListingIds) -> str:
        """The ``ChannelChange.item_id`` of a change to this listing ("" when not yet known)."""
        ...

    def match(
        self,
        ids: ListingIds,
        by_item: Mapping[str, ChannelItem],
        by_sku: Mapping[str, ChannelItem],
    ) -> ChannelItem | None:
        """The item of a read that is this listing, if the read has it."""
        ...

    def positively_gone(self, ids: ListingIds, read: ChannelRead) -> bool:
        """Whether the read says, about this very listing, that it no longer exists."""
        ...

    def listing_ids(self, item: ChannelItem) -> ListingIds:
        """The ids a listing pulled from ``item`` stores."""
        ...


_ADDRESSING: dict[str, Addressing] = {}


def register_addressing(addressing: Addressing) -> None:
    _ADDRESSING[addressing.name] = addressing


def unregister_addressing(name: str) -> None:
    _ADDRESSING.pop(name, None)


def addressing(platform: str) -> Addressing:
    """The registered addressing of ``platform``; a KeyError names what is known."""
    try:
        return _ADDRESSING[platform]
    except KeyError:
        known = ", ".join(sorted(_ADDRESSING)) or "none registered"
        raise KeyError(f"no channel kind {platform!r} registered (known: {known})") from None
