"""Fixtures for the simulator tests: running simulators and a small HTTP client for them.

Every test talks to a real simulator over a loopback socket (httpx), never to the app
object directly, so what is tested is what ecsync will see.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecsync.sim.server import SimHandle, SimOptions, running_simulator
from ecsync.sim.state import LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN

JP = "A1VC38T7YXB528"
SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "amazon"


class SimClient:
    """httpx against one simulator, with shortcuts for tokens and the control API."""

    def __init__(self, handle: SimHandle) -> None:
        self.handle = handle
        self.url = handle.url
        self.http = httpx.Client(base_url=handle.url, timeout=10.0)
        # BASE rotates refresh tokens: remember the latest one per account.
        self.base_refresh: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    # --- control ----------------------------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/_sim{path}", json=body)
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "/stats")  # type: ignore[no-any-return]

    def freeze(self) -> float:
        return float(self.control("PUT", "/clock", {"frozen": True})["now"])

    def advance(self, seconds: float) -> float:
        return float(self.control("POST", "/clock/advance", {"seconds": seconds})["now"])

    def faults(self, config: dict[str, Any]) -> dict[str, Any]:
        return self.control("PUT", "/faults", config)  # type: ignore[no-any-return]

    def asins(self, count: int | None = None) -> list[str]:
        products = self.handle.state.market.products
        return [p.asin for p in products[:count]]

    # --- tokens -----------------------------------------------------------------------

    def amazon_token(self, suffix: str = "") -> str:
        response = self.http.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": LWA_REFRESH_TOKEN + suffix,
                "client_id": LWA_CLIENT_ID + suffix,
                "client_secret": LWA_CLIENT_SECRET + suffix,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def base_tokens(self, account: str = "base-1", refresh: str | None = None) -> dict[str, Any]:
        """Refresh (with the latest refresh token unless one is given) and remember the new."""
        index = account.split("-")[1]
        refresh = refresh or self.base_refresh.get(account, f"sim-base-refresh-{index}")
        response = self.http.post(
            "/1/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": f"sim-base-client-{index}",
                "client_secret": f"sim-base-secret-{index}",
                "refresh_token": refresh,
                "redirect_uri": "http://127.0.0.1/callback",
            },
        )
        assert response.status_code == 200, response.text
        self.base_refresh[account] = response.json()["refresh_token"]
        return response.json()  # type: ignore[no-any-return]

    def base_token(self, account: str = "base-1") -> str:
        return str(self.base_tokens(account)["access_token"])

    def ebay_token(self, account: str = "ebay-1") -> str:
        index = account.split("-")[1]
        basic = base64.b64encode(f"sim-ebay-client-{index}:sim-ebay-secret-{index}".encode())
        response = self.http.post(
            "/identity/v1/oauth2/token",
            headers={"Authorization": f"Basic {basic.decode()}"},
            data={
                "grant_type": "refresh_token",
                "refresh_token": f"sim-ebay-refresh-{index}",
                "scope": "https://api.ebay.com/oauth/api_scope/sell.inventory",
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    # --- SP-API -----------------------------------------------------------------------

    def batch(self, token: str, asins: list[str], **entry: Any) -> httpx.Response:
        requests = [
            {
                "uri": f"/products/pricing/v0/items/{asin}/offers",
                "method": "GET",
                "MarketplaceId": JP,
                "ItemCondition": "New",
                "CustomerType": "Consumer",
                **entry,
            }
            for asin in asins
        ]
        return self.http.post(
            "/batches/products/pricing/v0/itemOffers",
            content=json.dumps({"requests": requests}),
            headers={"x-amz-access-token": token, "content-type": "application/json"},
        )

    def catalog(self, token: str, asin: str, **params: str) -> httpx.Response:
        return self.http.get(
            f"/catalog/2022-04-01/items/{asin}",
            params={"marketplaceIds": JP, **params},
            headers={"x-amz-access-token": token},
        )


SimFactory = Callable[..., SimClient]


@pytest.fixture
def make_sim() -> Iterator[SimFactory]:
    """Start simulators with the given options; all stop when the test ends."""
    with ExitStack() as stack:

        def start(**options: Any) -> SimClient:
            options.setdefault("products", 60)
            handle = stack.enter_context(running_simulator(SimOptions(**options)))
            client = SimClient(handle)
            stack.callback(client.close)
            return client

        yield start


@pytest.fixture
def sim(make_sim: SimFactory) -> SimClient:
    """A small simulator of its own for one test (60 products, one account each)."""
    return make_sim()


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimClient]:
    """One simulator for a module of read-only tests (300 products, 2 BASE, 2 eBay)."""
    options = SimOptions(products=300, base_accounts=2, ebay_accounts=2)
    with running_simulator(options) as handle:
        client = SimClient(handle)
        yield client
        client.close()
