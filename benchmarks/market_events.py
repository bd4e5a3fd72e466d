"""What the moving market costs: a catalog advanced by a simulated day, in one process.

Every simulator request runs ``MarketEvents.advance(now)`` first, so the idle case (no
event due) must cost nothing and an event must stay cheap even for 100,000 products; the
log and the rates must fit beside the market in the 500 MB a 100,000-product simulator
may take. This builds the market, advances it by ``--hours`` and prints events applied per
second, the cost of an idle advance and the peak RSS.

    .venv/bin/python benchmarks/market_events.py [--products 100000] [--rate 1]
        [--volatility skewed|uniform] [--hours 24]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

from ecsync.sim.events import MarketEvents
from ecsync.sim.market import Market

T0 = 1_767_600_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--volatility", choices=("skewed", "uniform"), default="skewed")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    began = time.perf_counter()
    market = Market.generate(args.seed, args.products, date(2026, 1, 5))
    generated = time.perf_counter() - began
    rss_market = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    began = time.perf_counter()
    events = MarketEvents(market, args.seed, args.rate, args.volatility, T0)
    built = time.perf_counter() - began

    end = T0 + args.hours * 3600
    began, cpu = time.perf_counter(), time.process_time()
    applied = events.advance(end)
    spent, cpu = time.perf_counter() - began, time.process_time() - cpu

    rounds = 200_000
    began = time.perf_counter()
    for _ in range(rounds):
        events.advance(end)
    idle = (time.perf_counter() - began) / rounds

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.products:,} products, rate {args.rate}/day, {args.volatility}, "
        f"{args.hours:g} simulated hours"
    )
    print(f"  market generated in {generated:.1f} s (peak RSS {rss_market:.0f} MB)")
    print(f"  schedule built in {built * 1000:.0f} ms (top 10 % hold {events.top_share():.0%})")
    if applied:
        print(
            f"  {applied:,} events applied in {spent:.2f} s: {applied / spent:,.0f} events/s, "
            f"{spent / applied * 1e6:.1f} us an event (chunk generation included); "
            f"CPU {cpu / applied * 1e6:.1f} us an event"
        )
    print(f"  idle advance (nothing due): {idle * 1e9:.0f} ns")
    print(f"  peak RSS {rss:.0f} MB")
    offers = [p.offer_count for p in market.products]
    print(f"  offers a product at the end: mean {sum(offers) / len(offers):.1f}, max {max(offers)}")


if __name__ == "__main__":
    main()
