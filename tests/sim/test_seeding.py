"""Channels start as a correct sync would have left them, then the drift moves Amazon;
the written config works against the simulator; the stats have INTERFACE.md's shape.

"Correct" is checked with an oracle written here (integer arithmetic on the served payload),
never with ecsync's pricing or quote code: a client bug must not agree with itself."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ecsync.config import load_settings
from ecsync.sim.server import SimOptions, running_simulator
from tests.sim.conftest import SimClient, SimFactory


def served_payloads(sim: SimClient, asins: list[str]) -> dict[str, dict[str, Any]]:
    """Each ASIN's payload exactly as getItemOffersBatch serves it."""
    sim.freeze()
    token = sim.amazon_token()
    out = {}
    for start in range(0, len(asins), 20):
        sim.advance(10)
        response = sim.batch(token, asins[start : start + 20])
        assert response.status_code == 200
        for entry in response.json()["responses"]:
            out[entry["request"]["Asin"]] = entry["body"]["payload"]
    return out


def expected_state(payload: dict[str, Any], platform: str) -> Decimal | None:
    """The price a default-config sync lists at, or None (hide): the test's own oracle.

    Source: the cheapest price + shipping among new offers available NOW that ship within
    72 h. BASE: cost x 1.3 to the nearest 10 yen, halves up. eBay: (cost + 4,500 yen) / 0.48
    / 150 yen per dollar to the nearest cent, halves up; in cents that is (cost + 4500) x
    25/18. The 5 % floor never binds for the simulator's prices (all above 100 yen).
    """
    landed = [
        int(offer["ListingPrice"]["Amount"]) + int(offer["Shipping"]["Amount"])
        for offer in payload["Offers"]
        if offer["SubCondition"] == "new"
        and offer["ShippingTime"]["availabilityType"] == "NOW"
        and offer["ShippingTime"]["maximumHours"] <= 72
    ]
    if not landed:
        return None
    cost = min(landed)
    assert cost > 100
    if platform == "base":
        return Decimal((cost * 13 + 50) // 100 * 10)
    cents = ((cost + 4500) * 25 * 2 + 18) // 36  # round half up of (cost + 4500) * 25 / 18
    return Decimal(cents).scaleb(-2)  # two decimals, as the channel shows it


def test_channels_start_synced_when_there_is_no_drift(make_sim: SimFactory) -> None:
    sim = make_sim(products=90, base_accounts=2, ebay_accounts=2, ebay_share=0.5, drift=0)
    asins = sim.asins()
    payloads = served_payloads(sim, asins)
    base = {
        name: sim.control("GET", f"/base/{name}/items")["items"] for name in ("base-1", "base-2")
    }
    # Round robin, one item per product, identifier = ASIN.
    assert [i["identifier"] for i in base["base-1"]] == asins[0::2]
    assert [i["identifier"] for i in base["base-2"]] == asins[1::2]
    hidden = 0
    for item in base["base-1"] + base["base-2"]:
        price = expected_state(payloads[item["identifier"]], "base")
        if price is None:
            hidden += 1
            assert item["visible"] == 0
        else:
            assert (item["visible"], item["stock"], item["price"]) == (1, 1, int(price))
    assert 0 < hidden < 45
    for name in ("ebay-1", "ebay-2"):
        offers = sim.control("GET", f"/ebay/{name}/offers")["offers"]
        assert len(offers) == 45
        for offer in offers:
            price = expected_state(payloads[offer["sku"]], "ebay")
            if price is None:
                assert offer["availableQuantity"] == 0
            else:
                assert offer["availableQuantity"] == 1
                assert offer["pricingSummary"]["price"] == {"value": str(price), "currency": "USD"}
    skus = [
        {o["sku"] for o in sim.control("GET", f"/ebay/{n}/offers")["offers"]}
        for n in ("ebay-1", "ebay-2")
    ]
    assert skus[0] != skus[1]  # each account has its own selection


def test_drift_moves_only_the_drift_fraction(make_sim: SimFactory) -> None:
    sim = make_sim(products=100, drift=0.2, seed=9)
    payloads = served_payloads(sim, sim.asins())
    stale = 0
    for item in sim.control("GET", "/base/base-1/items")["items"]:
        price = expected_state(payloads[item["identifier"]], "base")
        now = (1, int(price)) if price is not None else (0, None)
        was = (item["visible"], item["price"] if item["visible"] else None)
        stale += now != was
    assert 5 <= stale <= 20  # at most the 20 moved products, most of them visibly


def test_written_config_loads_and_its_credentials_work(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "ecsync.toml"
    options = SimOptions(products=30, base_accounts=2, ebay_accounts=2, write_config=path)
    with running_simulator(options) as handle:
        assert handle.config_path == path
        settings = load_settings(path)
        assert [a.name for a in settings.accounts] == ["base-1", "base-2", "ebay-1", "ebay-2"]
        assert [a.platform for a in settings.accounts] == ["base", "base", "ebay", "ebay"]
        assert {a.endpoint for a in settings.accounts} == {handle.url}
        assert settings.amazon.endpoint == handle.url
        assert settings.amazon.token_url == f"{handle.url}/auth/o2/token"
        assert [a.pricing for a in settings.accounts] == ["markup"] * 2 + ["ebay_formula"] * 2
        assert settings.database_url.endswith("conf/ecsync.db")
        with httpx.Client(base_url=handle.url) as http:
            amazon = settings.amazon
            lwa = http.post(
                "/auth/o2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": amazon.refresh_token.get_secret_value(),
                    "client_id": amazon.client_id,
                    "client_secret": amazon.client_secret.get_secret_value(),
                },
            )
            assert lwa.status_code == 200
            for account in settings.accounts:
                secret = account.client_secret.get_secret_value()
                refresh = account.refresh_token.get_secret_value()
                if account.platform == "base":
                    response = http.post(
                        "/1/oauth/token",
                        data={
                            "grant_type": "refresh_token",
                            "client_id": account.client_id,
                            "client_secret": secret,
                            "refresh_token": refresh,
                            "redirect_uri": account.redirect_uri,
                        },
                    )
                else:
                    response = http.post(
                        "/identity/v1/oauth2/token",
                        auth=(account.client_id, secret),
                        data={"grant_type": "refresh_token", "refresh_token": refresh},
                    )
                assert response.status_code == 200, (account.name, response.text)
        text = path.read_text(encoding="utf-8")
        assert text == httpx.get(f"{handle.url}/_sim/config").text


def test_config_matches_the_documented_example_shape(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "sim-config-example.toml"
    path = tmp_path / "ecsync.toml"
    with running_simulator(SimOptions(products=5, write_config=path)) as handle:
        port = handle.url.rsplit(":", 1)[1]
        written = path.read_text(encoding="utf-8").replace(port, "PORT")

    def shape(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    if example.exists():
        assert shape(written) == shape(example.read_text(encoding="utf-8"))


def test_stats_shape_and_reset(sim: SimClient) -> None:
    sim.freeze()
    token = sim.amazon_token()
    asins = sim.asins(3)
    sim.batch(token, [*asins, "B0NOTINCAT"])
    sim.advance(10)
    sim.batch(token, asins[:1])
    base_token = sim.base_token()
    headers = {"Authorization": f"Bearer {base_token}"}
    item = sim.control("GET", "/base/base-1/items")["items"][0]
    sim.http.get("/1/items", headers=headers)
    sim.http.post("/1/items/edit", data={"item_id": item["item_id"], "price": 999}, headers=headers)
    sim.http.post("/1/items/edit", data={"item_id": 1, "price": 999}, headers=headers)
    stats = sim.stats()
    assert stats["spapi"] == {
        "requests": {"getItemOffersBatch": 2},
        "throttled": 0,
        "throttled_by_operation": {},
        "asins_by_operation": {"getItemOffersBatch": 4},
        "asin_fetches": {"total": 4, "distinct": 3, "max_per_asin": 2},
    }
    assert stats["base"] == {"base-1": {"reads": 1, "writes": 1, "limit_errors": 0, "errors": 1}}
    assert stats["ebay"] == {"ebay-1": {"reads": 0, "writes": 0, "errors": 0, "feed_calls": 0}}
    assert stats["auth"] == {"amazon": 1, "base": 1, "ebay": 0}
    sim.control("POST", "/stats/reset")
    reset = sim.stats()
    assert reset["spapi"]["requests"] == {}
    assert reset["spapi"]["asin_fetches"] == {"total": 0, "distinct": 0, "max_per_asin": 0}
    assert reset["base"]["base-1"] == {"reads": 0, "writes": 0, "limit_errors": 0, "errors": 0}


def test_health_accounts_and_limits(make_sim: SimFactory) -> None:
    sim = make_sim(base_accounts=3, ebay_accounts=2, seed=4)
    health = sim.control("GET", "/health")
    assert health["status"] == "ok"
    assert health["base_accounts"] == ["base-1", "base-2", "base-3"]
    assert health["ebay_accounts"] == ["ebay-1", "ebay-2"]
    accounts = sim.control("GET", "/accounts")
    assert [a["name"] for a in accounts["base"]] == ["base-1", "base-2", "base-3"]
    limits = sim.control("GET", "/limits")
    assert limits["base"]["base-2"]["hour_remaining"] == 5000
    clock = sim.control("GET", "/clock")
    assert clock["speed"] == 1.0
    assert sim.http.get("/_sim/base/base-9/items").status_code == 404
