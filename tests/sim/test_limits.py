"""Rate limits, windows and token lifetimes, driven by the simulated clock (never by sleeping).

The clock is frozen first, so simulated time moves only when a test advances it and
every count below is exact whatever the machine's speed.
"""

from __future__ import annotations

import math

import httpx
import pytest

from tests.sim.conftest import JP, SimClient, SimFactory

# (operation, rate, burst) as documented in Amazon's models.
PLANS = [("getItemOffersBatch", 0.1, 1), ("getItemOffers", 0.5, 1), ("getCatalogItem", 2.0, 2)]


def call(sim: SimClient, token: str, operation: str) -> httpx.Response:
    asin = sim.asins(1)[0]
    if operation == "getItemOffersBatch":
        return sim.batch(token, [asin])
    if operation == "getItemOffers":
        return sim.http.get(
            f"/products/pricing/v0/items/{asin}/offers",
            params={"MarketplaceId": JP, "ItemCondition": "New"},
            headers={"x-amz-access-token": token},
        )
    return sim.catalog(token, asin)


@pytest.mark.parametrize("speed", [1.0, 25.0])
@pytest.mark.parametrize(("operation", "rate", "burst"), PLANS)
def test_burst_then_exactly_the_documented_rate(
    make_sim: SimFactory, speed: float, operation: str, rate: float, burst: int
) -> None:
    sim = make_sim(speed=speed)
    sim.freeze()
    token = sim.amazon_token()
    first = call(sim, token, operation)
    assert first.status_code == 200
    # The header reports the documented rate scaled to wall-clock seconds.
    assert float(first.headers["x-amzn-RateLimit-Limit"]) == pytest.approx(rate * speed)
    for _ in range(burst - 1):
        assert call(sim, token, operation).status_code == 200
    assert call(sim, token, operation).status_code == 429
    # Over the next stretch of simulated time exactly rate x time requests pass: one per
    # refill interval, and never one early. (At speed S the interval is 1/(rate x S) s of
    # wall time: simulated seconds are S times shorter.)
    interval = 1 / rate
    for _ in range(4):
        sim.advance(interval * 0.99)
        assert call(sim, token, operation).status_code == 429
        sim.advance(interval * 0.01)
        assert call(sim, token, operation).status_code == 200
        assert call(sim, token, operation).status_code == 429
    # A long idle spell refills only up to the burst.
    sim.advance(interval * 50)
    for _ in range(burst):
        assert call(sim, token, operation).status_code == 200
    assert call(sim, token, operation).status_code == 429
    stats = sim.stats()["spapi"]
    assert stats["throttled"] == 1 + 4 * 2 + 1
    assert stats["requests"][operation] == burst + 1 + 4 * 3 + burst + 1


def test_buckets_are_per_client_and_per_operation(sim: SimClient) -> None:
    sim.freeze()
    first, second = sim.amazon_token(), sim.amazon_token("-2")
    assert call(sim, first, "getItemOffersBatch").status_code == 200
    assert call(sim, first, "getItemOffersBatch").status_code == 429
    assert call(sim, second, "getItemOffersBatch").status_code == 200  # another application
    assert call(sim, first, "getItemOffers").status_code == 200  # another operation
    # Two tokens of the same application share its bucket.
    assert call(sim, sim.amazon_token(), "getItemOffersBatch").status_code == 429


def test_rate_header_on_400_and_404_but_not_on_403_or_429(make_sim: SimFactory) -> None:
    sim = make_sim(speed=3.0)
    sim.freeze()
    token = sim.amazon_token()
    bad = sim.batch(token, sim.asins(1), MarketplaceId="ATVPDKIKX0DER")
    assert bad.status_code == 400
    assert bad.headers["x-amzn-RateLimit-Limit"] == "0.3"
    missing = sim.catalog(token, "B0NOTINCAT")
    assert missing.status_code == 404
    assert missing.headers["x-amzn-RateLimit-Limit"] == "6"
    assert "x-amzn-RateLimit-Limit" not in sim.batch(token, sim.asins(1)).headers  # 429
    denied = sim.batch("nope", sim.asins(1))
    assert denied.status_code == 403
    assert "x-amzn-RateLimit-Limit" not in denied.headers
    assert denied.headers["x-amzn-RequestId"]


def test_amazon_tokens_expire_after_an_hour_of_simulated_time(sim: SimClient) -> None:
    sim.freeze()
    token = sim.amazon_token()
    sim.advance(3599)
    assert call(sim, token, "getCatalogItem").status_code == 200
    sim.advance(1)
    expired = call(sim, token, "getCatalogItem")
    assert expired.status_code == 403
    assert expired.json()["errors"][0]["code"] == "Unauthorized"
    assert call(sim, sim.amazon_token(), "getCatalogItem").status_code == 200


def test_lwa_errors(sim: SimClient) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|sim-refresh-token",
        "client_id": "amzn1.application-oa2-client.sim",
        "client_secret": "sim-amazon-secret",
    }
    ok_json = sim.http.post("/auth/o2/token", json=form)
    assert ok_json.status_code == 200
    assert ok_json.json()["access_token"].startswith("Atza|")
    assert ok_json.json()["token_type"] == "bearer"
    assert ok_json.json()["expires_in"] == 3600
    bad_client = sim.http.post("/auth/o2/token", data=form | {"client_secret": "wrong"})
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    bad_grant = sim.http.post("/auth/o2/token", data=form | {"refresh_token": "Atzr|stolen"})
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "invalid_grant"
    # A refresh token belongs to one application.
    other = sim.http.post(
        "/auth/o2/token", data=form | {"refresh_token": "Atzr|sim-refresh-token-2"}
    )
    assert other.json()["error"] == "invalid_grant"
    unsupported = sim.http.post("/auth/o2/token", data=form | {"grant_type": "password"})
    assert unsupported.json()["error"] == "unsupported_grant_type"


# --- BASE ---------------------------------------------------------------------------------


def base_get(sim: SimClient, token: str) -> httpx.Response:
    return sim.http.get(
        "/1/items", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
    )


def test_base_hourly_window_resets_at_minute_zero(sim: SimClient) -> None:
    now = sim.freeze()
    sim.control("PATCH", "/base/base-1", {"hourly_limit": 3})
    # Go to hh:59:50 of simulated time.
    next_hour = math.floor(now / 3600 + 1) * 3600
    sim.advance(next_hour - 10 - now)
    token = sim.base_token()
    for _ in range(3):
        assert base_get(sim, token).status_code == 200
    refused = base_get(sim, token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "hour_api_limit"
    assert refused.json()["error_description"]
    sim.advance(9.9)  # hh:59:59.9: still the same window
    assert base_get(sim, token).json()["error"] == "hour_api_limit"
    sim.advance(0.1)  # (hh+1):00:00: a new window, whatever was used before
    for _ in range(3):
        assert base_get(sim, token).status_code == 200
    assert base_get(sim, token).json()["error"] == "hour_api_limit"
    counters = sim.stats()["base"]["base-1"]
    assert counters == {"reads": 6, "writes": 0, "limit_errors": 3, "errors": 0}


def test_base_hourly_limit_defaults_to_5000(sim: SimClient) -> None:
    assert sim.control("GET", "/base/base-1") == {
        "name": "base-1",
        "hourly_limit": 5000,
        "daily_limit": 100000,
        "suspended": False,
        "deny_authorization": False,
    }


def test_base_daily_window_resets_at_midnight_jst(sim: SimClient) -> None:
    now = sim.freeze()
    sim.control("PATCH", "/base/base-1", {"daily_limit": 2})
    jst = 9 * 3600
    midnight = math.floor((now + jst) / 86400 + 1) * 86400 - jst
    sim.advance(midnight - 7200 - now)  # 22:00 JST
    token = sim.base_token()
    assert base_get(sim, token).status_code == 200
    sim.advance(3600)  # 23:00 JST: a new hour, the same day (and a new access token)
    token = sim.base_token()
    assert base_get(sim, token).status_code == 200
    assert base_get(sim, token).json()["error"] == "day_api_limit"
    sim.advance(3600)  # 00:00 JST
    assert base_get(sim, sim.base_token()).status_code == 200


def test_base_tokens_expire_and_refresh_tokens_rotate(sim: SimClient) -> None:
    sim.freeze()
    first = sim.base_tokens()
    assert first["expires_in"] == 3600
    assert base_get(sim, first["access_token"]).status_code == 200
    sim.advance(3600)
    expired = base_get(sim, first["access_token"])
    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_request"
    # The config's refresh token was used once: it no longer works, the new one does.
    second = sim.base_tokens(refresh=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    stale = sim.http.post(
        "/1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "sim-base-client-1",
            "client_secret": "sim-base-secret-1",
            "refresh_token": first["refresh_token"],
            "redirect_uri": "http://127.0.0.1/callback",
        },
    )
    assert stale.status_code == 400
    assert stale.json() == {
        "error": "invalid_request",
        "error_description": "不正なリフレッシュトークンです。",
    }
    original = sim.http.post(
        "/1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "sim-base-client-1",
            "client_secret": "sim-base-secret-1",
            "refresh_token": "sim-base-refresh-1",
            "redirect_uri": "http://127.0.0.1/callback",
        },
    )
    assert original.json()["error"] == "invalid_request"
    assert base_get(sim, second["access_token"]).status_code == 200
    # A refresh token lives 30 days.
    sim.advance(30 * 86400)
    late = sim.http.post(
        "/1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "sim-base-client-1",
            "client_secret": "sim-base-secret-1",
            "refresh_token": second["refresh_token"],
            "redirect_uri": "http://127.0.0.1/callback",
        },
    )
    assert late.json() == {
        "error": "invalid_request",
        "error_description": "リフレッシュトークンの有効期限が切れています。",
    }


def test_base_authorization_code_grant(sim: SimClient) -> None:
    redirect = sim.http.get(
        "/1/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": "sim-base-client-1",
            "redirect_uri": "http://127.0.0.1/callback",
            "scope": "read_items write_items",
            "state": "xyz",
        },
    )
    assert redirect.status_code == 302
    location = httpx.URL(redirect.headers["location"])
    assert location.params["state"] == "xyz"
    form = {
        "grant_type": "authorization_code",
        "client_id": "sim-base-client-1",
        "client_secret": "sim-base-secret-1",
        "code": location.params["code"],
        "redirect_uri": "http://127.0.0.1/callback",
    }
    granted = sim.http.post("/1/oauth/token", data=form)
    assert granted.status_code == 200
    assert base_get(sim, granted.json()["access_token"]).status_code == 200
    again = sim.http.post("/1/oauth/token", data=form)  # a code works once
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "不正な認可コードです。",
    }
    bad_client = sim.http.post("/1/oauth/token", data=form | {"client_secret": "x"})
    assert bad_client.status_code == 400
    assert bad_client.json()["error"] == "unauthorized_client"


# --- eBay ---------------------------------------------------------------------------------


def bulk(sim: SimClient, token: str, requests: list[dict[str, object]]) -> httpx.Response:
    return sim.http.post(
        "/sell/inventory/v1/bulk_update_price_quantity",
        json={"requests": requests},
        headers={"Authorization": f"Bearer {token}"},
    )


def price_entry(offer: dict[str, object], value: str, quantity: int = 1) -> dict[str, object]:
    return {
        "sku": offer["sku"],
        "shipToLocationAvailability": {"quantity": quantity},
        "offers": [
            {
                "offerId": offer["offerId"],
                "availableQuantity": quantity,
                "price": {"value": value, "currency": "USD"},
            }
        ],
    }


def test_ebay_bulk_limit_is_25_entries(sim: SimClient) -> None:
    token = sim.ebay_token()
    offers = sim.control("GET", "/ebay/ebay-1/offers")["offers"]
    assert len(offers) >= 12
    entries = [price_entry(offers[i % len(offers)], "10.00") for i in range(26)]
    refused = bulk(sim, token, entries)
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert set(error) >= {"errorId", "domain", "category", "message"}
    accepted = bulk(sim, token, entries[:25])
    assert accepted.status_code == 200
    assert [r["statusCode"] for r in accepted.json()["responses"]] == [200] * 25


def test_ebay_207_when_some_entries_fail(sim: SimClient) -> None:
    token = sim.ebay_token()
    offers = sim.control("GET", "/ebay/ebay-1/offers")["offers"]
    good, other = offers[0], offers[1]
    entries = [
        price_entry(good, "12.34"),
        price_entry(other, "12.345"),  # three decimals
        price_entry({"sku": "B0UNKNOWN0", "offerId": "1"}, "5.00"),
        {"sku": good["sku"], "offers": [{"offerId": other["offerId"], "availableQuantity": 1}]},
    ]
    response = bulk(sim, token, entries)
    assert response.status_code == 207
    results = response.json()["responses"]
    assert [r["statusCode"] for r in results] == [200, 400, 404, 404]
    assert results[1]["errors"][0]["errorId"] == 25003
    assert results[3]["errors"][0]["errorId"] == 25713
    truth = {o["offerId"]: o for o in sim.control("GET", "/ebay/ebay-1/offers")["offers"]}
    assert truth[good["offerId"]]["pricingSummary"]["price"]["value"] == "12.34"
    assert truth[other["offerId"]]["pricingSummary"] == other["pricingSummary"]
    counters = sim.stats()["ebay"]["ebay-1"]
    assert counters["writes"] == 1
    assert counters["errors"] == 3


def test_ebay_250_revisions_per_listing_per_day(sim: SimClient) -> None:
    now = sim.freeze()
    sim.advance(math.floor(now / 86400 + 1) * 86400 + 60 - now)  # 00:01 UTC
    token = sim.ebay_token()
    offer, other = sim.control("GET", "/ebay/ebay-1/offers")["offers"][:2]
    for call_index in range(10):  # 10 calls x 25 entries on one listing = 250 revisions
        entries = [price_entry(offer, f"{10 + call_index}.{i:02d}") for i in range(25)]
        assert bulk(sim, token, entries).status_code == 200
    refused = bulk(sim, token, [price_entry(offer, "99.00"), price_entry(other, "5.00")])
    assert refused.status_code == 207
    first, second = refused.json()["responses"]
    assert first["statusCode"] == 400
    assert "250" in first["errors"][0]["message"]
    assert second["statusCode"] == 200  # another listing is not affected
    truth = {o["offerId"]: o for o in sim.control("GET", "/ebay/ebay-1/offers")["offers"]}
    assert truth[offer["offerId"]]["pricingSummary"]["price"]["value"] == "19.24"
    assert truth[offer["offerId"]]["revisionsToday"] == 250
    sim.advance(86400)  # the next calendar day
    assert bulk(sim, sim.ebay_token(), [price_entry(offer, "99.00")]).status_code == 200


def test_ebay_daily_call_quota(sim: SimClient) -> None:
    sim.freeze()
    sim.control("PATCH", "/ebay/ebay-1", {"daily_call_limit": 2})
    token = sim.ebay_token()
    sku = sim.control("GET", "/ebay/ebay-1/offers")["offers"][0]["sku"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        ok = sim.http.get("/sell/inventory/v1/offer", params={"sku": sku}, headers=headers)
        assert ok.status_code == 200
    refused = sim.http.get("/sell/inventory/v1/offer", params={"sku": sku}, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["errorId"] == 2001
    sim.advance(86400)
    again = sim.http.get("/sell/inventory/v1/offer", params={"sku": sku}, headers=headers)
    assert again.status_code == 401  # 7,200 s tokens: a day later it has long expired
    headers = {"Authorization": f"Bearer {sim.ebay_token()}"}
    assert sim.http.get("/sell/inventory/v1/offer", params={"sku": sku}, headers=headers).is_success


def test_ebay_tokens_expire_after_two_hours(sim: SimClient) -> None:
    sim.freeze()
    token = sim.ebay_token()
    headers = {"Authorization": f"Bearer {token}"}
    path = "/sell/inventory/v1/inventory_item"
    sim.advance(7199)
    assert sim.http.get(path, headers=headers).status_code == 200
    sim.advance(1)
    expired = sim.http.get(path, headers=headers)
    assert expired.status_code == 401
    assert expired.json()["errors"][0]["errorId"] == 1001
