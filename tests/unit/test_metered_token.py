"""A token that cannot be had for a moment still costs the operation its slot.

The refresher's single-quote and probe loops ask again as soon as a call fails. Before the
fix, ``MeteredPricing`` asked for the token before taking a slot, so an LWA outage (a refused
connection fails at once) made both loops spin: a token request and a store write per turn,
as fast as the CPU allows. The oracle: the governor's slots taken, counted by a fake.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from ecsync.amazon.client import COMPETITIVE_PRICING, ITEM_OFFERS, OffersClient
from ecsync.amazon.errors import TransientError
from ecsync.amazon.governor import RateGovernor
from ecsync.amazon.metered import MeteredPricing


class _NoToken:
    """A client whose LWA is down: every token request fails at once; nothing is sent."""

    def __init__(self) -> None:
        self.sent = 0

    async def ensure_token(self) -> None:
        raise TransientError("LWA token request: ConnectError: connection refused")

    async def item_offers(self, asin: str) -> Any:  # pragma: no cover - never reached
        self.sent += 1
        raise AssertionError("sent without a token")

    async def competitive_pricing(self, asins: Any) -> Any:  # pragma: no cover
        self.sent += 1
        raise AssertionError("sent without a token")


class _Slots:
    """Counts the slots taken per operation."""

    def __init__(self) -> None:
        self.taken: dict[str, int] = {}

    async def acquire(self, operation: str) -> float:
        self.taken[operation] = self.taken.get(operation, 0) + 1
        return 0.0


def test_a_failed_token_request_takes_the_operations_slot() -> None:
    client, slots = _NoToken(), _Slots()
    metered = MeteredPricing(cast(OffersClient, client), cast(RateGovernor, slots))

    async def go() -> None:
        for _ in range(3):
            with pytest.raises(TransientError):
                await metered.item_offers("B000000001")
        with pytest.raises(TransientError):
            await metered.competitive_pricing(["B000000001"])

    asyncio.run(go())
    assert slots.taken == {ITEM_OFFERS: 3, COMPETITIVE_PRICING: 1}
    assert client.sent == 0
    assert not metered.requests  # nothing was sent: no request counted
