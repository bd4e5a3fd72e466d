"""Every injected fault behaves as described, for each API, set at start or live."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from ecsync.sim.faults import FaultError, parse_fault_spec
from ecsync.sim.server import SimOptions, running_simulator
from tests.sim.conftest import SimClient, SimFactory


def spapi(sim: SimClient) -> httpx.Response:
    sim.advance(10)  # refill the batch bucket: only the fault may refuse
    return sim.batch(sim.amazon_token(), sim.asins(3))


def base(sim: SimClient) -> httpx.Response:
    token = sim.base_token()
    return sim.http.get("/1/items", headers={"Authorization": f"Bearer {token}"})


def ebay(sim: SimClient) -> httpx.Response:
    token = sim.ebay_token()
    return sim.http.get(
        "/sell/inventory/v1/inventory_item", headers={"Authorization": f"Bearer {token}"}
    )


CALLS = {"spapi": spapi, "base": base, "ebay": ebay}


@pytest.fixture
def frozen(sim: SimClient) -> SimClient:
    sim.freeze()
    return sim


def test_fault_spec_parsing() -> None:
    assert parse_fault_spec("spapi.throttle=0.05, base.error500=0.02,revoke_tokens") == {
        "spapi": {"throttle": 0.05},
        "base": {"error500": 0.02},
        "revoke_tokens": True,
    }
    with pytest.raises(FaultError):
        parse_fault_spec("spapi.throttle")
    with pytest.raises(FaultError):
        parse_fault_spec("spapi.throttle=often")


def test_faults_set_at_start_and_shown(make_sim: SimFactory) -> None:
    sim = make_sim(faults="spapi.throttle=1,ebay.latency=0.01")
    shown = sim.control("GET", "/faults")
    assert shown["spapi"]["throttle"] == 1.0
    assert shown["ebay"]["latency"] == 0.01
    assert shown["base"]["error500"] == 0.0
    sim.freeze()
    assert spapi(sim).status_code == 429


def test_put_replaces_patch_merges_and_bad_input_is_refused(frozen: SimClient) -> None:
    frozen.faults({"spapi": {"throttle": 0.5}, "base": {"error500": 0.1}})
    merged = frozen.control("PATCH", "/faults", {"base": {"hang": 0.2}})
    assert (merged["spapi"]["throttle"], merged["base"]["error500"]) == (0.5, 0.1)
    assert merged["base"]["hang"] == 0.2
    replaced = frozen.faults({"ebay": {"malformed": 0.3}})
    assert replaced["spapi"]["throttle"] == 0.0
    assert replaced["ebay"]["malformed"] == 0.3
    bad_configs: list[dict[str, Any]] = [
        {"spapi": {"throttle": 2}},
        {"amazon": {}},
        {"base": {"explode": 0.1}},
    ]
    for bad in bad_configs:
        response = frozen.http.put("/_sim/faults", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]


def test_throttle(frozen: SimClient) -> None:
    frozen.faults({api: {"throttle": 1.0} for api in CALLS})
    assert spapi(frozen).json()["errors"][0]["code"] == "QuotaExceeded"
    assert spapi(frozen).status_code == 429
    refused = base(frozen)
    assert refused.status_code == 400
    assert refused.json()["error"] == "hour_api_limit"
    limited = ebay(frozen)
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["errorId"] == 2001
    stats = frozen.stats()
    assert stats["spapi"]["throttled"] == 2
    assert stats["base"]["base-1"]["limit_errors"] == 1
    assert stats["ebay"]["ebay-1"]["errors"] == 1


def test_error500(frozen: SimClient) -> None:
    frozen.faults({api: {"error500": 1.0} for api in CALLS})
    amazon = spapi(frozen)
    assert amazon.status_code == 500
    assert amazon.json()["errors"][0]["code"] == "InternalFailure"
    assert base(frozen).status_code == 500
    failed = ebay(frozen)
    assert failed.status_code == 500
    assert failed.json()["errors"][0]["errorId"] == 25001
    assert frozen.stats()["base"]["base-1"]["errors"] == 1


@pytest.mark.parametrize("api", list(CALLS))
def test_malformed(frozen: SimClient, api: str) -> None:
    frozen.faults({api: {"malformed": 1.0}})
    for _ in range(4):  # both variants: a truncated body and an HTML page
        response = CALLS[api](frozen)
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


def test_item_error_fails_one_entry_of_a_batch(frozen: SimClient) -> None:
    frozen.faults({"spapi": {"item_error": 1.0}, "ebay": {"item_error": 1.0}})
    body = spapi(frozen).json()
    assert sorted(e["status"]["statusCode"] for e in body["responses"]) == [200, 200, 500]
    token = frozen.ebay_token()
    offers = frozen.control("GET", "/ebay/ebay-1/offers")["offers"][:3]
    entries = [
        {
            "sku": o["sku"],
            "offers": [{"offerId": o["offerId"], "price": {"value": "9.99", "currency": "USD"}}],
        }
        for o in offers
    ]
    bulk = frozen.http.post(
        "/sell/inventory/v1/bulk_update_price_quantity",
        json={"requests": entries},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bulk.status_code == 207
    assert sorted(r["statusCode"] for r in bulk.json()["responses"]) == [200, 200, 500]


@pytest.mark.parametrize("api", list(CALLS))
def test_latency(frozen: SimClient, api: str) -> None:
    call = CALLS[api]
    call(frozen)  # warm up the connection and tokens
    frozen.faults({api: {"latency": 0.03}})
    started = time.perf_counter()
    for _ in range(8):
        assert call(frozen).status_code == 200
    elapsed = time.perf_counter() - started
    # Exponential delays with a 30 ms mean: 8 calls wait ~240 ms (seeded, so reproducible).
    assert elapsed > 0.08


@pytest.mark.parametrize("api", list(CALLS))
def test_hang_never_answers_and_does_not_block_shutdown(make_sim: SimFactory, api: str) -> None:
    sim = make_sim()
    sim.freeze()
    call = CALLS[api]
    tokens = {"spapi": sim.amazon_token(), "base": sim.base_token(), "ebay": sim.ebay_token()}
    sim.faults({api: {"hang": 1.0}})
    requests: dict[str, Any] = {
        "spapi": ("POST", "/batches/products/pricing/v0/itemOffers", "x-amz-access-token"),
        "base": ("GET", "/1/items", "Authorization"),
        "ebay": ("GET", "/sell/inventory/v1/inventory_item", "Authorization"),
    }
    method, path, header = requests[api]
    value = tokens[api] if header != "Authorization" else f"Bearer {tokens[api]}"
    with pytest.raises(httpx.ReadTimeout):
        sim.http.request(method, path, headers={header: value}, timeout=0.3)
    assert sim.control("GET", "/faults")["hanging"] == 1
    sim.faults({})
    assert call(sim).status_code == 200  # the server still serves everyone else


def test_stopping_with_hung_requests_is_fast() -> None:
    with running_simulator(SimOptions(products=20, faults="base.hang=1")) as handle:
        client = SimClient(handle)
        token = client.base_token()
        for _ in range(3):
            with pytest.raises(httpx.ReadTimeout):
                client.http.get(
                    "/1/items", headers={"Authorization": f"Bearer {token}"}, timeout=0.2
                )
        client.close()
        started = time.perf_counter()
    assert time.perf_counter() - started < 8.0  # not the 15 s join timeout; loose for a busy CPU


def test_revoke_tokens(frozen: SimClient) -> None:
    amazon, base_token, ebay_token = (
        frozen.amazon_token(),
        frozen.base_token(),
        frozen.ebay_token(),
    )
    shown = frozen.faults({"revoke_tokens": True})
    assert shown["revocations"] == 1
    assert frozen.batch(amazon, frozen.asins(1)).status_code == 403
    stale_base = frozen.http.get("/1/items", headers={"Authorization": f"Bearer {base_token}"})
    assert stale_base.json()["error"] == "invalid_request"
    stale_ebay = frozen.http.get(
        "/sell/inventory/v1/inventory_item", headers={"Authorization": f"Bearer {ebay_token}"}
    )
    assert stale_ebay.status_code == 401
    # Refresh tokens survive: fresh access tokens work at once.
    for call in CALLS.values():
        assert call(frozen).status_code == 200


def test_fault_draws_are_seeded(make_sim: SimFactory) -> None:
    def pattern(seed: int) -> list[int]:
        sim = make_sim(seed=seed, faults="base.throttle=0.4")
        token = sim.base_token()
        headers = {"Authorization": f"Bearer {token}"}
        return [sim.http.get("/1/items", headers=headers).status_code for _ in range(30)]

    first, again, other = pattern(5), pattern(5), pattern(6)
    assert first == again
    assert 200 in first and 400 in first
    assert first != other


def test_no_rate_header_leaves_the_header_off_that_share_of_answers(frozen: SimClient) -> None:
    assert spapi(frozen).headers["x-amzn-RateLimit-Limit"] == "0.1"
    frozen.faults({"spapi": {"no_rate_header": 1.0}})
    answer = spapi(frozen)
    assert answer.status_code == 200
    assert "x-amzn-RateLimit-Limit" not in answer.headers
    assert answer.headers["x-amzn-RequestId"]
    frozen.faults({"spapi": {"no_rate_header": 0.5}})
    with_header = sum("x-amzn-RateLimit-Limit" in spapi(frozen).headers for _ in range(40))
    assert 5 <= with_header <= 35  # seeded draws: some answers with it, some without
    assert parse_fault_spec("spapi.no_rate_header=0.3") == {"spapi": {"no_rate_header": 0.3}}
