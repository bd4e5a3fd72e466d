"""The one small protocol every sales channel adapter implements.

The engine knows channels only through this: read an account's items in bulk (for ``pull``
and reconcile), and apply a list of changes (for push). Adapters own everything
channel-specific: auth and token rotation, paging, batching (eBay 25 per call), call
budgets, and mapping each channel answer back to the change it settles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


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


class ChannelAdapter(Protocol):
    platform: str
    account: str

    def read_items(self) -> AsyncIterator[ChannelItem]:
        """Every item of the account, paged in bulk (BASE 100 per call)."""
        ...

    async def read(self) -> ChannelRead:
        """The whole account in bulk, with what could not be read (see ``ChannelRead``).

        Raises ``ChannelError`` subclasses only when nothing useful was read (auth refused,
        budget spent, channel down); per-item problems go into ``problems``.
        """
        ...

    async def apply(self, changes: Sequence[ChannelChange]) -> list[ChangeResult]:
        """Send the changes, batched where the API allows; one result per change, in order.

        Never raises for a per-item problem; raises ``ChannelAuthError`` when the account's
        credentials are refused, and returns DEFERRED results for whatever could not be sent.
        """
        ...

    async def budgets(self) -> list[Budget]: ...

    @property
    def calls(self) -> int:
        """HTTP calls made so far (for the cycle's ``channel_calls``)."""
        ...

    async def aclose(self) -> None: ...
