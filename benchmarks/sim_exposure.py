"""What the simulator's exposure meter costs with 100,000 listings (in-process, no HTTP).

Builds a seeded state (100,000 products on BASE, a 20 % eBay share, 10 % drift), then times
the meter's construction, a snapshot, and one change of each kind: a BASE edit, an eBay
revision and a market change of an ASIN (``Market.set_offers``, which tells the meter).
The snapshot must not grow with the listings (running aggregates, O(accounts)).

    .venv/bin/python benchmarks/sim_exposure.py [--products 100000] [--rounds 2000]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import random
import time

from ecsync.sim.clock import SimClock
from ecsync.sim.exposure import ExposureMeter
from ecsync.sim.options import SimOptions
from ecsync.sim.seeding import build_state


def per_call_us(seconds: float, calls: int) -> str:
    return f"{seconds / calls * 1e6:8.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    clock = SimClock(1.0, start=1_800_000_000.0)
    clock.set_frozen(True)
    started = time.perf_counter()
    state = build_state(SimOptions(products=args.products, ebay_share=0.2), clock)
    print(f"seeding (with the meter): {time.perf_counter() - started:6.2f} s")
    started = time.perf_counter()
    meter = ExposureMeter(state.market, state.base, state.ebay, clock.now())
    print(f"meter construction alone: {time.perf_counter() - started:6.2f} s")
    state.exposure = meter
    state.market.listener = meter.asin_changed
    figures = meter.snapshot(clock.now())
    total = figures["total"]
    print(f"listings: {total['listings']:,} (oversold now {total['oversold_now']:,})")

    rng = random.Random(1)
    base = state.base["base-1"]
    items = list(base.items.values())
    ebay = state.ebay["ebay-1"]
    offers = list(ebay.by_sku.values())
    products = state.market.products
    rounds = args.rounds

    started = time.perf_counter()
    for _ in range(rounds):
        clock.advance(1)
        meter.snapshot(clock.now())
    print(f"snapshot:                 {per_call_us(time.perf_counter() - started, rounds)}")

    started = time.perf_counter()
    for _ in range(rounds):
        clock.advance(1)
        item = rng.choice(items)
        item.visible = 1 - item.visible
        base.touch(item, clock.now())
    print(f"BASE edit (touch):        {per_call_us(time.perf_counter() - started, rounds)}")

    started = time.perf_counter()
    for _ in range(rounds):
        clock.advance(1)
        offer = rng.choice(offers)
        offer.quantity = 1 - min(offer.quantity, 1)
        ebay.touch(offer, clock.now())
    print(f"eBay revision (touch):    {per_call_us(time.perf_counter() - started, rounds)}")

    started = time.perf_counter()
    for _ in range(rounds):
        clock.advance(1)
        product = rng.choice(products)
        offers_now = state.market.offers(product)
        state.market.set_offers(product.asin, offers_now[1:], at=clock.now())
    spent = time.perf_counter() - started
    print(f"market change (set_offers, meter included): {per_call_us(spent, rounds)}")

    saved = state.market.listener
    state.market.listener = None
    started = time.perf_counter()
    for _ in range(rounds):
        product = rng.choice(products)
        state.market.set_offers(product.asin, state.market.offers(product)[1:])
    bare = time.perf_counter() - started
    state.market.listener = saved
    print(f"market change without the meter:            {per_call_us(bare, rounds)}")

    started = time.perf_counter()
    meter.snapshot(clock.now())
    print(f"snapshot after the changes: {per_call_us(time.perf_counter() - started, 1)}")


if __name__ == "__main__":
    main()
