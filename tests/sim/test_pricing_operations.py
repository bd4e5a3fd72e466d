"""Every Amazon pricing operation of the simulator, over HTTP: each has its own token bucket
with its documented plan, is counted on its own in ``/_sim/stats``, and shows the market's
Buy Box by the simulator's documented rule -- which may crown an offer a reseller would not
buy from.

The oracles are written here, from the offers the test puts into the market
(``PUT /_sim/amazon/{asin}``) or reads back as the simulator's truth (``GET``), and the rules
as the issue states them: the Buy Box is the cheapest (price + shipping) featured new offer
available now, whatever its handling time; a reseller buys only new offers available now that
ship within 72 hours. The clock is frozen, so every bucket count is exact.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sim.conftest import JP, SimClient, SimFactory

COMPETITIVE_PATH = "/products/pricing/v0/competitivePrice"
SUMMARY_PATH = "/batches/products/pricing/2022-05-01/items/competitiveSummary"
SUMMARY_URI = "/products/pricing/2022-05-01/items/competitiveSummary"
RESELLER_MAX_HOURS = 72

# (operation, rate per second, burst) as the models' usage plans document them.
PLANS = [("getCompetitivePricing", 0.5, 1), ("getCompetitiveSummary", 0.033, 1)]


# --- the calls ---------------------------------------------------------------------------


def competitive_pricing(sim: SimClient, token: str, asins: list[str]) -> httpx.Response:
    return sim.http.get(
        COMPETITIVE_PATH,
        params={"MarketplaceId": JP, "ItemType": "Asin", "Asins": ",".join(asins)},
        headers={"x-amz-access-token": token},
    )


def competitive_summary(sim: SimClient, token: str, asins: list[str]) -> httpx.Response:
    requests = [
        {
            "asin": asin,
            "marketplaceId": JP,
            "includedData": ["featuredBuyingOptions", "referencePrices", "lowestPricedOffers"],
            "lowestPricedOffersInputs": [{"itemCondition": "New", "offerType": "Consumer"}],
            "method": "GET",
            "uri": SUMMARY_URI,
        }
        for asin in asins
    ]
    return sim.http.post(
        SUMMARY_PATH, json={"requests": requests}, headers={"x-amz-access-token": token}
    )


def item_offers(sim: SimClient, token: str, asin: str) -> httpx.Response:
    return sim.http.get(
        f"/products/pricing/v0/items/{asin}/offers",
        params={"MarketplaceId": JP, "ItemCondition": "New"},
        headers={"x-amz-access-token": token},
    )


def call(sim: SimClient, token: str, operation: str, asins: list[str]) -> httpx.Response:
    if operation == "getItemOffersBatch":
        return sim.batch(token, asins)
    if operation == "getItemOffers":
        return item_offers(sim, token, asins[0])
    if operation == "getCompetitivePricing":
        return competitive_pricing(sim, token, asins)
    assert operation == "getCompetitiveSummary"
    return competitive_summary(sim, token, asins)


# --- the oracle: the rules as the issue states them --------------------------------------


def landed(offer: dict[str, Any]) -> int:
    return int(offer["price"]) + int(offer.get("shipping", 0))


def is_new(offer: dict[str, Any]) -> bool:
    return bool(offer.get("sub_condition", "new") == "new")


def available_now(offer: dict[str, Any]) -> bool:
    return bool(offer.get("availability", "NOW") == "NOW")


def candidates(offers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The offers that may hold the Buy Box: featured, new, available now."""
    return [o for o in offers if o.get("featured", True) and is_new(o) and available_now(o)]


def buy_box(offers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cheapest featured new offer available now; handling time plays no part."""
    return min(candidates(offers), key=landed, default=None)


def reseller_cost(offers: list[dict[str, Any]]) -> int | None:
    """What a reseller pays: the cheapest new offer available now shipping within 72 h."""
    eligible = [
        landed(o)
        for o in offers
        if is_new(o) and available_now(o) and o.get("max_hours", 24) <= RESELLER_MAX_HOURS
    ]
    return min(eligible, default=None)


def listing_counts(offers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NumberOfOfferListings as documented: every listed offer, per condition."""
    new = sum(1 for o in offers if is_new(o))
    counts = []
    if new:
        counts.append({"Count": new, "condition": "New"})
    if len(offers) - new:
        counts.append({"Count": len(offers) - new, "condition": "Used"})
    return counts


# --- buckets -----------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [1.0, 25.0])
@pytest.mark.parametrize(("operation", "rate", "burst"), PLANS)
def test_burst_then_exactly_the_documented_rate(
    make_sim: SimFactory, speed: float, operation: str, rate: float, burst: int
) -> None:
    sim = make_sim(speed=speed)
    sim.freeze()
    token = sim.amazon_token()
    asins = sim.asins(20)
    first = call(sim, token, operation, asins)
    assert first.status_code == 200
    assert float(first.headers["x-amzn-RateLimit-Limit"]) == pytest.approx(rate * speed)
    for _ in range(burst - 1):
        assert call(sim, token, operation, asins).status_code == 200
    assert call(sim, token, operation, asins).status_code == 429
    interval = 1 / rate
    for _ in range(3):
        sim.advance(interval * 0.99)
        assert call(sim, token, operation, asins).status_code == 429
        sim.advance(interval * 0.01)
        assert call(sim, token, operation, asins).status_code == 200
        assert call(sim, token, operation, asins).status_code == 429
    spapi = sim.stats()["spapi"]
    assert spapi["requests"] == {operation: burst + 1 + 3 * 3}
    assert spapi["throttled_by_operation"] == {operation: 1 + 3 * 2}
    assert spapi["throttled"] == 1 + 3 * 2
    assert spapi["asins_by_operation"] == {operation: 20 * (burst + 3)}


def test_buckets_are_independent(sim: SimClient) -> None:
    """Spending getItemOffersBatch's bucket leaves every other pricing bucket full; each
    refills at its own rate."""
    sim.freeze()
    token = sim.amazon_token()
    asins = sim.asins(20)
    assert call(sim, token, "getItemOffersBatch", asins).status_code == 200
    assert call(sim, token, "getItemOffersBatch", asins).status_code == 429
    for operation in ("getCompetitivePricing", "getCompetitiveSummary", "getItemOffers"):
        assert call(sim, token, operation, asins).status_code == 200, operation
    for operation in ("getCompetitivePricing", "getCompetitiveSummary", "getItemOffers"):
        assert call(sim, token, operation, asins).status_code == 429, operation
    # 2 s: getCompetitivePricing and getItemOffers (0.5/s) have a token again, not the others.
    sim.advance(2)
    assert call(sim, token, "getCompetitivePricing", asins).status_code == 200
    assert call(sim, token, "getItemOffers", asins).status_code == 200
    assert call(sim, token, "getItemOffersBatch", asins).status_code == 429
    assert call(sim, token, "getCompetitiveSummary", asins).status_code == 429
    # 10 s in all: the batch (0.1/s) again; the summary (0.033/s) needs 30.3 s.
    sim.advance(8)
    assert call(sim, token, "getItemOffersBatch", asins).status_code == 200
    assert call(sim, token, "getCompetitiveSummary", asins).status_code == 429
    sim.advance(20)  # 30 s: 0.99 of a token
    assert call(sim, token, "getCompetitiveSummary", asins).status_code == 429
    sim.advance(0.4)  # 30.4 s
    assert call(sim, token, "getCompetitiveSummary", asins).status_code == 200
    spapi = sim.stats()["spapi"]
    assert spapi["requests"] == {
        "getItemOffersBatch": 4,
        "getCompetitivePricing": 3,
        "getCompetitiveSummary": 6,
        "getItemOffers": 3,
    }
    assert spapi["throttled_by_operation"] == {
        "getItemOffersBatch": 2,
        "getCompetitivePricing": 1,
        "getCompetitiveSummary": 4,
        "getItemOffers": 1,
    }
    assert spapi["throttled"] == 8


def test_counts_per_operation(sim: SimClient) -> None:
    """ASINs answered are counted per operation (failed items not); ``asin_fetches`` still
    counts only the full quotes of getItemOffers(Batch)."""
    sim.freeze()
    sim.control("POST", "/stats/reset")
    token = sim.amazon_token()
    asins = sim.asins(6)
    unknown = "B0NOTINCAT"
    assert sim.batch(token, [*asins[:3], unknown]).status_code == 200
    assert item_offers(sim, token, asins[0]).status_code == 200
    assert competitive_pricing(sim, token, [*asins[:4], unknown]).status_code == 200
    assert competitive_summary(sim, token, [*asins, unknown]).status_code == 200
    spapi = sim.stats()["spapi"]
    assert spapi["requests"] == {
        "getItemOffersBatch": 1,
        "getItemOffers": 1,
        "getCompetitivePricing": 1,
        "getCompetitiveSummary": 1,
    }
    assert spapi["asins_by_operation"] == {
        "getItemOffersBatch": 3,
        "getItemOffers": 1,
        "getCompetitivePricing": 4,
        "getCompetitiveSummary": 6,
    }
    assert spapi["throttled"] == 0
    assert spapi["throttled_by_operation"] == {}
    assert spapi["asin_fetches"] == {"total": 4, "distinct": 3, "max_per_asin": 2}
    sim.control("POST", "/stats/reset")
    reset = sim.stats()["spapi"]
    assert reset["asins_by_operation"] == {}
    assert reset["throttled_by_operation"] == {}


# --- the Buy Box -------------------------------------------------------------------------

SLOW_BOX = [
    # The Buy Box: the cheapest featured new offer available now, but it ships in 96 h.
    {"seller_id": "A1SLOWBOX0001", "price": 900, "min_hours": 72, "max_hours": 96},
    # What a reseller buys: new, now, 48 h; 1,000 + 200 yen.
    {"seller_id": "A1FASTSELLER2", "price": 1000, "shipping": 200, "max_hours": 48},
    {"seller_id": "A1FASTSELLER3", "price": 1300, "fba": True, "prime": True},
    # Cheaper, but not featured / not available now: never the box.
    {"seller_id": "A1NOTFEATURE4", "price": 800, "featured": False},
    {"seller_id": "A1LATEOFFER05", "price": 700, "availability": "FUTURE_WITHOUT_DATE"},
    # Used: the Used Buy Box, not the New one.
    {"seller_id": "A1USEDOFFER06", "price": 500, "sub_condition": "very_good"},
]


def test_a_slow_seller_holds_the_buy_box_a_reseller_would_not_buy_from(sim: SimClient) -> None:
    sim.freeze()
    asin = "B0SLOWBOX1"
    truth = sim.control("PUT", f"/amazon/{asin}", {"offers": SLOW_BOX})["offers"]
    box, cost = buy_box(truth), reseller_cost(truth)
    assert box is not None
    assert cost is not None
    assert box["max_hours"] > RESELLER_MAX_HOURS  # the point of this test
    assert landed(box) != cost
    token = sim.amazon_token()

    pricing = competitive_pricing(sim, token, [asin])
    assert pricing.status_code == 200
    (entry,) = pricing.json()["payload"]
    competitive = entry["Product"]["CompetitivePricing"]
    new_box = next(p for p in competitive["CompetitivePrices"] if p["CompetitivePriceId"] == "1")
    assert new_box["condition"] == "New"
    assert new_box["belongsToRequester"] is False
    assert new_box["Price"]["LandedPrice"]["Amount"] == landed(box)
    assert new_box["Price"]["ListingPrice"]["Amount"] == box["price"]
    assert new_box["Price"]["Shipping"]["Amount"] == box.get("shipping", 0)
    assert new_box["Price"]["LandedPrice"]["Amount"] != cost
    assert competitive["NumberOfOfferListings"] == listing_counts(truth)

    summary = competitive_summary(sim, token, [asin])
    assert summary.status_code == 200
    body = summary.json()["responses"][0]["body"]
    (featured,) = body["featuredBuyingOptions"][0]["segmentedFeaturedOffers"]
    assert featured["sellerId"] == box["seller_id"]
    assert featured["listingPrice"]["amount"] == box["price"]
    lowest = body["lowestPricedOffers"][0]["offers"]
    new_offers = sorted((o for o in truth if is_new(o)), key=landed)
    assert [o["sellerId"] for o in lowest] == [o["seller_id"] for o in new_offers]

    # Only the full quote shows why: the box's handling time is over a reseller's limit.
    offers = item_offers(sim, token, asin).json()["payload"]["Offers"]
    winners = [o for o in offers if o["IsBuyBoxWinner"]]
    assert [o["SellerId"] for o in winners] == [box["seller_id"]]
    assert winners[0]["ShippingTime"]["maximumHours"] > RESELLER_MAX_HOURS


def test_no_buy_box_means_empty_competitive_prices(sim: SimClient) -> None:
    sim.freeze()
    asin = "B0NOBOX001"
    offers = [
        {"seller_id": "A1NOTFEATURE1", "price": 900, "featured": False},
        {"seller_id": "A1LATEOFFER02", "price": 950, "availability": "FUTURE_WITHOUT_DATE"},
        {
            "seller_id": "A1LATEOFFER03",
            "price": 990,
            "availability": "FUTURE_WITH_DATE",
            "available_date": "2031-01-15",
        },
    ]
    truth = sim.control("PUT", f"/amazon/{asin}", {"offers": offers})["offers"]
    assert buy_box(truth) is None
    sim.control("PUT", "/amazon/B0NOBOX002", {"out_of_stock": True})
    token = sim.amazon_token()
    pricing = competitive_pricing(sim, token, [asin, "B0NOBOX002"])
    assert pricing.status_code == 200
    listed, sold_out = (e["Product"]["CompetitivePricing"] for e in pricing.json()["payload"])
    assert listed == {
        "CompetitivePrices": [],
        "NumberOfOfferListings": [{"Count": 3, "condition": "New"}],
    }
    assert sold_out == {"CompetitivePrices": [], "NumberOfOfferListings": []}
    summary = competitive_summary(sim, token, [asin, "B0NOBOX002"])
    first, second = (r["body"] for r in summary.json()["responses"])
    assert first["featuredBuyingOptions"] == []
    assert [o["sellerId"] for o in first["lowestPricedOffers"][0]["offers"]] == [
        "A1NOTFEATURE1",
        "A1LATEOFFER02",
        "A1LATEOFFER03",
    ]
    assert second["featuredBuyingOptions"] == []
    assert second["lowestPricedOffers"] == []


def test_the_generated_market_agrees_with_the_rule(sim: SimClient) -> None:
    """Across the seeded market, getCompetitivePricing's New Buy Box and offer counts are the
    oracle's, from the simulator's truth of each ASIN."""
    sim.freeze()
    token = sim.amazon_token()
    asins = sim.asins(60)
    seen_box = seen_none = seen_slow = 0
    for start in range(0, len(asins), 20):
        chunk = asins[start : start + 20]
        sim.advance(2)
        payload = competitive_pricing(sim, token, chunk).json()["payload"]
        for asin, entry in zip(chunk, payload, strict=True):
            truth = sim.control("GET", f"/amazon/{asin}")["offers"]
            competitive = entry["Product"]["CompetitivePricing"]
            assert competitive["NumberOfOfferListings"] == listing_counts(truth), asin
            box = buy_box(truth)
            news = [p for p in competitive["CompetitivePrices"] if p["CompetitivePriceId"] == "1"]
            if box is None:
                assert news == [], asin
                seen_none += 1
                continue
            (new_box,) = news
            points = box.get("points", 0)
            assert new_box["Price"]["LandedPrice"]["Amount"] == landed(box) - points, asin
            # Offers tied on landed price may split it differently into price + shipping.
            tied = [o for o in truth if o in candidates(truth) and landed(o) == landed(box)]
            assert new_box["Price"]["ListingPrice"]["Amount"] in {o["price"] for o in tied}, asin
            seen_box += 1
            seen_slow += box["max_hours"] > RESELLER_MAX_HOURS
    assert seen_box and seen_none, (seen_box, seen_none)
    assert seen_slow, "the seeded market has boxes held by slow sellers"
