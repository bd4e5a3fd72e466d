"""What clients did to the simulator, in the shape of ``GET /_sim/stats`` (INTERFACE.md).

Tests and benchmarks judge ecsync by these numbers (how many SP-API calls, how often an
ASIN was fetched, how many channel writes), so every route reports here and nowhere else.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class ChannelCounters:
    __slots__ = ("errors", "feed_calls", "limit_errors", "reads", "writes")

    def __init__(self) -> None:
        self.reads = 0
        self.feed_calls = 0  # eBay Sell Feed API calls (report tasks), apart from reads
        self.writes = 0
        self.limit_errors = 0
        self.errors = 0


class SimStats:
    def __init__(self, base_accounts: list[str], ebay_accounts: list[str]) -> None:
        self._base_names = base_accounts
        self._ebay_names = ebay_accounts
        self.reset()

    def reset(self) -> None:
        self.spapi_requests: Counter[str] = Counter()
        self.spapi_throttled = 0
        self.spapi_throttled_by_operation: Counter[str] = Counter()
        # ASINs answered (a success for that ASIN went out), per operation: what each bucket
        # bought, e.g. 20 per getCompetitivePricing request against 20 per batch.
        self.spapi_asins: Counter[str] = Counter()
        self.asin_fetches: Counter[str] = Counter()
        self.base = {name: ChannelCounters() for name in self._base_names}
        self.ebay = {name: ChannelCounters() for name in self._ebay_names}

    def throttled(self, operation: str) -> None:
        """A request of ``operation`` was answered 429 (its bucket was empty, or a fault)."""
        self.spapi_throttled += 1
        self.spapi_throttled_by_operation[operation] += 1

    def answered(self, operation: str, count: int = 1) -> None:
        """``count`` ASINs got a successful answer from ``operation`` (failed items do not
        count). Unlike :meth:`served` this is per operation, not per ASIN."""
        self.spapi_asins[operation] += count

    def served(self, asin: str) -> None:
        """An ASIN's offers went out in a getItemOffers(Batch) answer: ``asin_fetches`` counts
        full quotes only (what a sync pays for), not the probes of the other operations."""
        self.asin_fetches[asin] += 1

    def snapshot(self) -> dict[str, Any]:
        fetches = self.asin_fetches
        return {
            "spapi": {
                "requests": dict(self.spapi_requests),
                "throttled": self.spapi_throttled,
                "throttled_by_operation": dict(self.spapi_throttled_by_operation),
                "asins_by_operation": dict(self.spapi_asins),
                "asin_fetches": {
                    "total": sum(fetches.values()),
                    "distinct": len(fetches),
                    "max_per_asin": max(fetches.values(), default=0),
                },
            },
            "base": {
                name: {
                    "reads": c.reads,
                    "writes": c.writes,
                    "limit_errors": c.limit_errors,
                    "errors": c.errors,
                }
                for name, c in self.base.items()
            },
            "ebay": {
                name: {
                    "reads": c.reads,
                    "writes": c.writes,
                    "errors": c.errors,
                    "feed_calls": c.feed_calls,
                }
                for name, c in self.ebay.items()
            },
        }
