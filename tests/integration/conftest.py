"""A running simulator and a shop configured against it, for integration and end-to-end tests."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecsync.sim.server import SimOptions, running_simulator
from tests.conftest import CliResult

FAST_AMAZON = """
[amazon]
connect_timeout_s = 2
read_timeout_s = 1.5
total_timeout_s = 3
retry_base_s = 0.02
max_retries = 2
"""


@dataclass
class Shop:
    url: str
    config: Path
    dir: Path
    http: httpx.Client

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.sim("GET", "/_sim/stats")
        return result


def _with_fast_amazon(config: Path) -> None:
    """Tighten timeouts and backoff so fault tests take seconds, not minutes."""
    text = config.read_text(encoding="utf-8")
    head, sep, rest = text.partition("[amazon]\n")
    assert sep, "the simulator's config has an [amazon] table"
    extra = "".join(line + "\n" for line in FAST_AMAZON.strip().splitlines()[1:])
    config.write_text(head + sep + extra + rest, encoding="utf-8")


def import_channel_listings(shop: Shop, cli: Callable[..., CliResult]) -> int:
    """Build the shop's listings from the simulator's channel truth, through `ecsync import`."""
    rows = []
    accounts = shop.stats()
    for account in accounts["base"]:
        for item in shop.sim("GET", f"/_sim/base/{account}/items")["items"]:
            rows.append(("base", account, item["identifier"], str(item["item_id"]), ""))
    for account in accounts["ebay"]:
        for offer in shop.sim("GET", f"/_sim/ebay/{account}/offers")["offers"]:
            rows.append(("ebay", account, offer["sku"], str(offer["offerId"]), offer["sku"]))
    path = shop.dir / "listings.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["platform", "account", "asin", "item_id", "sku"])
        writer.writerows(rows)
    result = cli("import", str(path))
    assert result.code == 0, result.err
    return len(rows)


@pytest.fixture
def make_shop(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> Iterator[Callable[..., Shop]]:
    shops: list[Any] = []

    def make(**options: Any) -> Shop:
        config = workdir / "ecsync.toml"
        defaults: dict[str, Any] = {"products": 120, "speed": 100.0, "seed": 7}
        context = running_simulator(SimOptions(**{**defaults, **options}, write_config=config))
        handle = context.__enter__()
        shops.append(context)
        _with_fast_amazon(config)
        monkeypatch.setenv("ECSYNC_CONFIG", str(config))
        http = httpx.Client(base_url=handle.url, timeout=10)
        shop = Shop(url=handle.url, config=config, dir=workdir, http=http)
        assert cli("init").code == 0
        return shop

    yield make
    for context in reversed(shops):
        context.__exit__(None, None, None)
    os.environ.pop("ECSYNC_CONFIG", None)
