"""How many requests per second the simulator sustains on loopback, and at what p99 latency.

The simulator runs in a process of its own (as ``ecsync sim`` would); this process drives
it with concurrent keep-alive connections and a realistic mix of what an ecsync cycle
sends: SP-API offers batches and single lookups, BASE page reads, detail reads and edits,
eBay SKU reads, inventory pages and bulk price updates. It talks through a minimal
asyncio HTTP/1.1 client: httpx's async pool tops out near 700 requests/s on this machine
and would measure itself rather than the simulator. Tokens are fetched and refreshed
the way a real client must (BASE refresh tokens rotate), and every answer is counted by
status, so throttling at the chosen speed is visible rather than hidden.

    .venv/bin/python benchmarks/sim_throughput.py [--seconds 10] [--concurrency 32]
    .venv/bin/python benchmarks/sim_throughput.py --memory        # 100,000 products
    .venv/bin/python benchmarks/sim_throughput.py --products 100000 --market-rate 1

With ``--market-rate R`` (``--volatility``) the market moves on its own while it serves:
every request first applies the events due by then, so the throughput and the simulator's
peak RSS (VmHWM, printed at the end) are those of a moving market.

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.queues import Queue
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import peak_rss_mib

from ecsync.errors import Interrupted
from ecsync.sim.market import Market
from ecsync.sim.seeding import build_state
from ecsync.sim.server import SimOptions, serve

JP = "A1VC38T7YXB528"


def _serve(options: SimOptions, queue: Queue[str]) -> None:
    with contextlib.suppress(Interrupted):
        serve(options, queue.put)


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawHttp:
    """One keep-alive HTTP/1.1 connection: request line, headers, body; reads by
    Content-Length (the simulator always sends it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
    ) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        if params:
            path = f"{path}?{urlencode(params)}"
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        body = b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            lines.append("content-type: application/json")
        elif form is not None:
            body = urlencode(form).encode()
            lines.append("content-type: application/x-www-form-urlencoded")
        lines.append(f"content-length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return Answer(status, await self.reader.readexactly(length))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Tokens:
    """Access tokens shared by all workers; refreshed under a lock, as a real client must
    (one connection per kind, as the locks let the kinds refresh concurrently)."""

    host: str
    port: int
    conns: dict[str, RawHttp] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    base_refresh: str = "sim-base-refresh-1"
    locks: dict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    refreshes: Counter[str] = field(default_factory=Counter)

    async def get(self, kind: str) -> str:
        if kind not in self.values:
            await self.refresh(kind, None)
        return self.values[kind]

    async def refresh(self, kind: str, stale: str | None) -> None:
        async with self.locks[kind]:
            if stale is not None and self.values.get(kind) != stale:
                return  # another worker refreshed already
            self.refreshes[kind] += 1
            http = self.conns.setdefault(kind, RawHttp(self.host, self.port))
            if kind == "amazon":
                answer = await http.request(
                    "POST",
                    "/auth/o2/token",
                    form={
                        "grant_type": "refresh_token",
                        "refresh_token": "Atzr|sim-refresh-token",
                        "client_id": "amzn1.application-oa2-client.sim",
                        "client_secret": "sim-amazon-secret",
                    },
                )
            elif kind == "base":
                answer = await http.request(
                    "POST",
                    "/1/oauth/token",
                    form={
                        "grant_type": "refresh_token",
                        "client_id": "sim-base-client-1",
                        "client_secret": "sim-base-secret-1",
                        "refresh_token": self.base_refresh,
                        # BASE checks it against the app's registered one (sim/channels.py)
                        "redirect_uri": "http://127.0.0.1/callback",
                    },
                )
                assert answer.status == 200, answer.body
                self.base_refresh = answer.json()["refresh_token"]
            else:
                basic = base64.b64encode(b"sim-ebay-client-1:sim-ebay-secret-1").decode()
                answer = await http.request(
                    "POST",
                    "/identity/v1/oauth2/token",
                    headers={"Authorization": f"Basic {basic}"},
                    form={"grant_type": "refresh_token", "refresh_token": "sim-ebay-refresh-1"},
                )
            assert answer.status == 200, answer.body
            self.values[kind] = answer.json()["access_token"]


Call = Callable[[RawHttp], Awaitable[Answer]]


class Mix:
    """The request mix: (weight, name, call)."""

    def __init__(self, tokens: Tokens, world: dict[str, Any]) -> None:
        self.tokens = tokens
        self.asins: list[str] = world["asins"]
        self.items: list[int] = world["items"]
        self.offers: list[dict[str, Any]] = world["offers"]
        self.rng = random.Random(1)
        self.entries: list[tuple[float, str, Call]] = [
            (8, "spapi.getItemOffersBatch", self.batch),
            (8, "spapi.getItemOffers", self.item_offers),
            (4, "spapi.getCompetitivePricing", self.competitive),
            (12, "base.items", self.base_items),
            (10, "base.detail", self.base_detail),
            (24, "base.edit", self.base_edit),
            (12, "ebay.offer", self.ebay_offer),
            (4, "ebay.inventory_item", self.ebay_inventory),
            (18, "ebay.bulk_update", self.ebay_bulk),
        ]
        self.weights = [w for w, _, _ in self.entries]

    def pick(self) -> tuple[str, Call]:
        _, name, call = self.rng.choices(self.entries, self.weights)[0]
        return name, call

    async def amazon(self, http: RawHttp, method: str, path: str, **kwargs: Any) -> Answer:
        token = await self.tokens.get("amazon")
        answer = await http.request(method, path, headers={"x-amz-access-token": token}, **kwargs)
        if answer.status == 403:
            await self.tokens.refresh("amazon", token)
        return answer

    async def base(self, http: RawHttp, method: str, path: str, **kwargs: Any) -> Answer:
        token = await self.tokens.get("base")
        answer = await http.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        if answer.status == 400 and b'"invalid_request"' in answer.body:
            await self.tokens.refresh("base", token)
        return answer

    async def ebay(self, http: RawHttp, method: str, path: str, **kwargs: Any) -> Answer:
        token = await self.tokens.get("ebay")
        answer = await http.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        if answer.status == 401:
            await self.tokens.refresh("ebay", token)
        return answer

    async def batch(self, http: RawHttp) -> Answer:
        requests = [
            {
                "uri": f"/products/pricing/v0/items/{asin}/offers",
                "method": "GET",
                "MarketplaceId": JP,
                "ItemCondition": "New",
                "CustomerType": "Consumer",
            }
            for asin in self.rng.sample(self.asins, 20)
        ]
        return await self.amazon(
            http,
            "POST",
            "/batches/products/pricing/v0/itemOffers",
            json_body={"requests": requests},
        )

    async def item_offers(self, http: RawHttp) -> Answer:
        asin = self.rng.choice(self.asins)
        return await self.amazon(
            http,
            "GET",
            f"/products/pricing/v0/items/{asin}/offers",
            params={"MarketplaceId": JP, "ItemCondition": "New"},
        )

    async def competitive(self, http: RawHttp) -> Answer:
        asins = ",".join(self.rng.sample(self.asins, 20))
        return await self.amazon(
            http,
            "GET",
            "/products/pricing/v0/competitivePrice",
            params={"MarketplaceId": JP, "ItemType": "Asin", "Asins": asins},
        )

    async def base_items(self, http: RawHttp) -> Answer:
        offset = self.rng.randrange(0, max(1, len(self.items) - 100))
        return await self.base(http, "GET", "/1/items", params={"limit": 100, "offset": offset})

    async def base_detail(self, http: RawHttp) -> Answer:
        return await self.base(http, "GET", f"/1/items/detail/{self.rng.choice(self.items)}")

    async def base_edit(self, http: RawHttp) -> Answer:
        form = {
            "item_id": str(self.rng.choice(self.items)),
            "price": str(self.rng.randrange(500, 50_000, 10)),
            "visible": str(self.rng.choice((0, 1))),
            "stock": "1",
        }
        return await self.base(http, "POST", "/1/items/edit", form=form)

    async def ebay_offer(self, http: RawHttp) -> Answer:
        sku = self.rng.choice(self.offers)["sku"]
        return await self.ebay(http, "GET", "/sell/inventory/v1/offer", params={"sku": sku})

    async def ebay_inventory(self, http: RawHttp) -> Answer:
        offset = self.rng.randrange(0, max(1, len(self.offers) - 100))
        return await self.ebay(
            http,
            "GET",
            "/sell/inventory/v1/inventory_item",
            params={"limit": 100, "offset": offset},
        )

    async def ebay_bulk(self, http: RawHttp) -> Answer:
        requests = [
            {
                "sku": offer["sku"],
                "shipToLocationAvailability": {"quantity": 1},
                "offers": [
                    {
                        "offerId": offer["offerId"],
                        "availableQuantity": 1,
                        "price": {"value": f"{self.rng.uniform(10, 300):.2f}", "currency": "USD"},
                    }
                ],
            }
            for offer in self.rng.sample(self.offers, 10)
        ]
        return await self.ebay(
            http,
            "POST",
            "/sell/inventory/v1/bulk_update_price_quantity",
            json_body={"requests": requests},
        )


async def drive(url: str, seconds: float, concurrency: int) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    control = RawHttp(host, int(port))
    items = (await control.request("GET", "/_sim/base/base-1/items")).json()["items"]
    world = {
        "asins": [item["identifier"] for item in items],  # every product is on BASE
        "items": [item["item_id"] for item in items],
        "offers": (await control.request("GET", "/_sim/ebay/ebay-1/offers")).json()["offers"],
    }
    health = (await control.request("GET", "/_sim/health")).json()
    tokens = Tokens(host, int(port))
    mix = Mix(tokens, world)
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[tuple[str, int]] = Counter()
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        http = RawHttp(host, int(port))
        while time.perf_counter() < stop_at:
            name, call = mix.pick()
            started = time.perf_counter()
            answer = await call(http)
            latencies[name].append(time.perf_counter() - started)
            statuses[(name.split(".")[0], answer.status)] += 1
        await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stats = (await control.request("GET", "/_sim/stats")).json()
    events = await control.request("GET", "/_sim/market/events", params={"limit": 1})
    await control.close()
    for conn in tokens.conns.values():
        await conn.close()

    every = sorted(x for values in latencies.values() for x in values)
    total = len(every)
    print(f"simulator: {health['products']} products, speed {health['speed']}, {url}")
    print(f"clients: {concurrency} concurrent keep-alive connections for {elapsed:.1f} s")
    print(f"requests: {total}  throughput: {total / elapsed:.0f} req/s")
    print(
        f"latency: p50 {percentile(every, 50):.1f} ms  p90 {percentile(every, 90):.1f} ms  "
        f"p99 {percentile(every, 99):.1f} ms  max {every[-1] * 1000:.1f} ms"
    )
    print("by request (count, mean ms, p99 ms):")
    for name in sorted(latencies):
        values = sorted(latencies[name])
        mean = statistics.fmean(values) * 1000
        print(f"  {name:30s} {len(values):6d}  {mean:7.1f}  {percentile(values, 99):7.1f}")
    print("statuses:", dict(sorted(statuses.items())))
    print("token refreshes:", dict(tokens.refreshes))
    spapi = stats["spapi"]
    print("simulator saw:", spapi["requests"], "throttled", spapi["throttled"])
    if "throttled_by_operation" in spapi:
        print("throttled by operation:", spapi["throttled_by_operation"])
    if events.status == 200:
        moved = events.json()
        print(
            f"market: rate {moved.get('rate')}, {moved.get('volatility')}: "
            f"{moved.get('count')} events so far {moved.get('by_kind')}"
        )
    else:
        print(f"market: events n/a (GET /_sim/market/events answered {events.status})")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not values:
        return 0.0
    rank = max(0, min(len(values) - 1, round(pct / 100 * len(values) + 0.5) - 1))
    return values[rank] * 1000


def rss_mib() -> float:
    """Current resident set size (Linux), in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def memory(products: int, market_rate: float, volatility: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    market = Market.generate(1, products, date.today())
    built = time.perf_counter() - started
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    offers = sum(product.offer_count for product in market.products)
    estimate = market.memory_estimate() / 2**20
    print(f"market of {products} products, {offers} offers (generated under tracemalloc)")
    print(f"  traced allocations: {traced / 2**20:.1f} MiB; estimate: {estimate:.1f} MiB")
    del market
    gc.collect()
    # The whole simulator state: market, every product on BASE, eBay listings, seeded prices.
    before = rss_mib()
    started = time.perf_counter()
    state = build_state(
        SimOptions(
            products=products,
            base_accounts=2,
            ebay_accounts=2,
            market_rate=market_rate,
            volatility=volatility,
        )
    )
    built = time.perf_counter() - started
    after = rss_mib()
    items = sum(len(a.items) for a in state.base.values())
    listings = sum(len(a.by_sku) for a in state.ebay.values())
    print(
        f"full simulator state ({products} products, {items} BASE items, {listings} eBay "
        f"listings) built in {built:.1f} s"
    )
    print(
        f"  process RSS {before:.0f} MiB before, {after:.0f} MiB after: +{after - before:.0f} MiB"
    )
    if state.events is not None:
        # A moving market grows as it moves (its event log, restocked offers, the meter's
        # records): measure it after a simulated day of events, not as it was built.
        state.clock.set_frozen(True)
        state.clock.advance(86_400)
        started = time.perf_counter()
        applied = state.events.advance(state.clock.now())
        moved = time.perf_counter() - started
        print(
            f"  a simulated day of the market ({applied} events) applied in {moved:.1f} s: "
            f"process RSS {rss_mib():.0f} MiB"
        )
    print(f"  process peak RSS {peak_rss_mib(os.getpid()) or 0:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=2000.0)
    parser.add_argument("--memory", action="store_true", help="measure 100,000 products")
    parser.add_argument(
        "--market-rate",
        type=float,
        default=0.0,
        help="market events per product per simulated day (0: a still market)",
    )
    parser.add_argument("--volatility", default="skewed", help="skewed or uniform")
    args = parser.parse_args()
    options = SimOptions(
        products=args.products,
        speed=args.speed,
        ebay_share=0.2,
        market_rate=args.market_rate,
        volatility=args.volatility,
    )
    try:
        options.check()
    except ValueError as exc:
        parser.error(str(exc))
    if args.memory:
        memory(100_000, args.market_rate, args.volatility)
        return
    context = multiprocessing.get_context("spawn")
    queue: Queue[str] = context.Queue()
    process = context.Process(target=_serve, args=(options, queue), daemon=True)
    process.start()
    try:
        url = queue.get(timeout=300)
        asyncio.run(drive(url, args.seconds, args.concurrency))
        assert process.pid is not None
        peak = peak_rss_mib(process.pid)
        print(f"simulator peak RSS: {peak:.0f} MiB" if peak else "simulator peak RSS: n/a")
    finally:
        process.terminate()
        process.join(timeout=10)
    sys.exit(0)


if __name__ == "__main__":
    main()
