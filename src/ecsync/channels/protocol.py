"""The one small protocol every sales channel adapter implements.

The engine knows channels only through this: read an account's items in bulk (for ``pull``
and reconcile), and apply a list of changes (for push). Adapters own everything
channel-specific: auth and token rotation, paging, batching (eBay 25 per call), call
budgets, and mapping each channel answer back to the change it settles. The value types
live in ``ecsync.ports`` (neutral ground the store may import) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol

from ecsync.ports import (
    Budget,
    ChangeResult,
    ChannelChange,
    ChannelItem,
    ChannelRead,
    ListingIds,
    Outcome,
    ReadProblem,
)

__all__ = [
    "Budget",
    "ChangeResult",
    "ChannelAdapter",
    "ChannelChange",
    "ChannelItem",
    "ChannelRead",
    "ListingIds",
    "Outcome",
    "ReadProblem",
]


class ChannelAdapter(Protocol):
    platform: str
    account: str

    def read_items(self) -> AsyncIterator[ChannelItem]:
        """Every item of the account, paged in bulk (BASE 100 per call)."""
        ...

    async def read(self, expected_skus: Iterable[str] = ()) -> ChannelRead:
        """The whole account in bulk, with what could not be read (see ``ChannelRead``).

        ``expected_skus`` are the SKUs ecsync lists on the account: an adapter whose bulk read
        can miss some (eBay's report leaves out withdrawn offers) reads those one by one.
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
