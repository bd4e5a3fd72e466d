"""The market moving on its own: a seeded schedule of events at ``--market-rate``.

What a reseller pays for is how long a listing stays wrong after Amazon moved, so the
simulator's market has to move by itself, the same way in every run, whatever the clients
do. This module is that schedule and the log of what it did.

Rates. ``--market-rate R`` is the mean number of events per product per simulated day.
*uniform*: every product has rate R. *skewed* (the default): each product draws a weight
from a lognormal distribution (sigma 1.75, from ``random.Random(f"event-rates:{seed}")``)
and the weights are scaled so that their mean is exactly R; about 10 % of the products then
carry two thirds of the rate, as real catalogs do (a few hot items churn, most sit still).
Only the products in the catalog when the schedule is built have a rate (an ASIN the
control API adds later never moves by itself).

Schedule. A Poisson process over the whole catalog at the total rate: simulated time is cut
into chunks of one hour; chunk k is generated from ``random.Random(f"events:{seed}:{k}")``
alone (exponential gaps at the total rate from the chunk's start, each event's product
picked in proportion to its rate by bisecting a cumulative ``array('d')``), and every event
draws its OWN 64-bit seed there. An event at offset x happens at ``start + x``. So the
schedule is a pure function of the seed, the rates and the time since the start, and
nothing a client or the control API does can shift it.

Outcome. When an event is applied (in time order, by :meth:`MarketEvents.advance`, which
every request runs first) its kind and effect are drawn from ``random.Random(event_seed)``
and the product's offers at that moment, nothing else: a hand edit of one product through
the control API changes only that product's later outcomes. Kinds:

* ``restocked``: the product has no eligible offer (the simulator's own rule,
  :func:`ecsync.sim.synced.source_cost`): it gets fresh offers as the generator makes them,
  drawn again until one is eligible. A product without an eligible offer ALWAYS draws this.

For a product with an eligible offer, by weight:

* ``price_up`` 28 %, ``price_down`` 28 %: every offer's price (and points) scales by 5-30 %
  (shipping stays): the buy box moves.
* ``sold_out`` 12 %: no eligible offer is left. Mostly every offer goes; when the product
  also has offers a reseller must not buy from, a quarter of the time only the eligible
  ones leave, so the buy box may stay (held by an ineligible offer) while a reseller has
  no source.
* ``offer_added`` 16 %: an eligible offer appears at a landed price above the buy box's
  (with no buy box, a non-featured one); ``offer_removed`` 16 %: an eligible offer that does
  not hold the buy box leaves. Neither changes the buy-box offer or its landed price
  (:func:`ecsync.sim.payloads.buy_box_index`), so a client that only watches the buy box
  misses them; yet the true cost may move: a removed offer may have been the cheapest
  eligible one (behind an ineligible buy box, or not featured), or the last eligible one
  (the cost goes to None and the event is still ``offer_removed``). When an offer cannot be
  added (20 offers already) the event removes one instead, and the other way round; when
  neither is possible it is a price move (up or down, evenly).

Log. Every applied event is kept as a compact row of parallel arrays (time, product, kind,
cost and buy-box price before and after; about 45 bytes an event), the newest
:data:`KEEP` of them; ``GET /_sim/market/events?since=T`` reads it (``truncated`` when
events at or after T were dropped).

Hold. With ``--market-hold`` nothing moves until ``POST /_sim/market/start``
(:meth:`MarketEvents.start_at`), which anchors the schedule's start at that moment, so a
benchmark can set up its shop first and every run sees the same simulated day.

Cost. An idle request (no event due) is one comparison; a chunk (an hour of schedule) is
generated when the clock reaches it; applying an event unpacks one product's offers twice.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import random
from array import array
from typing import Any

from ecsync.sim.market import MAX_OFFERS, Market, Offer, Product
from ecsync.sim.payloads import buy_box_index
from ecsync.sim.synced import source_cost

__all__ = [
    "CHUNK_SECONDS",
    "KEEP",
    "KINDS",
    "SKEW_SIGMA",
    "MarketEvents",
    "product_rates",
    "still_report",
]

DAY = 86_400.0
CHUNK_SECONDS = 3600.0
SKEW_SIGMA = 1.75
KEEP = 500_000
VOLATILITIES = ("skewed", "uniform")

KINDS = ("price_up", "price_down", "sold_out", "restocked", "offer_added", "offer_removed")
PRICE_UP, PRICE_DOWN, SOLD_OUT, RESTOCKED, OFFER_ADDED, OFFER_REMOVED = range(len(KINDS))
# Cumulative weights of the kinds drawn for a product that has an eligible offer.
_DRAW = (
    (0.28, PRICE_UP),
    (0.56, PRICE_DOWN),
    (0.68, SOLD_OUT),
    (0.84, OFFER_ADDED),
    (1.00, OFFER_REMOVED),
)
_NONE = -1  # None in the log's integer arrays (prices are positive yen)

log = logging.getLogger(__name__)


def product_rates(seed: int, count: int, rate: float, volatility: str) -> array[float]:
    """Events per simulated day for each of ``count`` products; their mean is ``rate``."""
    if rate < 0 or not math.isfinite(rate):
        raise ValueError(f"the market rate must be 0 or more, not {rate}")
    if volatility not in VOLATILITIES:
        raise ValueError(f"volatility must be skewed or uniform, not {volatility!r}")
    if volatility == "uniform" or count == 0:
        return array("d", [rate]) * count
    rng = random.Random(f"event-rates:{seed}")
    weights = array("d", (rng.lognormvariate(0.0, SKEW_SIGMA) for _ in range(count)))
    scale = rate * count / math.fsum(weights)
    return array("d", (w * scale for w in weights))


def still_report(
    now: float, since: float | None, volatility: str, limit: int | None
) -> dict[str, Any]:
    """The events answer of a market that does not move (``--market-rate 0``): no start."""
    answer: dict[str, Any] = {
        "now": now,
        "since": since,
        "start": None,
        "rate": 0.0,
        "volatility": volatility,
        "held": False,
        "count": 0,
        "truncated": False,
        "by_kind": dict.fromkeys(KINDS, 0),
    }
    if limit is not None:
        answer |= {"events": [], "more": False}
    return answer


def _eligible(offer: Offer) -> bool:
    return source_cost((offer,)) is not None


def _or_none(value: int) -> int | None:
    return None if value == _NONE else value


class MarketEvents:
    """Events due by simulated time, applied in order through ``Market``'s writing methods
    (each one calls ``market.changed(product, at=event_time)``)."""

    def __init__(
        self,
        market: Market,
        seed: int,
        rate: float,
        volatility: str,
        start: float,
        *,
        held: bool = False,
        keep: int = KEEP,
    ) -> None:
        self.market = market
        self.seed = seed
        self.rate = rate
        self.volatility = volatility
        self.start = start
        self.held = held
        self.keep = keep
        self.rates = product_rates(seed, len(market.products), rate, volatility)
        self._cumulative = array("d", itertools.accumulate(self.rates))
        self._total = self._cumulative[-1] if self._cumulative else 0.0
        self._top_share: float | None = None
        # The chunk being applied: offsets from start, product indices, event seeds.
        self._chunk = -1
        self._offsets: array[float] = array("d")
        self._products: array[int] = array("i")
        self._seeds: array[int] = array("Q")
        self._pos = 0
        # Absolute simulated time before which nothing is due (inf: never).
        self._due = math.inf
        # The log, as parallel arrays (see the module doc).
        self._t: array[float] = array("d")
        self._asin: array[int] = array("i")
        self._kind: array[int] = array("b")
        self._cost_before: array[int] = array("q")
        self._cost_after: array[int] = array("q")
        self._box_before: array[int] = array("q")
        self._box_after: array[int] = array("q")
        self._dropped_until = -math.inf
        self.applied = 0
        self.applied_by_kind = [0] * len(KINDS)
        self.failed = 0  # events skipped because applying them raised (a simulator bug)
        self._rearm()

    # --- the schedule -----------------------------------------------------------------

    def chunk(self, index: int) -> tuple[array[float], array[int], array[int]]:
        """Chunk ``index`` of the schedule: offsets from the start (seconds, ascending),
        product indices and event seeds. A pure function of seed, rates and index."""
        offsets: array[float] = array("d")
        products: array[int] = array("i")
        seeds: array[int] = array("Q")
        if self._total <= 0:
            return offsets, products, seeds
        rng = random.Random(f"events:{self.seed}:{index}")
        per_second = self._total / DAY
        cumulative, total, last = self._cumulative, self._total, len(self._cumulative) - 1
        offset = index * CHUNK_SECONDS
        end = offset + CHUNK_SECONDS
        while True:
            offset += rng.expovariate(per_second)
            if offset >= end:
                return offsets, products, seeds
            offsets.append(offset)
            products.append(min(last, bisect.bisect_right(cumulative, rng.random() * total)))
            seeds.append(rng.getrandbits(64))

    def _rearm(self) -> None:
        """Point the next due time at the start of the schedule (or nowhere if still)."""
        self._chunk, self._pos = -1, 0
        self._offsets, self._products, self._seeds = array("d"), array("i"), array("Q")
        self._due = math.inf if self.held or self._total <= 0 else self.start

    def start_at(self, now: float) -> None:
        """``POST /_sim/market/start``: a held market starts its schedule at ``now``."""
        if not self.held:
            raise ValueError(f"the market is already moving (its schedule started at {self.start})")
        self.start, self.held = now, False
        self._rearm()

    def advance(self, now: float) -> int:
        """Apply every event due at or before ``now``; returns how many were applied."""
        if now < self._due:  # the common case: runs before every request
            return 0
        applied = 0
        start = self.start
        while True:
            if self._pos >= len(self._offsets):
                following = self._chunk + 1
                boundary = start + following * CHUNK_SECONDS
                if boundary > now:  # the next event lies in a chunk not yet reached
                    self._due = boundary
                    return applied
                self._chunk, self._pos = following, 0
                self._offsets, self._products, self._seeds = self.chunk(following)
                continue
            at = start + self._offsets[self._pos]
            if at > now:
                self._due = at
                return applied
            position = self._pos
            self._pos += 1  # first: an event that raised must not fail every later request
            try:
                self._apply(at, self._products[position], self._seeds[position])
            except Exception:
                # This runs before EVERY request: one event's bug must neither fail the
                # request that carried it nor hold back the events after it. It is logged
                # and counted (``failed`` in GET /_sim/market), not hidden.
                self.failed += 1
                log.exception(
                    "market event at %s (product %d) raised: skipped",
                    at,
                    self._products[position],
                )
                continue
            applied += 1

    # --- one event --------------------------------------------------------------------

    def _apply(self, at: float, index: int, seed: int) -> None:
        market = self.market
        product = market.products[index]
        before = market.offers(product)
        cost_before = source_cost(before)
        winner = buy_box_index(before)
        box_before = before[winner].landed if winner >= 0 else None
        rng = random.Random(seed)
        kind, packed, after = self._outcome(rng, product, before, cost_before, winner)
        market.put_offers(product, packed, at)
        if after is None:
            after = market.offers(product)
        cost_after = source_cost(after)
        winner = buy_box_index(after)
        box_after = after[winner].landed if winner >= 0 else None
        self._log(at, index, kind, cost_before, cost_after, box_before, box_after)

    def _outcome(
        self,
        rng: random.Random,
        product: Product,
        offers: list[Offer],
        cost: int | None,
        winner: int,
    ) -> tuple[int, list[bytes], list[Offer] | None]:
        """The event's kind, the product's new packed offers and, when they are already at
        hand in Amazon's order, the new offers unpacked (see the module doc)."""
        market = self.market
        if cost is None:
            while True:
                packed = market.fresh_offers(rng, product.base_price)
                fresh = market.unpack(packed)  # sorted already
                if source_cost(fresh) is not None:
                    return RESTOCKED, market.split(packed), fresh
        rows = market.split(product.offers)
        roll = rng.random()
        kind = next(k for bound, k in _DRAW if roll < bound)
        if kind in (PRICE_UP, PRICE_DOWN):
            return kind, self._price_move(rng, kind, rows), None
        eligible = [i for i, offer in enumerate(offers) if _eligible(offer)]
        removable = [i for i in eligible if i != winner]
        can_add = len(rows) < MAX_OFFERS
        if kind == OFFER_ADDED and not can_add:
            kind = OFFER_REMOVED
        if kind == OFFER_REMOVED and not removable:
            if not can_add:  # neither an offer to remove nor room for one more
                kind = PRICE_UP if rng.random() < 0.5 else PRICE_DOWN
                return kind, self._price_move(rng, kind, rows), None
            kind = OFFER_ADDED
        if kind == SOLD_OUT:
            if rng.random() < 0.25:  # only the eligible offers leave (if others exist)
                leaving = set(eligible)
                kept = [i for i in range(len(rows)) if i not in leaving]
            else:
                kept = []
            return kind, [rows[i] for i in kept], [offers[i] for i in kept]
        if kind == OFFER_REMOVED:
            gone = removable[rng.randrange(len(removable))]
            return kind, rows[:gone] + rows[gone + 1 :], offers[:gone] + offers[gone + 1 :]
        if winner >= 0:  # above the buy box: it keeps its holder and price
            box = offers[winner].landed
            landed = box + max(1, round(box * rng.uniform(0.01, 0.25)))
            featured = rng.random() < 0.75
        else:  # no buy box: a featured offer would create one
            landed = max(1, round(cost * rng.uniform(0.95, 1.25)))
            featured = False
        return kind, [*rows, market.eligible_offer(rng, landed, featured)], None

    def _price_move(self, rng: random.Random, kind: int, rows: list[bytes]) -> list[bytes]:
        change = rng.uniform(0.05, 0.30)
        factor = 1 + change if kind == PRICE_UP else 1 - change
        return [self.market.scaled(row, factor) for row in rows]

    def _log(
        self,
        at: float,
        index: int,
        kind: int,
        cost_before: int | None,
        cost_after: int | None,
        box_before: int | None,
        box_after: int | None,
    ) -> None:
        self._t.append(at)
        self._asin.append(index)
        self._kind.append(kind)
        self._cost_before.append(_NONE if cost_before is None else cost_before)
        self._cost_after.append(_NONE if cost_after is None else cost_after)
        self._box_before.append(_NONE if box_before is None else box_before)
        self._box_after.append(_NONE if box_after is None else box_after)
        self.applied += 1
        self.applied_by_kind[kind] += 1
        if len(self._t) > self.keep + max(1, self.keep // 8):  # trim now and then, not always
            drop = len(self._t) - self.keep
            self._dropped_until = self._t[drop - 1]
            for column in self._columns():
                del column[:drop]

    def _columns(self) -> tuple[array[Any], ...]:
        return (
            self._t,
            self._asin,
            self._kind,
            self._cost_before,
            self._cost_after,
            self._box_before,
            self._box_after,
        )

    # --- reading ----------------------------------------------------------------------

    def top_share(self) -> float:
        """The share of the total rate held by the 10 % fastest-moving products."""
        if self._top_share is None:
            ranked = sorted(self.rates, reverse=True)
            top = math.fsum(ranked[: max(1, len(ranked) // 10)]) if ranked else 0.0
            self._top_share = top / self._total if self._total > 0 else 0.0
        return self._top_share

    def _record(self, i: int) -> dict[str, Any]:
        return {
            "t": self._t[i],
            "asin": self.market.products[self._asin[i]].asin,
            "kind": KINDS[self._kind[i]],
            "cost_before": _or_none(self._cost_before[i]),
            "cost_after": _or_none(self._cost_after[i]),
            "buy_box_before": _or_none(self._box_before[i]),
            "buy_box_after": _or_none(self._box_after[i]),
        }

    def since(self, t: float, limit: int | None = None) -> list[dict[str, Any]]:
        """The applied events with time >= ``t``, oldest first (at most ``limit``)."""
        lo = bisect.bisect_left(self._t, t)
        hi = len(self._t) if limit is None else min(len(self._t), lo + limit)
        return [self._record(i) for i in range(lo, hi)]

    def report(self, now: float, since: float, limit: int | None) -> dict[str, Any]:
        """The ``GET /_sim/market/events`` answer (``limit`` None: without ``events``).

        ``count`` and ``by_kind`` cover every kept event at or after ``since``; ``events``
        lists the first ``limit`` of them, and ``more`` says whether the rest was cut."""
        lo = bisect.bisect_left(self._t, since)
        kinds = self._kind[lo:]
        answer: dict[str, Any] = {
            "now": now,
            "since": since,
            "start": self.start,
            "rate": self.rate,
            "volatility": self.volatility,
            "held": self.held,
            "count": len(kinds),
            "truncated": since <= self._dropped_until,
            "by_kind": {name: kinds.count(code) for code, name in enumerate(KINDS)},
        }
        if limit is not None:
            answer["events"] = self.since(since, limit)
            answer["more"] = len(kinds) > limit
        return answer

    def summary(self, now: float) -> dict[str, Any]:
        """``GET /_sim/market``: the schedule's settings and what it applied so far."""
        answer = self.report(now, self.start, None)
        answer |= {
            "products": len(self.rates),
            "events_per_day": self._total,
            "top10_rate_share": self.top_share(),
            "applied": self.applied,
            "applied_by_kind": dict(zip(KINDS, self.applied_by_kind, strict=True)),
            "failed": self.failed,
            "kept": len(self._t),
        }
        return answer
