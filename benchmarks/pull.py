"""Onboarding a big shop: ``ecsync pull --all`` over many BASE and eBay listings.

Starts the simulator in its own process with ``--products`` BASE listings spread over
``--base-accounts`` accounts and one eBay account listing ``--ebay`` of them, then runs
``ecsync init`` and ``ecsync pull --all --json`` as a user would, and prints the pull's wall
time, the channel calls per account and the peak RSS of the pull process (target < 300 MB
at 100,000 BASE + 20,000 eBay listings).

    .venv/bin/python benchmarks/pull.py [--products 100000] [--base-accounts 4] [--ebay 20000]

Check it small first (``--products 10000 --ebay 2000``): until eBay is read through its
inventory report, every eBay SKU costs one call. Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import simulator_shop


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000, help="BASE listings in all")
    parser.add_argument("--base-accounts", type=int, default=4)
    parser.add_argument("--ebay", type=int, default=20_000, help="eBay listings")
    parser.add_argument("--speed", type=float, default=100.0)
    args = parser.parse_args()
    share = min(1.0, args.ebay / args.products) if args.products else 0.0
    sim = ["--products", str(args.products), "--speed", str(args.speed)]
    sim += ["--base-accounts", str(args.base_accounts), "--ebay-accounts", "1"]
    sim += ["--ebay-share", f"{share:.6f}", "--drift", "0"]
    with simulator_shop(*sim, pull=False) as shop:
        # ok_codes: a pull that fails on one account still imports the others (exit 1).
        done, wall, peak = shop.run("pull", "--all", "--json", ok_codes=(0, 1))
        report: dict[str, Any] = json.loads(done.stdout)
        url = shop.url
    rows = [("account", "items", "added", "unread", "calls")]
    for account in report["accounts"]:
        rows.append(
            (
                account["account"],
                str(account["items"]),
                str(account["added"]),
                str(account["unread"]),
                str(account["calls"]),
            )
        )
    for name, reason in report["failed"].items():
        rows.append((name, "failed", reason[:40], "", ""))
    total = sum(a["items"] for a in report["accounts"])
    print(
        f"simulator  {url}: {args.products} BASE listings over {args.base_accounts} accounts, "
        f"{args.ebay} eBay listings, --speed {args.speed:g}"
    )
    print(_table(rows))
    print()
    print(f"listings pulled   {total}")
    print(f"wall time         {wall:.1f} s (exit {done.returncode})")
    print(f"peak RSS          {peak:.0f} MiB (target < 300 MiB at 100,000 + 20,000)")


if __name__ == "__main__":
    main()
