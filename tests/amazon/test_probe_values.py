"""The pure probe values: reading one competitive pricing entry, what a full quote implied,
and when a probe contradicts it. Every case is written by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ecsync.domain.model import QuoteStatus
from ecsync.domain.probes import (
    Contradiction,
    Probe,
    ProbeError,
    QuoteView,
    Tolerance,
    probe_differs,
    probe_from_entry,
    quote_view_from_payload,
    quote_view_from_stored,
)

ASIN = "B0TESTASIN"


def _money(amount: Any, currency: str = "JPY") -> dict[str, Any]:
    return {"CurrencyCode": currency, "Amount": amount}


def _entry(
    buy_box: float | None = 1980.0, new: int | None = 3, used: int | None = None
) -> dict[str, Any]:
    prices = []
    if buy_box is not None:
        prices.append(
            {
                "CompetitivePriceId": "1",
                "Price": {
                    "LandedPrice": _money(buy_box),
                    "ListingPrice": _money(buy_box),
                    "Shipping": _money(0.0),
                },
                "condition": "New",
                "belongsToRequester": False,
            }
        )
    prices.append({"CompetitivePriceId": "2", "Price": {"ListingPrice": _money(500.0)}})
    listings = []
    if new is not None:
        listings.append({"condition": "New", "Count": new})
    if used is not None:
        listings.append({"condition": "Used", "Count": used})
    listings.append({"condition": "Any", "Count": (new or 0) + (used or 0)})
    return {
        "status": "Success",
        "ASIN": ASIN,
        "Product": {
            "Identifiers": {"MarketplaceASIN": {"MarketplaceId": "A1VC38T7YXB528", "ASIN": ASIN}},
            "CompetitivePricing": {"CompetitivePrices": prices, "NumberOfOfferListings": listings},
        },
    }


# --- reading an entry ----------------------------------------------------------------------


def test_an_entry_with_a_buy_box() -> None:
    assert probe_from_entry(ASIN, _entry(1980.0, new=3, used=2)) == Probe(
        ASIN, True, Decimal(1980), 3
    )


def test_no_new_buy_box_and_no_new_listing_is_a_probe_of_nothing_to_buy() -> None:
    # The used Buy Box ("2") and the "Any" count are not the new ones.
    assert probe_from_entry(ASIN, _entry(None, new=None, used=4)) == Probe(ASIN, False, None, 0)


def test_a_buy_box_without_landed_price_is_present_with_no_price() -> None:
    entry = _entry(1000.0)
    del entry["Product"]["CompetitivePricing"]["CompetitivePrices"][0]["Price"]["LandedPrice"]
    assert probe_from_entry(ASIN, entry) == Probe(ASIN, True, None, 3)


def _broken(change: str) -> Any:
    entry = _entry()
    pricing = entry["Product"]["CompetitivePricing"]
    box = pricing["CompetitivePrices"][0]
    match change:
        case "not an object":
            return ["Success"]
        case "no product":
            del entry["Product"]
        case "no listings":
            del pricing["NumberOfOfferListings"]
        case "prices not a list":
            pricing["CompetitivePrices"] = {"1": box}
        case "count is a string":
            pricing["NumberOfOfferListings"][0]["Count"] = "3"
        case "count is true":
            pricing["NumberOfOfferListings"][0]["Count"] = True
        case "negative count":
            pricing["NumberOfOfferListings"][0]["Count"] = -1
        case "two new counts":
            pricing["NumberOfOfferListings"].append({"condition": "new", "Count": 1})
        case "two new buy boxes":
            pricing["CompetitivePrices"].append(box)
        case "dollars":
            box["Price"]["LandedPrice"] = _money(13.2, "USD")
        case "amount is a string":
            box["Price"]["LandedPrice"] = _money("1980")
        case "amount is nan":
            box["Price"]["LandedPrice"] = _money(float("nan"))
        case "no listing price":
            del box["Price"]["ListingPrice"]
        case "buy box with no new listing":
            pricing["NumberOfOfferListings"][0]["Count"] = 0
    return entry


@pytest.mark.parametrize(
    "change",
    [
        "not an object",
        "no product",
        "no listings",
        "prices not a list",
        "count is a string",
        "count is true",
        "negative count",
        "two new counts",
        "two new buy boxes",
        "dollars",
        "amount is a string",
        "amount is nan",
        "no listing price",
        "buy box with no new listing",
    ],
)
def test_a_malformed_entry_is_a_probe_error_never_no_buy_box(change: str) -> None:
    result = probe_from_entry(ASIN, _broken(change))
    assert isinstance(result, ProbeError), change
    assert result.asin == ASIN and result.reason.startswith("malformed")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            {
                "status": "ClientError",
                "ASIN": ASIN,
                "error": {"code": "InvalidParameterValue", "message": "not valid"},
            },
            "'ClientError': InvalidParameterValue: not valid",
        ),
        ({"status": "ServerError", "ASIN": ASIN}, "'ServerError'"),
        ({"ASIN": ASIN}, "None"),
    ],
)
def test_a_failed_entry_is_a_probe_error_that_says_why(entry: Any, says: str) -> None:
    result = probe_from_entry(ASIN, entry)
    assert isinstance(result, ProbeError)
    assert says in result.reason


# --- what a full answer implied ------------------------------------------------------------


def _payload(
    counts: list[tuple[str, str, int]], buy_box: float | None, status: str = "Success"
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "TotalOfferCount": sum(n for _, _, n in counts),
        "NumberOfOffers": [
            {"condition": c, "fulfillmentChannel": f, "OfferCount": n} for c, f, n in counts
        ],
    }
    if buy_box is not None:
        summary["BuyBoxPrices"] = [
            {"condition": "New", "LandedPrice": _money(buy_box), "ListingPrice": _money(buy_box)}
        ]
    return {"ASIN": ASIN, "status": status, "ItemCondition": "New", "Summary": summary}


def test_the_view_of_a_full_answer_sums_new_offers_over_channels() -> None:
    payload = _payload(
        [("new", "Amazon", 2), ("new", "Merchant", 3), ("used", "Merchant", 4)], 2500.0
    )
    assert quote_view_from_payload(payload) == QuoteView(True, Decimal(2500), 5)
    assert quote_view_from_payload({"payload": payload}) == QuoteView(True, Decimal(2500), 5)


def test_the_view_of_no_buyable_offers_and_of_used_only() -> None:
    assert quote_view_from_payload({"ASIN": ASIN, "status": "NoBuyableOffers"}) == QuoteView(
        False, None, 0
    )
    assert quote_view_from_payload(_payload([("used", "Merchant", 2)], None)) == QuoteView(
        False, None, 0
    )


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"errors": [{"code": "InternalFailure"}]},
        {"status": "Failure", "Summary": {}},
        {"status": "Success"},
        {
            "status": "Success",
            "Summary": {"NumberOfOffers": [{"condition": "new", "OfferCount": "2"}]},
        },
        _payload([("used", "Merchant", 2)], 900.0),  # a New Buy Box and no new offer
    ],
)
def test_a_full_answer_that_does_not_say_gives_no_view(payload: Any) -> None:
    assert quote_view_from_payload(payload) is None


def test_what_a_stored_quote_implies() -> None:
    assert quote_view_from_stored(QuoteStatus.OUT_OF_STOCK, 0) == QuoteView(False, None, 0)
    assert quote_view_from_stored("ok", 3) == QuoteView(None, None, None, min_new_offers=3)
    assert quote_view_from_stored("ok", None) == QuoteView(None, None, None, min_new_offers=1)
    for status in ("no_eligible_offer", "unknown_asin", "error", None):
        assert quote_view_from_stored(status, 2) is None


# --- contradictions ------------------------------------------------------------------------

FULL = QuoteView(buy_box_present=True, buy_box_landed=Decimal(2000), new_offer_count=3)
NONE_LEFT = QuoteView(buy_box_present=False, buy_box_landed=None, new_offer_count=0)
STORED_OK = QuoteView(None, None, None, min_new_offers=2)


def _probe(box: int | None, count: int, present: bool | None = None) -> Probe:
    return Probe(
        ASIN,
        buy_box_present=box is not None if present is None else present,
        buy_box_landed=Decimal(box) if box is not None else None,
        new_offer_count=count,
    )


@pytest.mark.parametrize(
    ("probe", "view", "reason"),
    [
        (_probe(2000, 3), FULL, None),
        (_probe(None, 0), FULL, Contradiction.NO_NEW_OFFERS),  # also gone: the first wins
        (_probe(None, 3), FULL, Contradiction.BUY_BOX_GONE),
        (_probe(None, 2), FULL, Contradiction.BUY_BOX_GONE),  # also fewer: gone is first
        (_probe(2100, 3), FULL, Contradiction.BUY_BOX_PRICE_UP),
        (_probe(2100, 2), FULL, Contradiction.BUY_BOX_PRICE_UP),
        (_probe(2000, 2), FULL, Contradiction.FEWER_NEW_OFFERS),
        (_probe(1900, 2), FULL, Contradiction.FEWER_NEW_OFFERS),
        (_probe(1900, 3), FULL, Contradiction.BUY_BOX_PRICE_DOWN),
        (_probe(1900, 4), FULL, Contradiction.BUY_BOX_PRICE_DOWN),
        (_probe(2000, 4), FULL, Contradiction.MORE_NEW_OFFERS),
        (_probe(None, 0, present=True), FULL, Contradiction.NO_NEW_OFFERS),
        (_probe(None, 3, present=True), FULL, None),  # no price to compare
        (_probe(None, 0), NONE_LEFT, None),
        (_probe(1500, 1), NONE_LEFT, Contradiction.BUY_BOX_APPEARED),
        (_probe(None, 2), NONE_LEFT, Contradiction.MORE_NEW_OFFERS),
        (_probe(None, 0), STORED_OK, Contradiction.NO_NEW_OFFERS),
        (_probe(None, 1), STORED_OK, Contradiction.FEWER_NEW_OFFERS),
        (_probe(None, 2), STORED_OK, None),  # the stored quote says nothing of the Buy Box
        (_probe(900, 9), STORED_OK, None),  # nor of the exact count
        (_probe(None, 0), None, None),  # no view: nothing to contradict
    ],
)
def test_probe_differs(probe: Probe, view: QuoteView | None, reason: Contradiction | None) -> None:
    difference = probe_differs(probe, view)
    assert (difference.reason if difference else None) is reason


def test_an_error_never_differs() -> None:
    for view in (FULL, NONE_LEFT, STORED_OK, None):
        assert probe_differs(ProbeError(ASIN, "status 'ServerError'"), view) is None


def test_the_price_tolerance() -> None:
    assert probe_differs(_probe(2001, 3), FULL) is not None  # default: any yen counts
    loose = Tolerance(yen=Decimal(20), share=Decimal("0.02"))  # 2 % of 2,000 = 40 yen
    assert probe_differs(_probe(2040, 3), FULL, loose) is None
    assert probe_differs(_probe(1960, 3), FULL, loose) is None
    moved = probe_differs(_probe(2041, 3), FULL, loose)
    assert moved is not None and moved.reason is Contradiction.BUY_BOX_PRICE_UP
    assert "2000 -> 2041" in moved.detail
    by_yen = Tolerance(yen=Decimal(50))
    assert probe_differs(_probe(1950, 3), FULL, by_yen) is None
    assert probe_differs(_probe(1949, 3), FULL, by_yen) is not None


def test_urgency_order() -> None:
    """Money at risk first: nothing to buy, then no Buy Box, then a cost that rose."""
    assert sorted(Contradiction)[:3] == [
        Contradiction.NO_NEW_OFFERS,
        Contradiction.BUY_BOX_GONE,
        Contradiction.BUY_BOX_PRICE_UP,
    ]
