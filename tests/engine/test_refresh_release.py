"""A seller's release goes out within the continuous window, not when its ASIN is next due.

A sweep holds a mass hide; the seller releases it (``ecsync changes release --all``); one
continuous window then runs with a scheduler that quotes nothing of its own accord and never
probes: it only serves what the refresher asks of it (``ask``). So any hide in that window
can only have come from the refresher handing the released ASINs over, a fresh quote, and
the plan that sends the release. The oracle is the simulator's channel truth
(``/_sim/base/{account}/items``) against the ASINs this test sold out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ecsync.app import open_app
from ecsync.config import load_settings
from ecsync.domain.guards import DecisionKind
from ecsync.engine.cycle import CycleOptions, CycleRunner, CycleSummary, RefreshWindow
from ecsync.engine.refresh import RELEASE_POLL_S, RefreshState
from ecsync.engine.runtime import run_with_stop
from ecsync.store.decisions import decide
from ecsync.store.engine import transaction
from tests.conftest import CliResult
from tests.engine.test_refresh import ProbeDriven
from tests.integration.conftest import Shop, make_shop  # noqa: F401
from tests.integration.test_cycle_e2e import _listings, _sync, _synced_shop

WINDOW_S = 6.0  # real seconds, the simulator at 100x


class AskOnly(ProbeDriven):
    """Full-quotes only what it was asked for; never probes, never quotes on its own."""

    def __init__(self) -> None:
        super().__init__([])
        self.asked: list[str] = []

    def ask(self, asin: str) -> bool:
        self.asked.append(asin)
        if asin not in self.loaded:
            return False
        if asin not in self.urgent and asin not in self.taken:
            self.urgent.append(asin)
        return True

    def next_probe(self, n: int, now: float) -> list[str]:
        return []


def _base_items(shop: Shop) -> dict[str, dict[str, Any]]:
    items = shop.sim("GET", "/_sim/base/base-1/items")["items"]
    return {item["identifier"]: item for item in items}


def _window(shop: Shop, scheduler: AskOnly, window_s: float = WINDOW_S) -> CycleSummary:
    app = open_app(load_settings(shop.config))
    try:
        state = RefreshState(scheduler)
        options = CycleOptions(refresh=RefreshWindow(time.time() + window_s, state))
        return run_with_stop(lambda stop: CycleRunner(app, stop).run(options))
    finally:
        app.close()


def test_a_released_hide_is_applied_within_the_continuous_window(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
) -> None:
    shop = _synced_shop(make_shop, cli, products=100, base_accounts=1, ebay_accounts=0, drift=0.0)
    visible = [row[0] for row in _listings(shop) if row[0].confirmed_visible]
    dark = {listing.asin for listing in visible[: len(visible) // 2]}
    assert len(dark) >= 30
    for asin in dark:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})
    first = _sync(cli)
    assert first["mass_hide_tripped"] == ["base-1"] and first["held_hides"] == len(dark)
    assert all(_base_items(shop)[asin]["visible"] for asin in dark)  # held: still on sale
    released = cli("changes", "release", "--all", "--account", "base-1")
    assert released.code == 0, released.err

    scheduler = AskOnly()
    summary = _window(shop, scheduler)

    # The refresher asked for exactly the released ASINs, and only they were quoted.
    assert set(scheduler.asked) == dark
    assert {asin for asin, _ in scheduler.quotes} == dark
    assert not scheduler.taken
    assert summary.extra["refresh"]["releases_asked"] == len(dark)
    # The channel's truth: every released hide applied in this window, nothing else hidden.
    truth = _base_items(shop)
    assert {asin for asin in dark if not truth[asin]["visible"]} == dark
    assert all(truth[row.asin]["visible"] for row in visible if row.asin not in dark)
    assert summary.extra["released"] == len(dark), summary
    assert summary.changes_held == 0 and summary.status == "ok", summary
    held = cli("changes", "--json", "--status", "held")
    assert held.code == 0 and json.loads(held.out) == []


def test_a_release_made_during_the_window_is_applied_before_it_ends(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
) -> None:
    shop = _synced_shop(make_shop, cli, products=60, base_accounts=1, ebay_accounts=0, drift=0.0)
    visible = [row[0] for row in _listings(shop) if row[0].confirmed_visible]
    dark = {listing.asin for listing in visible[: len(visible) // 2]}
    assert len(dark) >= 10
    for asin in dark:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})
    first = _sync(cli)
    assert first["mass_hide_tripped"] == ["base-1"] and first["held_hides"] == len(dark)

    def release_later() -> None:
        # After the window's first look for releases (at its start, right after the
        # scheduler is loaded): only the periodic one (every RELEASE_POLL_S) can find this.
        deadline = time.monotonic() + 30
        while not scheduler.loaded and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # staging, not waiting for a result: the window runs on
        app = open_app(load_settings(shop.config))
        try:
            with transaction(app.sessions) as session:
                decide(
                    session,
                    DecisionKind.RELEASED,
                    None,
                    account="base-1",
                    by="seller",
                    now=datetime.now(UTC),
                )
        finally:
            app.close()

    releaser = threading.Thread(target=release_later)
    scheduler = AskOnly()
    releaser.start()
    try:
        summary = _window(shop, scheduler, window_s=RELEASE_POLL_S + 6.0)
    finally:
        releaser.join()

    assert set(scheduler.asked) == dark
    truth = _base_items(shop)
    assert {asin for asin in dark if not truth[asin]["visible"]} == dark
    assert all(truth[row.asin]["visible"] for row in visible if row.asin not in dark)
    assert summary.extra["released"] == len(dark), summary
