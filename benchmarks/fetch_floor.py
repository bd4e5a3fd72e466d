"""Cycle wall time against the rate-limit floor, for a full offers refresh.

Starts the simulator at --speed 100 with 10,772 products (the size of the shop whose old
cycle took 9 h 17 min against a 90 min floor) and no drift, so the cycle is all fetch, and
prints wall time, ``fetch_floor_s``, their ratio, requests, throttles, ``max_per_asin`` and
peak RSS of the ecsync process. Targets: ratio <= 1.05, throttled <= 1 % of requests,
``max_per_asin`` == 1.

    .venv/bin/python benchmarks/fetch_floor.py [--products 10772] [--speed 100]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import ratio, simulator_shop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10772)
    parser.add_argument("--speed", type=float, default=100.0)
    args = parser.parse_args()
    sim = ["--products", str(args.products), "--speed", str(args.speed), "--drift", "0"]
    sim += ["--base-accounts", "1", "--ebay-accounts", "0"]
    with simulator_shop(*sim) as shop:
        shop.reset_stats()
        summary, wall, peak = shop.sync()
        spapi = shop.stats()["spapi"]
    requests = sum(spapi["requests"].values())
    print(f"products            {args.products} at --speed {args.speed:g}")
    print(f"cycle duration_s    {summary['duration_s']:.2f}")
    print(f"command wall time   {wall:.2f} s (with process start and database open)")
    print(f"fetch_floor_s       {summary['fetch_floor_s']:.2f}")
    floor_ratio = ratio(summary["duration_s"], summary["fetch_floor_s"])
    print(f"ratio               {floor_ratio} (target <= 1.05)")
    print(f"requests            {requests}")
    throttled = spapi["throttled"]
    share = 100 * throttled / max(1, requests)
    print(f"throttled           {throttled} ({share:.2f} %, target <= 1 %)")
    print(f"max_per_asin        {spapi['asin_fetches']['max_per_asin']} (target 1)")
    print(
        f"quotes              ok {summary['quotes_ok']}, "
        f"out of stock {summary['quotes_out_of_stock']}, "
        f"no eligible {summary['quotes_no_eligible_offer']}, error {summary['quotes_error']}"
    )
    print(f"peak RSS            {peak:.0f} MiB")


if __name__ == "__main__":
    main()
