"""The market moving on its own: a seeded schedule of events at ``--market-rate``.

CONTRACT STUB (issue 10): the lead wrote the interface; the body is to be built.
"""

from __future__ import annotations

from typing import Any

from ecsync.sim.market import Market

__all__ = ["MarketEvents"]


class MarketEvents:
    """Events due by simulated time, applied in order through ``Market``'s writing methods
    (each one calls ``market.changed(product, at=event_time)``)."""

    def __init__(
        self, market: Market, seed: int, rate: float, volatility: str, start: float
    ) -> None:
        self.market = market
        self.seed = seed
        self.rate = rate
        self.volatility = volatility
        self.start = start

    def advance(self, now: float) -> int:
        """Apply every event due at or before ``now``; returns how many were applied."""
        return 0

    def since(self, t: float) -> list[dict[str, Any]]:
        """The applied events with time >= ``t``, oldest first."""
        return []
