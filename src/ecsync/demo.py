"""``ecsync demo``: the whole job against the simulator, with no network and no credentials.

It builds a throw-away shop in ``./ecsync-demo/`` (two BASE accounts and one eBay account),
pulls the channels' items, runs a full cycle, moves the market, and runs a second cycle that
pushes only the deltas: the shortest honest tour of what ecsync does.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ecsync.app import App, configure_logging, open_app
from ecsync.clock import Stop
from ecsync.config import load_settings
from ecsync.engine.cycle import CycleOptions, CycleRunner, CycleSummary
from ecsync.engine.fetch import FetchObserver
from ecsync.engine.pull import pull_accounts
from ecsync.engine.reconcile import PullOutcome
from ecsync.engine.runtime import run_with_stop
from ecsync.errors import EcsyncError
from ecsync.sim.server import SimOptions, running_simulator

DEMO_DIR = Path("ecsync-demo")


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    pulled: list[PullOutcome]
    first: CycleSummary
    second: CycleSummary
    market_moved: int


def run_demo(
    *,
    directory: Path = DEMO_DIR,
    products: int = 1500,
    speed: float = 100.0,
    seed: int = 11,
    observer_factory: Callable[[], Any] | None = None,
    on_step: Callable[[str], None] = lambda _message: None,
) -> DemoResult:
    """Run the demo; ``on_step`` narrates, ``observer_factory`` draws each cycle's progress."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    config = directory / "ecsync.toml"
    options = SimOptions(
        products=products,
        base_accounts=2,
        ebay_accounts=1,
        ebay_share=0.2,
        drift=0.1,
        speed=speed,
        seed=seed,
        write_config=config,
    )
    with running_simulator(options) as sim:
        on_step(f"simulator running at {sim.url} ({products} Amazon products, speed x{speed:g})")
        settings = load_settings(config, required=True)
        configure_logging(settings)
        app = open_app(settings, migrate=True)
        try:
            names = [a.name for a in settings.accounts]
            on_step(f"demo shop in {directory}/: accounts {', '.join(names)}")
            report = run_with_stop(lambda stop: pull_accounts(app, names, stop))
            if report.failed:
                raise EcsyncError(f"demo: pull failed for {', '.join(report.failed)}")
            pulled = report.outcomes
            on_step(
                "pulled "
                + ", ".join(f"{p.items} items from {p.account}" for p in pulled)
                + "; cycle 1: full sync"
            )
            first = _cycle(app, observer_factory)
            moved = _move_market(sim.url, fraction=0.05, seed=seed + 1)
            on_step(f"market moved: {moved} products changed price or stock; cycle 2: deltas only")
            second = _cycle(app, observer_factory)
        finally:
            app.close()
    return DemoResult(directory, pulled, first, second, moved)


def _cycle(app: App, observer_factory: Callable[[], Any] | None) -> CycleSummary:
    async def main(stop: Stop) -> CycleSummary:
        if observer_factory is None:
            return await CycleRunner(app, stop).run(CycleOptions())
        with observer_factory() as observer:
            fetch_observer: FetchObserver = observer
            return await CycleRunner(app, stop, fetch_observer=fetch_observer).run(CycleOptions())

    return run_with_stop(main)


def _move_market(url: str, *, fraction: float, seed: int) -> int:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/_sim/market/step", json={"fraction": fraction, "seed": seed})
        response.raise_for_status()
        data = response.json()
    moved = data.get("moved", data.get("changed", 0)) if isinstance(data, dict) else 0
    return int(moved or 0)
