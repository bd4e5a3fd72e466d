"""The exposure meter: how long channel listings stayed wrong, by the simulator's own truth.

The meter listens to two kinds of change, each stamped with the simulated time it happened:
the market moved an ASIN's offers (:meth:`ExposureMeter.asin_changed`, wired as
``Market.listener``), and a channel item changed (:meth:`ExposureMeter.base_item_changed`,
:meth:`ExposureMeter.ebay_offer_changed`, which the meter registers as the accounts'
``listener``: ``BaseAccount.add/touch/delete`` and ``EbayAccount.add/touch/remove`` are the
choke points every API route and control hand edit goes through). Between changes nothing
moves, so the integrals are exact at any ``--speed``.

The rules (written here, not borrowed from the client):

- A *listing* is a BASE item or an eBay offer whose product code is an ASIN of the market.
  BASE: the item's ``identifier``, else the first ``variation_identifier`` that is one.
  eBay: the SKU (the seeding lists each ASIN under its own SKU). An item whose code is not
  (yet) in the market waits, and becomes a listing when that ASIN joins the catalog.
- *Buyable*: BASE ``visible == 1`` and stock > 0, where the stock is the item's own when it
  has no variations, else the stock of the variation whose ``variation_identifier`` is the
  ASIN, else of its first variation (``base_seeding`` puts the ASIN's stock in the first
  variation of an item without a coded one, and an item of shape ``only`` has just one).
  eBay: ``status == "PUBLISHED"`` and ``availableQuantity`` > 0. A hidden, withdrawn or
  deleted listing never counts.
- The true cost of an ASIN is ``synced.source_cost`` of its offers: the cheapest landed
  (price + shipping) new offer available NOW that ships within 72 h; None when there is none.
- *Oversell*: listing-seconds a listing was buyable while its ASIN had no eligible offer.
- *Under cost*: listing-seconds a buyable listing was priced below its ASIN's cost, and the
  yen-seconds (cost - price) x seconds. eBay prices are converted at 150 yen per dollar
  (``synced.USD_JPY``): a cent is 1.5 yen.
- *Sell-out*, per scope (one account, or all accounts together): an ASIN with at least one
  listing in the scope goes from "has an eligible offer" to "none" at t. It is *exposed*
  when a listing of the scope was buyable at t; an exposed sell-out ends when no listing of
  the scope is buyable any more, or when the ASIN gets an eligible offer again (it then also
  counts in ``ended_by_restock``); its latency is from t to its end. One still open counts
  with its age so far (conservative) and in ``still_exposed``. Percentiles are nearest-rank.
  A listing that was already buyable without a source when the meter started (the seeding's
  drift) is oversell from the start, but not a sell-out: no transition was seen.

How it stays cheap at 100,000 listings: each listing keeps the time its current bad state
(oversold, or under cost with its gap) began. Any change at t closes that interval (adds
t - since to its account's running totals), recomputes, and reopens at t: O(1) a change.
Each account also keeps aggregates of its open intervals (how many, the sum of their
starts, and for yen the sum of gaps and of gap x start), so a snapshot at ``now`` is
closed + count x now - sum(start): O(accounts), never a scan of the listings. Times are
kept as integer microseconds and prices as integer half-yen, so the sums are exact.

:meth:`ExposureMeter.reset` zeroes the totals; the open intervals restart at the reset
(an interval begun earlier counts from the reset time, without touching every listing).
Open sell-outs carry over with their original start: their latency is a property of the
sell-out, not of the counting window; after a reset ``count`` and ``exposed`` start at the
number of open ones so ``still_exposed`` never exceeds ``exposed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ecsync.sim import synced
from ecsync.sim.channels import BaseAccount, BaseItem, EbayAccount
from ecsync.sim.market import Market, Product

__all__ = ["USD_JPY", "ExposureMeter"]

USD_JPY = int(synced.USD_JPY)
_US = 1_000_000  # microseconds a second: times are integers, so the running sums are exact


def _micros(t: float) -> int:
    return round(t * _US)


class _Sellouts:
    """The sell-outs of one scope: counters, closed latencies, and the open ones by ASIN."""

    __slots__ = ("count", "ended_by_restock", "exposed", "latencies", "open")

    def __init__(self) -> None:
        self.count = 0
        self.exposed = 0
        self.ended_by_restock = 0
        self.latencies: list[float] = []
        self.open: dict[str, int] = {}  # ASIN -> start (µs)

    def start(self, asin: str, at: int, exposed: bool) -> None:
        self.count += 1
        if exposed:
            self.exposed += 1
            self.open[asin] = at

    def end(self, asin: str, at: int, *, restock: bool) -> None:
        started = self.open.pop(asin, None)
        if started is None:
            return
        self.latencies.append((at - started) / _US)
        if restock:
            self.ended_by_restock += 1

    def reset(self) -> None:
        self.count = self.exposed = len(self.open)
        self.ended_by_restock = 0
        self.latencies = []

    def figures(self, now: int) -> dict[str, Any]:
        values = sorted(self.latencies + [(now - t) / _US for t in self.open.values()])
        return {
            "count": self.count,
            "exposed": self.exposed,
            "still_exposed": len(self.open),
            "ended_by_restock": self.ended_by_restock,
            "latency_s": {
                "p50": _rank(values, 0.50),
                "p95": _rank(values, 0.95),
                "max": values[-1] if values else None,
            },
        }


def _rank(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted ``values`` (None when empty)."""
    if not values:
        return None
    return values[max(0, math.ceil(p * len(values)) - 1)]


class _Scope:
    """One account: its listings, and running totals of closed and open bad intervals.

    ``over_*``: oversold intervals; ``under_*``: under-cost intervals, with ``gap_sum``
    (half-yen) and ``gap_at_sum`` (half-yen x µs) of the open ones for the yen-seconds.
    """

    __slots__ = (
        "buyable",
        "gap_at_sum",
        "gap_sum",
        "items",
        "listings",
        "name",
        "over_closed",
        "over_n",
        "over_sum",
        "sellouts",
        "under_closed",
        "under_n",
        "under_sum",
        "yen_closed",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: dict[int | str, _Listing] = {}  # item id (BASE) or SKU (eBay)
        self.sellouts = _Sellouts()
        self.listings = 0
        self.buyable = 0
        self.over_n = self.over_sum = self.over_closed = 0
        self.under_n = self.under_sum = self.under_closed = 0
        self.gap_sum = self.gap_at_sum = self.yen_closed = 0

    def reset(self, at: int) -> None:
        self.over_closed = self.under_closed = self.yen_closed = 0
        self.over_sum = self.over_n * at
        self.under_sum = self.under_n * at
        self.gap_at_sum = self.gap_sum * at
        self.sellouts.reset()

    def figures(self, now: int) -> dict[str, Any]:
        return {
            "listings": self.listings,
            "buyable": self.buyable,
            "oversell_s": (self.over_closed + self.over_n * now - self.over_sum) / _US,
            "oversold_now": self.over_n,
            "under_cost_s": (self.under_closed + self.under_n * now - self.under_sum) / _US,
            "under_cost_yen_s": (self.yen_closed + self.gap_sum * now - self.gap_at_sum)
            / (2 * _US),
            "under_cost_now": self.under_n,
            "sellouts": self.sellouts.figures(now),
        }


class _Asin:
    """One ASIN with listings: its cached true cost and its listings (a short list: one
    per account at most in a seeded shop, so scanning it is cheaper than keeping counts)."""

    __slots__ = ("asin", "cost", "listings")

    def __init__(self, asin: str, cost: int | None) -> None:
        self.asin = asin
        self.cost = cost
        self.listings: list[_Listing] = []


class _Listing:
    """One tracked item or offer: its state as last seen and its open bad interval."""

    __slots__ = ("buyable", "gap2", "over_since", "price2", "record", "scope", "under_since")

    def __init__(self, scope: _Scope, record: _Asin) -> None:
        self.scope = scope
        self.record = record
        self.buyable = False
        self.price2 = 0  # price in half-yen (a cent is 1.5 yen)
        self.over_since: int | None = None
        self.under_since: int | None = None
        self.gap2 = 0  # cost - price, half-yen, while under cost


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
        self.since = start  # the last reset (or the start)
        self._since = _micros(start)
        self._latest = self._since  # the latest time seen: changes never go back before it
        self._scopes = {name: _Scope(name) for name in [*base, *ebay]}
        self._total = _Sellouts()
        self._asins: dict[str, _Asin] = {}
        # Product codes not in the market -> the (account, key) listing them.
        self._waiting: dict[str, set[tuple[str, int | str]]] = {}
        # Applies the market events due by a time (``MarketEvents.advance``; None: a still
        # market). The middleware applies them when a request ARRIVES, but its route edits a
        # little later (after awaiting its body and other requests): an event due in between
        # happened before the edit, so it must be heard first, not clamped after it.
        self.catch_up: Callable[[float], object] | None = None
        for name, base_account in base.items():
            for item_id in list(base_account.items):
                self._base(name, item_id, self._since)
            base_account.listener = self.base_item_changed
        for name, ebay_account in ebay.items():
            for sku in list(ebay_account.by_sku):
                self._ebay(name, sku, self._since)
            ebay_account.listener = self.ebay_offer_changed

    # --- the hooks --------------------------------------------------------------------

    def asin_changed(self, product: Product, at: float) -> None:
        """The market changed ``product``'s offers at simulated time ``at``."""
        now = self._tick(at)
        record = self._asins.get(product.asin)
        if record is None:  # nobody lists it yet; perhaps someone waited for it to exist
            for name, key in self._waiting.pop(product.asin, ()):
                self._recheck(name, key, now)
            return
        cost = synced.source_cost(self.market.offers(product))
        before = record.cost
        if cost == before:
            return
        record.cost = cost
        for listing in record.listings:
            self._close(listing, now)
            self._open(listing, now)
        if before is not None and cost is None:
            exposed: dict[_Scope, bool] = {}
            for listing in record.listings:
                exposed[listing.scope] = exposed.get(listing.scope, False) or listing.buyable
            for scope, buyable in exposed.items():
                scope.sellouts.start(record.asin, now, buyable)
            if record.listings:
                self._total.start(record.asin, now, any(exposed.values()))
        elif before is None:
            for scope in self._scopes.values():
                scope.sellouts.end(record.asin, now, restock=True)
            self._total.end(record.asin, now, restock=True)

    def base_item_changed(self, account: str, item_id: int, at: float) -> None:
        """A BASE item was edited, created or deleted at ``at`` (deleted: not buyable)."""
        if account in self.base:
            self._catch_up(at)
            self._base(account, item_id, self._tick(at))

    def ebay_offer_changed(self, account: str, sku: str, at: float) -> None:
        """An eBay offer was revised, published, withdrawn or removed at ``at``."""
        if account in self.ebay:
            self._catch_up(at)
            self._ebay(account, sku, self._tick(at))

    # --- the figures ------------------------------------------------------------------

    def reset(self, now: float) -> None:
        """Start counting again from ``now`` (open exposures restart at ``now``; open
        sell-outs carry over, see the module docstring)."""
        self._catch_up(now)
        at = self._tick(now)
        self.since = now
        self._since = at
        for scope in self._scopes.values():
            scope.reset(at)
        self._total.reset()

    def snapshot(self, now: float) -> dict[str, Any]:
        """The figures up to ``now`` (shape: see the issue 10 brief)."""
        self._catch_up(now)
        at = self._tick(now)
        accounts = {name: scope.figures(at) for name, scope in self._scopes.items()}
        total: dict[str, Any] = {}
        for key in ("listings", "buyable", "oversold_now", "under_cost_now"):
            total[key] = sum(figures[key] for figures in accounts.values())
        for key in ("oversell_s", "under_cost_s", "under_cost_yen_s"):
            total[key] = sum(figures[key] for figures in accounts.values())
        total["sellouts"] = self._total.figures(at)
        return {
            "now": now,
            "since": self.since,
            "elapsed_s": now - self.since,
            "usd_jpy": USD_JPY,
            "total": total,
            "accounts": accounts,
        }

    # --- inside -----------------------------------------------------------------------

    def _catch_up(self, at: float) -> None:
        """Apply the market events due by ``at`` before hearing of anything at ``at`` (never
        from :meth:`asin_changed`: that is the events being applied)."""
        if self.catch_up is not None:
            self.catch_up(at)

    def _tick(self, at: float) -> int:
        """``at`` in µs, never before a change already counted (events are applied in time
        order, and before any channel change or reading at a later time: see
        :attr:`catch_up`; so this only guards rounding)."""
        micros = _micros(at)
        if micros < self._latest:
            return self._latest
        self._latest = micros
        return micros

    def _recheck(self, name: str, key: int | str, at: int) -> None:
        if isinstance(key, int):
            self._base(name, key, at)
        else:
            self._ebay(name, key, at)

    def _base(self, name: str, item_id: int, at: int) -> None:
        item = self.base[name].items.get(item_id)
        if item is None:
            self._update(self._scopes[name], item_id, None, False, 0, at)
            return
        asin = self._base_asin(item)
        if asin is None:
            for code in (item.identifier, *(v.identifier for v in item.variations)):
                if code:
                    self._waiting.setdefault(code, set()).add((name, item_id))
            self._update(self._scopes[name], item_id, None, False, 0, at)
            return
        buyable = item.visible == 1 and _base_stock(item, asin) > 0
        self._update(self._scopes[name], item_id, asin, buyable, 2 * item.price, at)

    def _base_asin(self, item: BaseItem) -> str | None:
        known = self.market.by_asin
        if item.identifier in known:
            return item.identifier
        for variation in item.variations:
            if variation.identifier and variation.identifier in known:
                return variation.identifier
        return None

    def _ebay(self, name: str, sku: str, at: int) -> None:
        offer = self.ebay[name].by_sku.get(sku)
        scope = self._scopes[name]
        if offer is None:
            self._update(scope, sku, None, False, 0, at)
        elif sku not in self.market.by_asin:
            self._waiting.setdefault(sku, set()).add((name, sku))
            self._update(scope, sku, None, False, 0, at)
        else:
            buyable = offer.status == "PUBLISHED" and offer.quantity > 0
            self._update(scope, sku, sku, buyable, 3 * offer.price_cents, at)

    def _update(
        self, scope: _Scope, key: int | str, asin: str | None, buyable: bool, price2: int, at: int
    ) -> None:
        """Bring one listing to what its item now is (``asin`` None: not a listing)."""
        listing = scope.items.get(key)
        if listing is not None and listing.record.asin != asin:
            self._set(listing, False, listing.price2, at)
            listing.record.listings.remove(listing)
            scope.listings -= 1
            del scope.items[key]
            listing = None
        if asin is None:
            return
        if listing is None:
            record = self._record(asin)
            listing = scope.items[key] = _Listing(scope, record)
            record.listings.append(listing)
            scope.listings += 1
        self._set(listing, buyable, price2, at)

    def _record(self, asin: str) -> _Asin:
        record = self._asins.get(asin)
        if record is None:
            cost = synced.source_cost(self.market.offers(self.market.by_asin[asin]))
            record = self._asins[asin] = _Asin(asin, cost)
        return record

    def _set(self, listing: _Listing, buyable: bool, price2: int, at: int) -> None:
        self._close(listing, at)
        if buyable != listing.buyable:
            listing.buyable = buyable
            scope, record = listing.scope, listing.record
            scope.buyable += 1 if buyable else -1
            if not buyable:  # the last buyable listing of a scope ends its open sell-out
                others = [other for other in record.listings if other.buyable]
                if not any(other.scope is scope for other in others):
                    scope.sellouts.end(record.asin, at, restock=False)
                if not others:
                    self._total.end(record.asin, at, restock=False)
        listing.price2 = price2
        self._open(listing, at)

    def _close(self, listing: _Listing, at: int) -> None:
        scope = listing.scope
        if listing.over_since is not None:
            since = max(listing.over_since, self._since)  # begun before a reset: counts from it
            scope.over_closed += at - since
            scope.over_n -= 1
            scope.over_sum -= since
            listing.over_since = None
        if listing.under_since is not None:
            since = max(listing.under_since, self._since)
            gap = listing.gap2
            scope.under_closed += at - since
            scope.under_n -= 1
            scope.under_sum -= since
            scope.yen_closed += gap * (at - since)
            scope.gap_sum -= gap
            scope.gap_at_sum -= gap * since
            listing.under_since = None
            listing.gap2 = 0

    def _open(self, listing: _Listing, at: int) -> None:
        if not listing.buyable:
            return
        scope = listing.scope
        cost = listing.record.cost
        if cost is None:
            listing.over_since = at
            scope.over_n += 1
            scope.over_sum += at
            return
        gap = 2 * cost - listing.price2
        if gap > 0:
            listing.under_since = at
            listing.gap2 = gap
            scope.under_n += 1
            scope.under_sum += at
            scope.gap_sum += gap
            scope.gap_at_sum += gap * at


def _base_stock(item: BaseItem, asin: str) -> int:
    """The stock a buyer of ``asin`` can buy from ``item`` (see the module docstring)."""
    if not item.variations:
        return item.stock
    for variation in item.variations:
        if variation.identifier == asin:
            return variation.stock
    return item.variations[0].stock
