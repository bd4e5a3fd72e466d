"""python-amazon-sp-api (async flavour) works against the simulator, pointed at it the way
API_NOTES.md describes: ``client.endpoint`` override plus an ``AccessTokenClient`` subclass
whose scheme/host name the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sp_api.asyncio.api import CatalogItems, Products, ProductsV20220501
from sp_api.asyncio.auth import AccessTokenClient
from sp_api.asyncio.auth import access_token_client as token_module
from sp_api.base import Marketplaces
from sp_api.base.exceptions import SellingApiForbiddenException, SellingApiRequestThrottledException

from ecsync.sim.state import LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN
from tests.sim.conftest import JP, SimClient

CREDENTIALS = {
    "refresh_token": LWA_REFRESH_TOKEN,
    "lwa_app_id": LWA_CLIENT_ID,
    "lwa_client_secret": LWA_CLIENT_SECRET,
}


@pytest.fixture(autouse=True)
def no_cached_tokens() -> Iterator[None]:
    """sp_api caches access tokens module-wide; a token of another simulator is useless."""
    token_module.cache.clear()
    yield
    token_module.cache.clear()


def token_client_for(sim: SimClient) -> type[AccessTokenClient]:
    class SimTokenClient(AccessTokenClient):  # type: ignore[misc]
        scheme = "http://"
        host = sim.url.removeprefix("http://")

    return SimTokenClient


def products(sim: SimClient) -> Products:
    client = Products(
        marketplace=Marketplaces.JP,
        credentials=CREDENTIALS,
        auth_token_client_class=token_client_for(sim),
    )
    client.endpoint = sim.url
    return client


async def test_get_item_offers_batch_through_sp_api(sim: SimClient) -> None:
    sim.freeze()
    asins = sim.asins(20)
    requests = [
        {
            "uri": f"/products/pricing/v0/items/{asin}/offers",
            "method": "GET",
            "MarketplaceId": JP,
            "ItemCondition": "New",
            "CustomerType": "Consumer",
        }
        for asin in asins
    ]
    client = products(sim)
    try:
        response = await client.get_item_offers_batch(requests_=requests)
        assert response.rate_limit == "0.1"
        served = [entry["request"]["Asin"] for entry in response.payload["responses"]]
        assert served == asins
        assert all(e["status"]["statusCode"] == 200 for e in response.payload["responses"])
        first = response.payload["responses"][0]["body"]["payload"]
        assert first["ASIN"] == asins[0]
        assert first["Identifier"]["MarketplaceId"] == JP
        # The next call within the same simulated instant exceeds the 0.1/s, burst 1 plan.
        with pytest.raises(SellingApiRequestThrottledException):
            await client.get_item_offers_batch(requests_=requests)
        sim.advance(2)
        single = await client.get_item_offers(asins[1], item_condition="New")
        assert single.payload["ASIN"] == asins[1]
        assert single.rate_limit == "0.5"
    finally:
        await client.aclose()
    stats = sim.stats()["spapi"]
    assert stats["requests"] == {"getItemOffersBatch": 2, "getItemOffers": 1}
    assert stats["throttled"] == 1
    assert stats["asin_fetches"] == {"total": 21, "distinct": 20, "max_per_asin": 2}


async def test_competitive_pricing_and_catalog_through_sp_api(sim: SimClient) -> None:
    sim.freeze()
    asins = sim.asins(5)
    client = products(sim)
    catalog = CatalogItems(
        marketplace=Marketplaces.JP,
        credentials=CREDENTIALS,
        auth_token_client_class=token_client_for(sim),
        version="2022-04-01",
    )
    catalog.endpoint = sim.url
    try:
        pricing = await client.get_competitive_pricing_for_asins(asins)
        assert [entry["ASIN"] for entry in pricing.payload] == asins
        item = await catalog.get_catalog_item(asins[0], includedData="summaries,salesRanks")
        assert item.payload["asin"] == asins[0]
        assert item.payload["salesRanks"][0]["marketplaceId"] == JP
    finally:
        await client.aclose()
        await catalog.aclose()


async def test_revoked_token_is_a_403_until_the_cache_is_cleared(sim: SimClient) -> None:
    sim.freeze()
    client = products(sim)
    try:
        await client.get_item_offers(sim.asins(1)[0], item_condition="New")
        sim.faults({"revoke_tokens": True})
        sim.advance(2)
        with pytest.raises(SellingApiForbiddenException):
            await client.get_item_offers(sim.asins(1)[0], item_condition="New")
        token_module.cache.clear()  # what a long-running client must do on a 403
        response = await client.get_item_offers(sim.asins(1)[0], item_condition="New")
        assert response.payload["ASIN"] == sim.asins(1)[0]
    finally:
        await client.aclose()


async def test_competitive_summary_through_sp_api(sim: SimClient) -> None:
    """getCompetitiveSummary through the library's Product Pricing 2022-05-01 client, which
    has its own bucket: a spent getItemOffersBatch does not stop it."""
    sim.freeze()
    asins = sim.asins(3)
    offers = products(sim)
    summary = ProductsV20220501(
        marketplace=Marketplaces.JP,
        credentials=CREDENTIALS,
        auth_token_client_class=token_client_for(sim),
    )
    summary.endpoint = sim.url
    requests = [
        {
            "asin": asin,
            "marketplaceId": JP,
            "includedData": ["featuredBuyingOptions", "referencePrices", "lowestPricedOffers"],
            "lowestPricedOffersInputs": [{"itemCondition": "New", "offerType": "Consumer"}],
            "method": "GET",
            "uri": "/products/pricing/2022-05-01/items/competitiveSummary",
        }
        for asin in [*asins, "B0NOTINCAT"]
    ]
    try:
        batch = [
            {
                "uri": f"/products/pricing/v0/items/{asins[0]}/offers",
                "method": "GET",
                "MarketplaceId": JP,
                "ItemCondition": "New",
            }
        ]
        await offers.get_item_offers_batch(requests_=batch)
        with pytest.raises(SellingApiRequestThrottledException):
            await offers.get_item_offers_batch(requests_=batch)
        response = await summary.get_competitive_summary_batch(requests_=requests)
        assert response.rate_limit == "0.033"
        answers = response.payload["responses"]
        assert [a["body"]["asin"] for a in answers] == [*asins, "B0NOTINCAT"]
        assert [a["status"]["statusCode"] for a in answers] == [200, 200, 200, 400]
        with pytest.raises(SellingApiRequestThrottledException):
            await summary.get_competitive_summary_batch(requests_=requests)
    finally:
        await offers.aclose()
        await summary.aclose()
    stats = sim.stats()["spapi"]
    assert stats["requests"] == {"getItemOffersBatch": 2, "getCompetitiveSummary": 2}
    assert stats["throttled_by_operation"] == {"getItemOffersBatch": 1, "getCompetitiveSummary": 1}
    assert stats["asins_by_operation"] == {"getItemOffersBatch": 1, "getCompetitiveSummary": 3}
