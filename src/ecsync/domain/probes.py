"""Probes: a cheap look at an item's Buy Box and offer count, and when it calls for a quote.

getCompetitivePricing reads 20 ASINs a request on a bucket of its own (10 ASIN/s at the
default plan, five times getItemOffersBatch), but it tells only the New Buy Box price and the
number of offer listings per condition: no handling time, no Prime, no seller. It cannot
price anything (the Buy Box may be held by an offer the reseller would never buy from, and
the reseller's source may be an offer that is not the Buy Box), so it is a *change detector*:
when it contradicts what the last full quote implied, the ASIN deserves a full quote soon.

Three values live here:

- :class:`Probe` (what one probe saw) or :class:`ProbeError` (why it saw nothing). An error
  is never evidence: it is a value of its own so no caller can read it as "no Buy Box".
- :class:`QuoteView`: what the last full quote implied about the same fields, read from the
  full answer's ``Summary`` (:func:`quote_view_from_payload`) or, for a quote stored before
  those fields were kept, the little its status and eligible offer count imply
  (:func:`quote_view_from_stored`).
- :func:`probe_differs`: the most urgent contradiction between the two, or None.

Amounts are compared as Amazon reports them, ``LandedPrice`` (listing + shipping - points)
on both sides, so the two operations' prices are the same quantity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Any, Final

from ecsync.domain.model import QuoteStatus

__all__ = [
    "Contradiction",
    "Difference",
    "Probe",
    "ProbeError",
    "ProbeResult",
    "QuoteView",
    "Tolerance",
    "probe_differs",
    "probe_from_entry",
    "quote_view_from_payload",
    "quote_view_from_stored",
]

NEW_BUY_BOX_ID: Final = "1"  # CompetitivePriceId "1": the New Buy Box price ("2": used)
CURRENCY: Final = "JPY"


@dataclass(frozen=True, slots=True)
class Probe:
    """What getCompetitivePricing said of one ASIN.

    ``buy_box_landed`` is None when there is no New Buy Box, or when Amazon gave the Buy Box
    without a ``LandedPrice`` (then ``buy_box_present`` is still True and no price is
    compared). ``new_offer_count`` counts the listings in condition New, any seller.
    """

    asin: str
    buy_box_present: bool
    buy_box_landed: Decimal | None
    new_offer_count: int


@dataclass(frozen=True, slots=True)
class ProbeError:
    """A probe that saw nothing: the entry failed, was malformed or missing. Not evidence."""

    asin: str
    reason: str


ProbeResult = Probe | ProbeError


class _Malformed(Exception):
    """Internal: the entry is not what the schema promises (caught, never escapes)."""


def probe_from_entry(asin: str, entry: Any) -> ProbeResult:
    """One ``Price`` entry of a getCompetitivePricing answer as a probe; never raises.

    Anything that is not a clean ``Success`` entry (another status, an ``error``, a missing
    or mistyped field, an amount in another currency, a Buy Box with no New listing) is a
    :class:`ProbeError` that says what and where.
    """
    try:
        return _probe(asin, entry)
    except _Malformed as exc:
        return ProbeError(asin, f"malformed competitive pricing entry: {exc}")


def _probe(asin: str, entry: Any) -> ProbeResult:
    if not isinstance(entry, Mapping):
        raise _Malformed(f"expected an object, got {type(entry).__name__}")
    status = entry.get("status")
    if status != "Success":
        return ProbeError(asin, f"status {status!r}{_describe_error(entry.get('error'))}")
    product = _mapping(entry, "Product", "entry")
    pricing = _mapping(product, "CompetitivePricing", "Product")
    prices = _list(pricing, "CompetitivePrices", "CompetitivePricing")
    listings = _list(pricing, "NumberOfOfferListings", "CompetitivePricing")

    buy_boxes = []
    for index, raw in enumerate(prices):
        where = f"CompetitivePrices[{index}]"
        if not isinstance(raw, Mapping):
            raise _Malformed(f"{where}: expected an object")
        if raw.get("CompetitivePriceId") == NEW_BUY_BOX_ID:
            buy_boxes.append((raw, where))
    if len(buy_boxes) > 1:
        raise _Malformed(f"{len(buy_boxes)} New Buy Box prices (CompetitivePriceId 1)")
    landed: Decimal | None = None
    if buy_boxes:
        raw, where = buy_boxes[0]
        price = _mapping(raw, "Price", where)
        _yen(price, "ListingPrice", f"{where}.Price")  # required by the schema
        if price.get("LandedPrice") is not None:
            landed = _yen(price, "LandedPrice", f"{where}.Price")

    new_counts = []
    for index, raw in enumerate(listings):
        where = f"NumberOfOfferListings[{index}]"
        if not isinstance(raw, Mapping):
            raise _Malformed(f"{where}: expected an object")
        condition = raw.get("condition")
        if not isinstance(condition, str):
            raise _Malformed(f"{where}.condition: expected a string, got {condition!r}")
        count = raw.get("Count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _Malformed(f"{where}.Count: expected a count, got {count!r}")
        if condition.casefold() == "new":
            new_counts.append(count)
    if len(new_counts) > 1:
        raise _Malformed(f"{len(new_counts)} counts for condition New")
    new_offers = new_counts[0] if new_counts else 0
    if buy_boxes and new_offers == 0:  # a contradiction is not evidence of a sell-out
        raise _Malformed("a New Buy Box price while no New offer listing is counted")
    return Probe(
        asin=asin,
        buy_box_present=bool(buy_boxes),
        buy_box_landed=landed,
        new_offer_count=new_offers,
    )


@dataclass(frozen=True, slots=True)
class QuoteView:
    """What a full quote implied about the fields a probe sees; None where it did not say.

    ``min_new_offers`` is a lower bound for when the exact count is unknown: an ``ok`` quote
    stored without its counts still proves at least that many new offers (its eligible
    offers are all new).
    """

    buy_box_present: bool | None
    buy_box_landed: Decimal | None
    new_offer_count: int | None
    min_new_offers: int = 0


_NOTHING_LEFT: Final = QuoteView(buy_box_present=False, buy_box_landed=None, new_offer_count=0)


def quote_view_from_payload(payload: Any) -> QuoteView | None:
    """The view of a full answer (``GetOffersResult``, or a body ``{"payload": ...}``).

    The New Buy Box is ``Summary.BuyBoxPrices`` in condition new and the new offer count the
    sum of ``Summary.NumberOfOffers`` in condition new (over every fulfilment channel): the
    same quantities getCompetitivePricing reports. None when the payload does not say
    (malformed, or a status other than Success / NoBuyableOffers): no view, no contradiction.
    """
    try:
        return _view(payload)
    except _Malformed:
        return None


def _view(payload: Any) -> QuoteView | None:
    if not isinstance(payload, Mapping):
        raise _Malformed("payload: expected an object")
    if "payload" in payload and "Summary" not in payload:
        return _view(payload["payload"])
    status = payload.get("status")
    if not isinstance(status, str):
        raise _Malformed("payload.status: missing")
    if status.casefold() == "nobuyableoffers":
        return _NOTHING_LEFT
    if status.casefold() != "success":
        return None
    summary = _mapping(payload, "Summary", "payload")
    counts = summary.get("NumberOfOffers")
    if counts is None:
        raise _Malformed("Summary.NumberOfOffers: missing")
    if not isinstance(counts, Sequence) or isinstance(counts, str | bytes):
        raise _Malformed("Summary.NumberOfOffers: expected a list")
    new_offers = 0
    for index, raw in enumerate(counts):
        where = f"Summary.NumberOfOffers[{index}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("condition"), str):
            raise _Malformed(f"{where}: expected an object with a condition")
        count = raw.get("OfferCount")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _Malformed(f"{where}.OfferCount: expected a count")
        if raw["condition"].casefold() == "new":
            new_offers += count
    boxes = summary.get("BuyBoxPrices") or []
    if not isinstance(boxes, Sequence) or isinstance(boxes, str | bytes):
        raise _Malformed("Summary.BuyBoxPrices: expected a list")
    new_boxes = [
        box
        for box in boxes
        if isinstance(box, Mapping) and str(box.get("condition", "")).casefold() == "new"
    ]
    if len(new_boxes) > 1:
        raise _Malformed("Summary.BuyBoxPrices: more than one New Buy Box")
    landed = None
    if new_boxes and new_boxes[0].get("LandedPrice") is not None:
        landed = _yen(new_boxes[0], "LandedPrice", "Summary.BuyBoxPrices[new]")
    if new_boxes and new_offers == 0:
        raise _Malformed("a New Buy Box while no new offer is counted")
    return QuoteView(
        buy_box_present=bool(new_boxes), buy_box_landed=landed, new_offer_count=new_offers
    )


def quote_view_from_stored(
    status: QuoteStatus | str | None, offer_count: int | None
) -> QuoteView | None:
    """What a quote stored without its Buy Box and count (today's ``products`` row) implies.

    ``out_of_stock``: no offer at all, so no Buy Box and no new offer. ``ok``: at least
    ``offer_count`` (>= 1) new offers, and nothing about the Buy Box (the source need not be
    featured). Anything else (no eligible offer: maybe used ones only; unknown; an error; no
    quote yet) implies nothing a probe could contradict.
    """
    if status is None:
        return None
    status = QuoteStatus(status)
    if status is QuoteStatus.OUT_OF_STOCK:
        return _NOTHING_LEFT
    if status is QuoteStatus.OK:
        return QuoteView(
            buy_box_present=None,
            buy_box_landed=None,
            new_offer_count=None,
            min_new_offers=max(1, offer_count or 0),
        )
    return None


class Contradiction(IntEnum):
    """Why a probe calls for a full quote, most urgent first (the value is the rank).

    The first three can mean money at risk now: a listing on sale with nothing to buy, or
    priced under a cost that rose. Fewer offers may be the reseller's own source gone while
    the Buy Box (held by an offer the reseller would not buy from) stays. The rest are sales
    or margin missed, not money at risk.
    """

    NO_NEW_OFFERS = 0  # the quote implied new offers; the probe counts none
    BUY_BOX_GONE = 1
    BUY_BOX_PRICE_UP = 2
    FEWER_NEW_OFFERS = 3
    BUY_BOX_APPEARED = 4
    BUY_BOX_PRICE_DOWN = 5
    MORE_NEW_OFFERS = 6


@dataclass(frozen=True, slots=True)
class Difference:
    """The most urgent contradiction found, with a line for the log saying what moved."""

    reason: Contradiction
    detail: str


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far the Buy Box price may move before it counts: more than ``yen`` and more than
    ``share`` of the last price. The default counts any move of a yen or more."""

    yen: Decimal = Decimal(0)
    share: Decimal = Decimal(0)

    def exceeded(self, before: Decimal, after: Decimal) -> bool:
        return abs(after - before) > max(self.yen, self.share * before)


def probe_differs(
    probe: ProbeResult, view: QuoteView | None, tolerance: Tolerance | None = None
) -> Difference | None:
    """The most urgent way ``probe`` contradicts what the last full quote implied, or None.

    A :class:`ProbeError` never differs (an error is not evidence), nor does anything when
    there is no view (no full quote yet, or one that said nothing): the scheduler's own
    priorities (new listings first, ``max_quote_age``) cover those ASINs.
    """
    if isinstance(probe, ProbeError) or view is None:
        return None
    tolerance = tolerance or Tolerance()
    found: list[Difference] = []
    seen = probe.new_offer_count
    known = view.new_offer_count
    implied = known if known is not None else view.min_new_offers
    if seen == 0 and implied > 0:
        found.append(Difference(Contradiction.NO_NEW_OFFERS, f"new offers {implied} -> 0"))
    elif seen < implied:
        bound = "" if known is not None else "at least "
        found.append(
            Difference(Contradiction.FEWER_NEW_OFFERS, f"new offers {bound}{implied} -> {seen}")
        )
    elif known is not None and seen > known:
        found.append(Difference(Contradiction.MORE_NEW_OFFERS, f"new offers {known} -> {seen}"))
    if view.buy_box_present is True and not probe.buy_box_present:
        found.append(Difference(Contradiction.BUY_BOX_GONE, _box_text(view.buy_box_landed)))
    elif view.buy_box_present is False and probe.buy_box_present:
        found.append(
            Difference(Contradiction.BUY_BOX_APPEARED, f"Buy Box appeared at {_yen_text(probe)}")
        )
    elif (
        view.buy_box_present
        and view.buy_box_landed is not None
        and probe.buy_box_landed is not None
        and tolerance.exceeded(view.buy_box_landed, probe.buy_box_landed)
    ):
        up = probe.buy_box_landed > view.buy_box_landed
        found.append(
            Difference(
                Contradiction.BUY_BOX_PRICE_UP if up else Contradiction.BUY_BOX_PRICE_DOWN,
                f"Buy Box {view.buy_box_landed} -> {probe.buy_box_landed} JPY",
            )
        )
    return min(found, key=lambda difference: difference.reason, default=None)


def _box_text(landed: Decimal | None) -> str:
    return f"Buy Box at {landed} JPY gone" if landed is not None else "Buy Box gone"


def _yen_text(probe: Probe) -> str:
    return f"{probe.buy_box_landed} JPY" if probe.buy_box_landed is not None else "no price"


def _describe_error(error: Any) -> str:
    if isinstance(error, Mapping):
        return f": {error.get('code', '?')}: {error.get('message', '')}".rstrip(": ")
    return ""


def _mapping(container: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = container.get(key)
    if not isinstance(value, Mapping):
        raise _Malformed(f"{where}.{key}: expected an object, got {type(value).__name__}")
    return value


def _list(container: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
    value = container.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise _Malformed(f"{where}.{key}: expected a list, got {type(value).__name__}")
    return value


def _yen(container: Mapping[str, Any], key: str, where: str) -> Decimal:
    """A ``MoneyType`` in yen: a finite, non-negative number (another currency is refused)."""
    money = _mapping(container, key, where)
    path = f"{where}.{key}"
    currency = money.get("CurrencyCode")
    if currency != CURRENCY:
        raise _Malformed(f"{path}.CurrencyCode: expected {CURRENCY}, got {currency!r}")
    amount = money.get("Amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise _Malformed(f"{path}.Amount: expected a number, got {amount!r}")
    if isinstance(amount, float) and not math.isfinite(amount):
        raise _Malformed(f"{path}.Amount: not a finite number")
    if amount < 0:
        raise _Malformed(f"{path}.Amount: negative ({amount})")
    # str() of a float is its shortest repr: 1980.0 stays 1980.0, never 1979.99999...
    return Decimal(str(amount))
