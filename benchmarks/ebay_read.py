"""Reading a 20,000-listing eBay account in bulk: calls, time and what the simulator saw.

The simulator runs in its own process (``ecsync sim``); this process reads the account with
``EbayAdapter.read`` through the Sell Feed inventory report, once with the SKUs it should
find (as reconcile does) and, with ``--fallback``, once more after the day's reports are
spent (SKU by SKU, as before the report: about one call per listing).

    .venv/bin/python benchmarks/ebay_read.py [--listings 20000] [--speed 1000] [--fallback]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ecsync.channels import EbayAdapter, HttpOptions
from ecsync.clock import Stop
from ecsync.config import load_settings
from ecsync.store.engine import make_engine, session_factory
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.runner import DbRunner


def _start_sim(directory: Path, listings: int, speed: float) -> tuple[subprocess.Popen[str], str]:
    config = directory / "ecsync.toml"
    args = [sys.executable, "-m", "ecsync", "sim", "--port", "0", "--write-config", str(config)]
    args += ["--products", str(listings), "--ebay-share", "1", "--base-accounts", "0"]
    args += ["--speed", str(speed)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("simulator listening on "):
            return proc, line.split()[-1]
    proc.kill()
    raise SystemExit("the simulator did not start")


async def _read(
    config: Path, db: DbRunner, speed: float, expected: set[str]
) -> tuple[Any, float, int]:
    settings = load_settings(config)
    options = dataclasses.replace(HttpOptions(), time_scale=speed)
    account = settings.account("ebay-1").model_copy(update={"daily_call_limit": 1_000_000})
    adapter = EbayAdapter(account, db, Stop(), options=options)
    try:
        started = time.monotonic()
        result = await adapter.read(expected)
        return result, time.monotonic() - started, adapter.calls
    finally:
        await adapter.aclose()


def _show(label: str, result: Any, wall: float, calls: int, stats: dict[str, Any]) -> None:
    counters = stats["ebay"]["ebay-1"]
    print(
        f"{label}: {len(result.items):,} items, {len(result.problems)} problems, "
        f"{len(result.gone_skus)} gone, complete={result.complete}; {calls} eBay calls "
        f"(simulator: {counters['feed_calls']} feed calls, {counters['reads']} offer reads, "
        f"{counters['errors']} errors); "
        f"{wall:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--speed", type=float, default=1000.0)
    parser.add_argument("--fallback", action="store_true", help="also read without a report")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="ecsync-ebay-read-"))
    proc, url = _start_sim(directory, args.listings, args.speed)
    engine = make_engine(f"sqlite:///{directory / 'ecsync.db'}")
    upgrade_to_head(engine)
    db = DbRunner(session_factory(engine))
    http = httpx.Client(base_url=url, timeout=60)
    try:
        offers = http.get("/_sim/ebay/ebay-1/offers").json()["offers"]
        expected = {offer["sku"] for offer in offers}
        print(f"eBay account ebay-1: {len(expected):,} listings (simulator --speed {args.speed:g})")
        http.post("/_sim/stats/reset")
        config = directory / "ecsync.toml"
        result, wall, calls = asyncio.run(_read(config, db, args.speed, expected))
        _show("report read", result, wall, calls, http.get("/_sim/stats").json())
        if args.fallback:
            http.patch("/_sim/ebay/ebay-1", json={"daily_report_limit": 1})
            http.post("/_sim/stats/reset")
            result, wall, calls = asyncio.run(_read(config, db, args.speed, expected))
            _show("without a report", result, wall, calls, http.get("/_sim/stats").json())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MiB")
    finally:
        http.close()
        db.close()
        engine.dispose()
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
