"""A whole cycle (fetch, plan, push, pipelined) against the floor, and what it writes.

10,772 products at --speed 100, two BASE accounts and one eBay account with a 20 % share,
10 % of the market drifted since the channels were last synced. Prints the first cycle's
wall time over the fetch floor (target <= 1.10), channel writes over changes applied
(target 1.00), the writes of a second cycle over the unchanged market (target 0), and peak
RSS of the ecsync process.

    .venv/bin/python benchmarks/cycle.py [--products 10772] [--speed 100]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import Shop, ratio, simulator_shop


def writes(shop: Shop) -> int:
    stats = shop.stats()
    channel: dict[str, Any] = {**stats["base"], **stats["ebay"]}
    return sum(account["writes"] for account in channel.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10772)
    parser.add_argument("--speed", type=float, default=100.0)
    args = parser.parse_args()
    sim = ["--products", str(args.products), "--speed", str(args.speed)]
    sim += ["--base-accounts", "2", "--ebay-accounts", "1", "--ebay-share", "0.2"]
    with simulator_shop(*sim) as shop:
        shop.reset_stats()
        first, wall, peak = shop.sync()
        first_writes = writes(shop)
        shop.reset_stats()
        second, _wall2, peak2 = shop.sync()
        second_writes = writes(shop)
    print(
        f"products               {args.products} at --speed {args.speed:g}, 2 BASE + 1 eBay (20 %)"
    )
    print(f"cycle 1 duration_s     {first['duration_s']:.2f} (command wall {wall:.2f} s)")
    print(f"fetch_floor_s          {first['fetch_floor_s']:.2f}")
    floor_ratio = ratio(first["duration_s"], first["fetch_floor_s"])
    print(f"cycle / floor          {floor_ratio} (target <= 1.10)")
    print(
        f"changes applied        {first['changes_applied']} (planned {first['changes_planned']}, "
        f"held {first['changes_held']}, failed {first['changes_failed']})"
    )
    print(f"channel writes         {first_writes}; channel calls {first['channel_calls']}")
    print(f"writes / changes       {ratio(first_writes, first['changes_applied'])} (target 1.00)")
    print(
        f"throttled              {first['spapi_throttled']} of {first['spapi_requests']} requests"
    )
    print(
        f"cycle 2 writes         {second_writes} (target 0); changes {second['changes_planned']}, "
        f"duration {second['duration_s']:.2f} s"
    )
    print(f"peak RSS               {max(peak, peak2):.0f} MiB")


if __name__ == "__main__":
    main()
