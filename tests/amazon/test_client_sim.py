"""The SP-API client's batch requests, as the simulator (which follows Amazon) receives them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sp_api.asyncio.auth import access_token_client as token_module

from ecsync.amazon.client import OffersClient
from ecsync.config import AmazonSettings
from ecsync.sim.server import SimHandle, SimOptions, running_simulator
from ecsync.sim.state import LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN


@pytest.fixture
def handle() -> Iterator[SimHandle]:
    # python-amazon-sp-api caches access tokens per refresh token for the whole process: a
    # token from an earlier test's simulator would be refused by this one.
    token_module.cache.clear()
    with running_simulator(SimOptions(products=30, base_accounts=0, ebay_accounts=0)) as sim:
        yield sim
    token_module.cache.clear()


def _settings(handle: SimHandle) -> AmazonSettings:
    return AmazonSettings(
        endpoint=handle.url,
        token_url=f"{handle.url}/auth/o2/token",
        client_id=LWA_CLIENT_ID,
        client_secret=SecretStr(LWA_CLIENT_SECRET),
        refresh_token=SecretStr(LWA_REFRESH_TOKEN),
    )


def _spapi_stats(handle: SimHandle) -> dict[str, Any]:
    return handle.state.stats.snapshot()["spapi"]  # type: ignore[no-any-return]


async def test_a_repeated_asin_is_asked_once_with_top_level_fields(handle: SimHandle) -> None:
    asins = [p.asin for p in handle.state.market.products[:3]]
    client = OffersClient(_settings(handle))
    try:
        answer = await client.offers_batch([asins[0], asins[1], asins[0], asins[2]])
    finally:
        await client.aclose()
    # Every item answered 200: the simulator fails a duplicate batch as a whole and an item
    # whose fields sit in queryParams on its own.
    assert [item.asin for item in answer.items] == [asins[0], asins[1], asins[0], asins[2]]
    assert all(item.error is None and item.payload is not None for item in answer.items)
    assert answer.items[0] == answer.items[2]
    spapi = _spapi_stats(handle)
    assert spapi["requests"] == {"getItemOffersBatch": 1}
    assert spapi["asin_fetches"] == {"total": 3, "distinct": 3, "max_per_asin": 1}
