"""The market model: deterministic by seed, realistic in its traps, moved by step, compact."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

from ecsync.config import OfferRules
from ecsync.domain.quotes import quote_from_payload
from ecsync.sim import payloads
from ecsync.sim.market import Market
from ecsync.sim.synced import source_cost
from tests.sim.conftest import SimClient, SimFactory

TODAY = date(2026, 1, 5)


def served(market: Market, index: int) -> dict[str, Any]:
    product = market.products[index]
    return payloads.offers_payload(
        product.asin,
        market.offers(product),
        list_price=product.list_price,
        rank=product.rank,
    )


def test_same_seed_same_market_over_http(make_sim: SimFactory) -> None:
    first, again, other = make_sim(seed=42), make_sim(seed=42), make_sim(seed=43)
    assert first.asins() == again.asins()
    assert first.asins() != other.asins()
    for asin in first.asins(10):
        mine = first.control("GET", f"/amazon/{asin}")
        theirs = again.control("GET", f"/amazon/{asin}")
        assert mine == theirs

    # The channels are seeded identically too (but for the wall-clock start time).
    def items(sim: SimClient) -> list[dict[str, Any]]:
        listed = sim.control("GET", "/base/base-1/items")["items"]
        return [{k: v for k, v in item.items() if k != "modified"} for item in listed]

    assert items(first) == items(again)
    assert first.control("GET", "/ebay/ebay-1/offers") == again.control(
        "GET", "/ebay/ebay-1/offers"
    )


def test_offers_are_realistic_and_include_traps() -> None:
    market = Market.generate(7, 2000, TODAY)
    counts = [p.offer_count for p in market.products]
    assert min(counts) == 0
    assert max(counts) <= 20
    assert len(set(market.by_asin)) == 2000
    # The mix by the simulator's own rules (sim/synced.py: new, now, <= 72 h), not the client's.
    statuses: Counter[str] = Counter()
    for product in market.products:
        offers = market.offers(product)
        if not offers:
            statuses["out_of_stock"] += 1
        elif source_cost(offers) is None:
            statuses["no_eligible_offer"] += 1
        else:
            statuses["ok"] += 1
    assert statuses["out_of_stock"] > 60  # about 6%
    assert statuses["no_eligible_offer"] > 80  # about 8% only-bad, plus unlucky mixes
    assert statuses["ok"] > 1500
    # Every served answer is one the client can read (a consumer check, not the oracle).
    read = Counter(
        str(quote_from_payload(served(market, i), OfferRules()).status) for i in range(2000)
    )
    assert read["error"] == 0
    offers = [offer for product in market.products for offer in market.offers(product)]
    assert any(o.sub_condition != "new" for o in offers)
    assert any(o.max_hours > 72 for o in offers)
    assert any(o.availability == "FUTURE_WITH_DATE" and o.available_date for o in offers)
    assert any(o.availability == "FUTURE_WITHOUT_DATE" for o in offers)
    assert any(o.points for o in offers)
    assert any(o.fba and o.prime for o in offers)
    assert any(not o.fba and o.shipping for o in offers)
    # Some in-stock products hide a cheaper offer a reseller must not take.
    undercut = 0
    for product in market.products:
        offers_of = market.offers(product)
        if offers_of and (
            offers_of[0].sub_condition != "new"
            or offers_of[0].max_hours > 72
            or offers_of[0].availability != "NOW"
        ):
            undercut += 1
    assert undercut > 200


def test_step_moves_prices_5_to_30_percent_and_is_deterministic(make_sim: SimFactory) -> None:
    first, second = make_sim(products=120, drift=0), make_sim(products=120, drift=0)
    before = {a: first.control("GET", f"/amazon/{a}") for a in first.asins()}
    counts = first.control("POST", "/market/step", {"fraction": 0.5, "seed": 11})
    assert counts == second.control("POST", "/market/step", {"fraction": 0.5, "seed": 11})
    assert counts["moved"] == 60
    assert counts["price_changes"] > 20
    assert counts["sold_out"] > 0
    assert counts["restocked"] + counts["new_offers"] + counts["handling_changes"] > 0
    after = {a: first.control("GET", f"/amazon/{a}") for a in first.asins()}
    assert after == {a: second.control("GET", f"/amazon/{a}") for a in second.asins()}
    changed = [a for a in before if before[a]["offers"] != after[a]["offers"]]
    assert 45 <= len(changed) <= 60
    ratios = []
    for asin in changed:
        old, new = before[asin]["offers"], after[asin]["offers"]
        if old and new and len(old) == len(new):
            old_prices = sorted(o["price"] for o in old)
            new_prices = sorted(o["price"] for o in new)
            if old_prices != new_prices:
                ratios.append(Decimal(new_prices[-1]) / Decimal(old_prices[-1]))
    assert ratios
    for ratio in ratios:
        moved = abs(ratio - 1)
        assert Decimal("0.04") <= moved <= Decimal("0.31"), ratio
    assert any(r > 1 for r in ratios) and any(r < 1 for r in ratios)


def test_put_and_get_the_true_offers(sim: SimClient) -> None:
    asin = sim.asins(1)[0]
    offers = [
        {"seller_id": "A1TESTSELLER1", "price": 3000, "shipping": 0, "fba": True, "prime": True},
        {"price": 2500, "sub_condition": "very_good"},
    ]
    stored = sim.control("PUT", f"/amazon/{asin}", {"offers": offers})
    assert [o["price"] for o in stored["offers"]] == [2500, 3000]  # cheapest first
    assert stored["payload"]["Summary"]["TotalOfferCount"] == 2
    sold_out = sim.control("PUT", f"/amazon/{asin}", {"out_of_stock": True})
    assert sold_out["out_of_stock"] is True
    assert sold_out["payload"]["status"] == "NoBuyableOffers"
    token = sim.amazon_token()
    served_entry = sim.batch(token, [asin]).json()["responses"][0]["body"]["payload"]
    assert served_entry["status"] == "NoBuyableOffers"
    assert served_entry["Offers"] == []
    for bad in ({"offers": [{"price": -1}]}, {"offers": [{"cost": 1}]}, {"nothing": 1}):
        assert sim.http.put(f"/_sim/amazon/{asin}", json=bad).status_code == 400
    assert sim.http.get("/_sim/amazon/B0NOTINCAT").status_code == 404
    # A new ASIN joins the catalog.
    added = sim.control("PUT", "/amazon/B0NEWASIN1", {"offers": [{"price": 100}]})
    assert added["payload"]["ASIN"] == "B0NEWASIN1"


def test_100k_products_fit_well_under_500_mb() -> None:
    """Measured on 5,000 products and scaled: the model grows linearly (benchmarks/
    sim_throughput.py --memory measures 100,000 directly)."""
    tracemalloc.start()
    try:
        market = Market.generate(3, 5_000, TODAY)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(market.products) == 5_000
    per_product = used / 5_000
    assert per_product * 100_000 < 100 * 1024 * 1024  # measured ~45 MB for 100,000
