"""The exposure meter (``/_sim/exposure``) on hand-made timelines, over HTTP.

The oracles are written here from the rules of issue 10, not taken from the meter:

- a reseller buys only offers that are new, available NOW and ship within 72 h; the cost is
  the cheapest landed price (price + shipping), none when no offer qualifies;
- BASE: buyable when visible and in stock, priced in yen; eBay: buyable when PUBLISHED with
  a quantity above 0, priced in dollars at 150 yen each;
- oversell: seconds a buyable listing's ASIN had no such offer; under cost: seconds (and
  gap x seconds) a buyable listing was priced below the cost.

The clock is frozen and moved by ``/_sim/clock/advance``, so every figure is exact; one
test runs the clock at ``--speed`` 500 and bounds the figure by clock readings around it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from tests.sim.conftest import SimClient, SimFactory

YEN_PER_DOLLAR = 150
EXACT = 1e-6  # seconds: the meter keeps microseconds


@pytest.fixture
def shop(make_sim: SimFactory) -> SimClient:
    """A synced shop (no drift): nothing is exposed until a test makes it so."""
    sim = make_sim(products=60, drift=0.0, ebay_share=0.5)
    sim.freeze()
    return sim


# --- the test's own reading of the truth --------------------------------------------------


def cost_of(offers: list[dict[str, Any]]) -> int | None:
    landed = [
        o["price"] + o.get("shipping", 0)
        for o in offers
        if o.get("sub_condition", "new") == "new"
        and o.get("availability", "NOW") == "NOW"
        and o.get("max_hours", 24) <= 72
    ]
    return min(landed, default=None)


def base_items(sim: SimClient) -> list[dict[str, Any]]:
    return sim.control("GET", "/base/base-1/items")["items"]  # type: ignore[no-any-return]


def ebay_offers(sim: SimClient) -> list[dict[str, Any]]:
    return sim.control("GET", "/ebay/ebay-1/offers")["offers"]  # type: ignore[no-any-return]


def base_buyable(item: dict[str, Any]) -> bool:
    return bool(item["visible"] == 1 and item["stock"] > 0)


def ebay_buyable(offer: dict[str, Any]) -> bool:
    return bool(offer["status"] == "PUBLISHED" and offer["availableQuantity"] > 0)


def ebay_yen(offer: dict[str, Any]) -> Fraction:
    return Fraction(offer["pricingSummary"]["price"]["value"]) * YEN_PER_DOLLAR


def base_only_item(sim: SimClient) -> dict[str, Any]:
    """A buyable BASE item whose ASIN is not on eBay (so its account's figures are the
    total's)."""
    on_ebay = {offer["sku"] for offer in ebay_offers(sim)}
    return next(i for i in base_items(sim) if base_buyable(i) and i["identifier"] not in on_ebay)


def ebay_listed(sim: SimClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """A buyable eBay offer and the (buyable) BASE item of the same ASIN."""
    items = {item["identifier"]: item for item in base_items(sim)}
    offer = next(o for o in ebay_offers(sim) if ebay_buyable(o) and base_buyable(items[o["sku"]]))
    return offer, items[offer["sku"]]


def exposure(sim: SimClient) -> dict[str, Any]:
    return sim.control("GET", "/exposure")  # type: ignore[no-any-return]


def reset(sim: SimClient) -> dict[str, Any]:
    return sim.control("POST", "/exposure/reset")  # type: ignore[no-any-return]


def sell_out(sim: SimClient, asin: str) -> None:
    sim.control("PUT", f"/amazon/{asin}", {"out_of_stock": True})


def base_edit(sim: SimClient, item_id: int, **fields: str) -> None:
    response = sim.http.post(
        "/1/items/edit",
        data={"item_id": str(item_id), **fields},
        headers={"Authorization": f"Bearer {sim.base_token()}"},
    )
    assert response.status_code == 200, response.text


def ebay_update(sim: SimClient, offer: dict[str, Any], **fields: Any) -> None:
    body = {
        "requests": [{"sku": offer["sku"], "offers": [{"offerId": offer["offerId"], **fields}]}]
    }
    response = sim.http.post(
        "/sell/inventory/v1/bulk_update_price_quantity",
        json=body,
        headers={"Authorization": f"Bearer {sim.ebay_token()}"},
    )
    assert response.status_code == 200, response.text


def latency(figures: dict[str, Any]) -> dict[str, Any]:
    return figures["sellouts"]["latency_s"]  # type: ignore[no-any-return]


# --- the tests ----------------------------------------------------------------------------


def test_a_synced_shop_starts_clean(shop: SimClient) -> None:
    figures = exposure(shop)
    items, offers = base_items(shop), ebay_offers(shop)
    assert figures["usd_jpy"] == YEN_PER_DOLLAR
    assert set(figures["accounts"]) == {"base-1", "ebay-1"}
    base, ebay = figures["accounts"]["base-1"], figures["accounts"]["ebay-1"]
    assert (base["listings"], base["buyable"]) == (len(items), sum(map(base_buyable, items)))
    assert (ebay["listings"], ebay["buyable"]) == (len(offers), sum(map(ebay_buyable, offers)))
    assert figures["total"]["listings"] == len(items) + len(offers)
    shop.advance(1000)
    total = exposure(shop)["total"]
    assert total["oversell_s"] == total["under_cost_s"] == total["under_cost_yen_s"] == 0
    assert total["sellouts"]["count"] == 0
    assert latency(total) == {"p50": None, "p95": None, "max": None}


def test_hiding_the_item_ends_an_oversell(shop: SimClient) -> None:
    item = base_only_item(shop)
    started = reset(shop)["now"]
    sell_out(shop, item["identifier"])
    shop.advance(60)
    open_now = exposure(shop)
    for figures in (open_now["accounts"]["base-1"], open_now["total"]):
        assert figures["oversold_now"] == 1
        assert figures["oversell_s"] == pytest.approx(60, abs=EXACT)
        assert figures["sellouts"]["still_exposed"] == 1
        assert latency(figures)["max"] == pytest.approx(60, abs=EXACT)  # open: its age so far
    shop.advance(40)
    base_edit(shop, item["item_id"], visible="0")
    shop.advance(500)
    figures = exposure(shop)
    assert figures["elapsed_s"] == pytest.approx(600, abs=EXACT)
    assert figures["since"] == started
    for scope in (figures["accounts"]["base-1"], figures["total"]):
        assert scope["oversell_s"] == pytest.approx(100, abs=EXACT)
        assert scope["oversold_now"] == 0
        sellouts = scope["sellouts"]
        assert (sellouts["count"], sellouts["exposed"], sellouts["still_exposed"]) == (1, 1, 0)
        assert sellouts["ended_by_restock"] == 0
        assert latency(scope) == pytest.approx({"p50": 100, "p95": 100, "max": 100}, abs=EXACT)
    assert figures["accounts"]["ebay-1"]["oversell_s"] == 0
    assert figures["accounts"]["ebay-1"]["sellouts"]["count"] == 0


def test_ebay_quantity_zero_ends_its_own_exposure(shop: SimClient) -> None:
    offer, item = ebay_listed(shop)
    reset(shop)
    sell_out(shop, offer["sku"])
    shop.advance(40)
    ebay_update(shop, offer, availableQuantity=0)
    shop.advance(60)
    middle = exposure(shop)
    ebay, total = middle["accounts"]["ebay-1"], middle["total"]
    assert ebay["oversell_s"] == pytest.approx(40, abs=EXACT)
    assert (ebay["sellouts"]["exposed"], ebay["sellouts"]["still_exposed"]) == (1, 0)
    assert latency(ebay)["max"] == pytest.approx(40, abs=EXACT)
    assert total["sellouts"]["still_exposed"] == 1  # the BASE item is still buyable
    base_edit(shop, item["item_id"], stock="0")
    shop.advance(30)
    figures = exposure(shop)
    assert figures["accounts"]["base-1"]["oversell_s"] == pytest.approx(100, abs=EXACT)
    assert figures["total"]["oversell_s"] == pytest.approx(140, abs=EXACT)
    assert latency(figures["accounts"]["base-1"])["max"] == pytest.approx(100, abs=EXACT)
    total = figures["total"]
    assert (total["sellouts"]["count"], total["sellouts"]["still_exposed"]) == (1, 0)
    assert latency(total) == pytest.approx({"p50": 100, "p95": 100, "max": 100}, abs=EXACT)


def test_a_restock_ends_the_sellout(shop: SimClient) -> None:
    item = base_only_item(shop)
    asin = item["identifier"]
    reset(shop)
    sell_out(shop, asin)
    shop.advance(30)
    shop.control("PUT", f"/amazon/{asin}", {"offers": [{"price": item["price"] // 2}]})
    shop.advance(20)
    figures = exposure(shop)["accounts"]["base-1"]
    assert figures["oversell_s"] == pytest.approx(30, abs=EXACT)
    assert figures["oversold_now"] == 0
    sellouts = figures["sellouts"]
    assert (sellouts["count"], sellouts["exposed"], sellouts["still_exposed"]) == (1, 1, 0)
    assert sellouts["ended_by_restock"] == 1
    assert latency(figures)["max"] == pytest.approx(30, abs=EXACT)


def test_under_cost_counts_the_gap_by_the_buying_rules(shop: SimClient) -> None:
    item = base_only_item(shop)
    price = item["price"]
    offers = [
        {"price": price + 500, "shipping": 300},  # the one to buy: landed price + 800
        {"price": price - 900, "max_hours": 96},  # too slow
        {"price": price - 800, "sub_condition": "good"},  # used
        {"price": price - 700, "availability": "FUTURE_WITHOUT_DATE"},  # not now
        {"price": price + 900},
    ]
    cost = cost_of(offers)
    assert cost is not None
    gap = cost - price
    reset(shop)
    shop.control("PUT", f"/amazon/{item['identifier']}", {"offers": offers})
    shop.advance(60)
    base_edit(shop, item["item_id"], price=str(cost + 10))  # repriced above the cost
    shop.advance(25)
    for figures in (exposure(shop)["accounts"]["base-1"], exposure(shop)["total"]):
        assert figures["under_cost_s"] == pytest.approx(60, abs=EXACT)
        assert figures["under_cost_yen_s"] == pytest.approx(gap * 60, abs=1e-3)
        assert figures["under_cost_now"] == 0
        assert figures["oversell_s"] == 0
        assert figures["sellouts"]["count"] == 0


def test_ebay_prices_count_in_yen(shop: SimClient) -> None:
    offer, item = ebay_listed(shop)
    shop.control("PATCH", f"/base/base-1/items/{item['item_id']}", {"visible": 0})
    shop.control("PATCH", f"/ebay/ebay-1/offers/{offer['offerId']}", {"price": "10.01"})
    offer = next(o for o in ebay_offers(shop) if o["offerId"] == offer["offerId"])
    cost = 1600
    gap = cost - ebay_yen(offer)  # 1600 - 1501.5
    assert gap > 0
    reset(shop)
    shop.control("PUT", f"/amazon/{offer['sku']}", {"offers": [{"price": cost}]})
    shop.advance(80)
    figures = exposure(shop)
    ebay = figures["accounts"]["ebay-1"]
    assert ebay["under_cost_now"] == 1
    assert ebay["under_cost_s"] == pytest.approx(80, abs=EXACT)
    assert ebay["under_cost_yen_s"] == pytest.approx(float(gap * 80), abs=1e-3)
    # The BASE item of the same ASIN is hidden: never counted, whatever its price.
    base = figures["accounts"]["base-1"]
    assert base["under_cost_s"] == base["oversell_s"] == 0
    assert figures["total"]["under_cost_yen_s"] == pytest.approx(float(gap * 80), abs=1e-3)


def test_hidden_items_never_count(shop: SimClient) -> None:
    item = base_only_item(shop)
    base_edit(shop, item["item_id"], visible="0")
    reset(shop)
    sell_out(shop, item["identifier"])
    shop.advance(300)
    figures = exposure(shop)["accounts"]["base-1"]
    assert figures["oversell_s"] == 0
    assert figures["oversold_now"] == 0
    sellouts = figures["sellouts"]
    assert (sellouts["count"], sellouts["exposed"], sellouts["still_exposed"]) == (1, 0, 0)
    assert latency(figures)["max"] is None


def test_reset_zeroes_and_restarts_open_exposure(shop: SimClient) -> None:
    item = base_only_item(shop)
    reset(shop)
    sell_out(shop, item["identifier"])
    shop.advance(70)
    zeroed = reset(shop)
    base = zeroed["accounts"]["base-1"]
    assert zeroed["elapsed_s"] == 0
    assert base["oversell_s"] == 0 and base["oversold_now"] == 1
    shop.advance(10)
    figures = exposure(shop)["accounts"]["base-1"]
    assert figures["oversell_s"] == pytest.approx(10, abs=EXACT)
    # The open sell-out carries over with its own start.
    assert figures["sellouts"]["still_exposed"] == 1
    assert latency(figures)["max"] == pytest.approx(80, abs=EXACT)
    base_edit(shop, item["item_id"], visible="0")
    shop.advance(5)
    closed = exposure(shop)["accounts"]["base-1"]
    assert closed["oversell_s"] == pytest.approx(10, abs=EXACT)  # from the reset, not before
    assert latency(closed)["max"] == pytest.approx(80, abs=EXACT)
    reset(shop)
    shop.advance(10)
    after = exposure(shop)["accounts"]["base-1"]
    assert after["oversell_s"] == 0
    assert after["sellouts"]["count"] == 0
    assert latency(after)["max"] is None


def test_deleting_an_item_ends_its_exposure(shop: SimClient) -> None:
    offer, item = ebay_listed(shop)
    before = exposure(shop)["accounts"]
    reset(shop)
    sell_out(shop, offer["sku"])
    shop.advance(15)
    shop.control("DELETE", f"/base/base-1/items/{item['item_id']}")
    shop.advance(5)
    shop.control("DELETE", f"/ebay/ebay-1/offers/{offer['offerId']}")
    shop.advance(100)
    figures = exposure(shop)
    base, ebay = figures["accounts"]["base-1"], figures["accounts"]["ebay-1"]
    assert base["oversell_s"] == pytest.approx(15, abs=EXACT)
    assert ebay["oversell_s"] == pytest.approx(20, abs=EXACT)
    assert base["listings"] == before["base-1"]["listings"] - 1
    assert ebay["listings"] == before["ebay-1"]["listings"] - 1
    assert latency(figures["total"])["max"] == pytest.approx(20, abs=EXACT)


def test_an_identifier_edit_moves_the_listing(shop: SimClient) -> None:
    item = base_only_item(shop)
    other = next(
        i for i in base_items(shop) if i["identifier"] != item["identifier"] and i["visible"]
    )
    reset(shop)
    sell_out(shop, item["identifier"])
    shop.advance(10)
    # The item now sells a product that has offers: no longer oversold.
    base_edit(shop, item["item_id"], identifier=other["identifier"], price="99999")
    shop.advance(10)
    figures = exposure(shop)["accounts"]["base-1"]
    assert figures["oversell_s"] == pytest.approx(10, abs=EXACT)
    assert figures["under_cost_s"] == 0
    assert figures["sellouts"]["still_exposed"] == 0


def test_a_variation_item_sells_the_stock_coded_with_its_asin(make_sim: SimFactory) -> None:
    """Rule: an item with variations sells the ASIN from the variation whose
    ``variation_identifier`` is the ASIN (else its first variation)."""
    sim = make_sim(products=60, drift=0.0, ebay_share=0.0, base_variations=1.0)
    sim.freeze()
    coded = [
        item
        for item in base_items(sim)
        if base_buyable(item)
        and len(item["variations"]) > 1
        and any(v["variation_identifier"] == item["identifier"] for v in item["variations"])
    ]
    hidden, shown = coded[0], coded[1]
    # ``hidden``: its ASIN's variation is out of stock, another one is not.
    mine = next(
        v for v in hidden["variations"] if v["variation_identifier"] == hidden["identifier"]
    )
    other = next(v for v in hidden["variations"] if v is not mine)
    edits = {
        "variation_id[0]": str(mine["variation_id"]),
        "variation_stock[0]": "0",
        "variation_id[1]": str(other["variation_id"]),
        "variation_stock[1]": "2",
    }
    base_edit(sim, hidden["item_id"], **edits)
    # ``shown``: only its ASIN's variation has stock.
    fields: dict[str, str] = {}
    for n, v in enumerate(shown["variations"]):
        fields[f"variation_id[{n}]"] = str(v["variation_id"])
        fields[f"variation_stock[{n}]"] = (
            "1" if v["variation_identifier"] == shown["identifier"] else "0"
        )
    base_edit(sim, shown["item_id"], **fields)
    # ``uncoded``: no variation names the ASIN; its first is out of stock, the second not.
    uncoded = next(
        item
        for item in base_items(sim)
        if base_buyable(item)
        and len(item["variations"]) == 2
        and not any(v["variation_identifier"] for v in item["variations"])
    )
    first, second = uncoded["variations"]
    edits = {
        "variation_id[0]": str(first["variation_id"]),
        "variation_stock[0]": "0",
        "variation_id[1]": str(second["variation_id"]),
        "variation_stock[1]": "2",
    }
    base_edit(sim, uncoded["item_id"], **edits)
    reset(sim)
    for item in (hidden, shown, uncoded):
        sell_out(sim, item["identifier"])
    sim.advance(50)
    figures = exposure(sim)["accounts"]["base-1"]
    assert figures["oversold_now"] == 1
    assert figures["oversell_s"] == pytest.approx(50, abs=EXACT)
    assert (figures["sellouts"]["count"], figures["sellouts"]["exposed"]) == (3, 1)


def judge(sim: SimClient) -> dict[str, dict[str, Any]]:
    """Every buyable listing judged now by the test's rules, from the simulator's truth."""
    costs = {
        item["identifier"]: cost_of(sim.control("GET", f"/amazon/{item['identifier']}")["offers"])
        for item in base_items(sim)
    }
    want: dict[str, dict[str, Any]] = {}
    for name, listings in (
        (
            "base-1",
            [(i["identifier"], Fraction(i["price"])) for i in base_items(sim) if base_buyable(i)],
        ),
        ("ebay-1", [(o["sku"], ebay_yen(o)) for o in ebay_offers(sim) if ebay_buyable(o)]),
    ):
        over = sum(1 for asin, _ in listings if costs[asin] is None)
        gaps: list[Fraction] = []
        for asin, price in listings:
            cost = costs[asin]
            if cost is not None and cost > price:
                gaps.append(cost - price)
        want[name] = {"oversold_now": over, "under_cost_now": len(gaps), "gap": sum(gaps)}
    return want


def assert_judged(sim: SimClient, want: dict[str, dict[str, Any]], seconds: float) -> None:
    figures = exposure(sim)["accounts"]
    for name, expected in want.items():
        got = figures[name]
        assert got["oversold_now"] == expected["oversold_now"]
        assert got["under_cost_now"] == expected["under_cost_now"]
        assert got["oversell_s"] == pytest.approx(seconds * expected["oversold_now"], abs=EXACT)
        assert got["under_cost_s"] == pytest.approx(seconds * expected["under_cost_now"], abs=EXACT)
        assert got["under_cost_yen_s"] == pytest.approx(float(seconds * expected["gap"]), abs=1e-2)


def test_market_steps_match_the_truth(shop: SimClient) -> None:
    """After a market step (``at`` = now), every listing is judged from the truth."""
    reset(shop)
    shop.control("POST", "/market/step", {"fraction": 0.6, "seed": 7})
    want = judge(shop)
    assert want["base-1"]["oversold_now"] > 0  # the step sold some out
    shop.advance(10)
    assert_judged(shop, want, 10)


def test_a_drifted_shop_is_exposed_from_the_start(make_sim: SimFactory) -> None:
    """The drift moved the market before the meter started: what it left wrong counts from
    the first second (but is no sell-out: none was seen happening)."""
    sim = make_sim(products=80, drift=0.5, ebay_share=0.5)
    sim.freeze()
    reset(sim)
    want = judge(sim)
    assert want["base-1"]["oversold_now"] > 0
    sim.advance(30)
    assert_judged(sim, want, 30)
    assert exposure(sim)["total"]["sellouts"]["count"] == 0


def test_figures_hold_at_speed(make_sim: SimFactory) -> None:
    """Unfrozen at --speed 500: the oversell lies between clock readings around its ends."""
    sim = make_sim(products=60, drift=0.0, speed=500)
    item = base_only_item(sim)
    reset(sim)
    before_out = sim.control("GET", "/clock")["now"]
    sell_out(sim, item["identifier"])
    after_out = sim.control("GET", "/clock")["now"]
    token = sim.base_token()  # real requests take real time: simulated seconds pass
    before_hide = sim.control("GET", "/clock")["now"]
    response = sim.http.post(
        "/1/items/edit",
        data={"item_id": str(item["item_id"]), "visible": "0"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    after_hide = sim.control("GET", "/clock")["now"]
    figures = exposure(sim)["accounts"]["base-1"]
    low, high = before_hide - after_out, after_hide - before_out
    assert low > 0
    assert low - EXACT <= figures["oversell_s"] <= high + EXACT
    assert low - EXACT <= latency(figures)["max"] <= high + EXACT
    assert figures["sellouts"]["still_exposed"] == 0


def test_an_item_waits_for_its_asin_to_join_the_catalog(shop: SimClient) -> None:
    item = base_only_item(shop)
    listed = exposure(shop)["accounts"]["base-1"]["listings"]
    new_asin = "B0ZZZZZZZ1"
    shop.control("PATCH", f"/base/base-1/items/{item['item_id']}", {"identifier": new_asin})
    assert exposure(shop)["accounts"]["base-1"]["listings"] == listed - 1
    reset(shop)
    offers = [{"price": item["price"] + 200, "shipping": 100}]
    shop.control("PUT", f"/amazon/{new_asin}", {"offers": offers})
    shop.advance(20)
    figures = exposure(shop)["accounts"]["base-1"]
    assert figures["listings"] == listed
    assert figures["under_cost_now"] == 1
    assert figures["under_cost_yen_s"] == pytest.approx(300 * 20, abs=1e-3)


def test_ebay_withdraw_and_publish_end_and_restart_the_exposure(shop: SimClient) -> None:
    offer, item = ebay_listed(shop)
    shop.control("PATCH", f"/base/base-1/items/{item['item_id']}", {"visible": 0})
    path = f"/sell/inventory/v1/offer/{offer['offerId']}"
    headers = {"Authorization": f"Bearer {shop.ebay_token()}"}
    reset(shop)
    sell_out(shop, offer["sku"])
    shop.advance(12)
    assert shop.http.post(f"{path}/withdraw", headers=headers).status_code == 200
    shop.advance(100)
    assert shop.http.post(f"{path}/publish", headers=headers).status_code == 200
    shop.advance(8)
    ebay = exposure(shop)["accounts"]["ebay-1"]
    assert ebay["oversell_s"] == pytest.approx(20, abs=EXACT)
    assert ebay["oversold_now"] == 1
    # The sell-out ended when the offer was withdrawn; publishing again does not reopen it.
    sellouts = ebay["sellouts"]
    assert (sellouts["count"], sellouts["exposed"], sellouts["still_exposed"]) == (1, 1, 0)
    assert latency(ebay)["max"] == pytest.approx(12, abs=EXACT)


def test_an_ebay_price_revision_starts_and_ends_under_cost(shop: SimClient) -> None:
    offer, item = ebay_listed(shop)
    shop.control("PATCH", f"/base/base-1/items/{item['item_id']}", {"visible": 0})
    cost = cost_of(shop.control("GET", f"/amazon/{offer['sku']}")["offers"])
    assert cost is not None
    low = Fraction(cost - 300, YEN_PER_DOLLAR).limit_denominator(100)  # dollars, to the cent
    low_text = f"{float(low):.2f}"
    gap = cost - Fraction(low_text) * YEN_PER_DOLLAR
    reset(shop)
    ebay_update(shop, offer, price={"value": low_text, "currency": "USD"})
    shop.advance(45)
    ebay_update(
        shop, offer, price={"value": offer["pricingSummary"]["price"]["value"], "currency": "USD"}
    )
    shop.advance(45)
    ebay = exposure(shop)["accounts"]["ebay-1"]
    assert ebay["under_cost_s"] == pytest.approx(45, abs=EXACT)
    assert ebay["under_cost_yen_s"] == pytest.approx(float(gap * 45), abs=1e-3)
    assert ebay["under_cost_now"] == 0
