"""The exposure meter: how long channel listings stayed wrong, by the simulator's own truth.

CONTRACT STUB (issue 10): the lead wrote the interface; the body is to be built.

The meter listens to two kinds of change, each stamped with the simulated time it happened:
the market moved an ASIN's offers (:meth:`asin_changed`, wired as ``Market.listener``), and
a channel item changed (:meth:`base_item_changed`, :meth:`ebay_offer_changed`, called by the
BASE and eBay routes and the control API after every edit, delete or publish). Between
changes nothing moves, so the integrals are exact at any ``--speed``.
"""

from __future__ import annotations

from typing import Any

from ecsync.sim.channels import BaseAccount, EbayAccount
from ecsync.sim.market import Market, Product

__all__ = ["ExposureMeter"]


class ExposureMeter:
    """Oversell and under-cost listing-seconds per channel account, and sell-out latencies."""

    def __init__(
        self,
        market: Market,
        base: dict[str, BaseAccount],
        ebay: dict[str, EbayAccount],
        start: float,
    ) -> None:
        self.market = market
        self.base = base
        self.ebay = ebay
        self.start = start

    def asin_changed(self, product: Product, at: float) -> None:
        """The market changed ``product``'s offers at simulated time ``at``."""

    def base_item_changed(self, account: str, item_id: int, at: float) -> None:
        """A BASE item was edited, created or deleted at ``at`` (deleted: not buyable)."""

    def ebay_offer_changed(self, account: str, sku: str, at: float) -> None:
        """An eBay offer was revised, published, withdrawn or removed at ``at``."""

    def reset(self, now: float) -> None:
        """Start counting again from ``now`` (open exposures restart at ``now``)."""

    def snapshot(self, now: float) -> dict[str, Any]:
        """The figures up to ``now`` (shape: see the issue 10 brief)."""
        return {}
