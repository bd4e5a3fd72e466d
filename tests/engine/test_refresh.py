"""Continuous refresh against a real simulator: a probe finds a sell-out, a full quote
confirms it, and the listing is off sale on the channel within the window; a probe that errs
or is malformed is not evidence of anything.

The scheduler is input here, not the code under test: a small fake that probes the ASINs a
test names and full-quotes only what a probe contradicted, so any hide can only have come
from a probe's difference and the full quote it called for. Oracles come from the
simulator's truth (``/_sim/base/{account}/items``) and rules written in the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from ecsync.app import open_app
from ecsync.config import load_settings
from ecsync.domain.probes import Contradiction, Difference
from ecsync.domain.refresh import AsinState, RefreshScheduler
from ecsync.engine.cycle import CycleOptions, CycleRunner, CycleSummary, RefreshWindow
from ecsync.engine.refresh import RefreshState
from ecsync.engine.runtime import run_with_stop
from tests.conftest import CliResult
from tests.integration.conftest import Shop, import_channel_listings, make_shop  # noqa: F401

WINDOW_S = 6.0  # real seconds; the simulator runs 100x, so quotas allow many requests


class ProbeDriven(RefreshScheduler):
    """Probes ``watched`` every time; full-quotes only what a probe contradicted."""

    def __init__(self, watched: list[str]) -> None:
        super().__init__()
        self.watched = watched
        self.loaded: list[str] = []
        self.urgent: list[str] = []
        self.taken: set[str] = set()
        self.probes: list[tuple[str, Difference | None]] = []
        self.quotes: list[tuple[str, bool]] = []
        self.failed: list[str] = []

    def load(self, states: Iterable[AsinState], now: float) -> None:
        self.loaded = [state.asin for state in states]

    def next_full(self, n: int, now: float) -> list[str]:
        out = [asin for asin in self.urgent if asin not in self.taken][:n]
        for asin in out:
            self.urgent.remove(asin)
        self.taken.update(out)
        return out

    def next_single(self, now: float) -> str | None:
        return None

    def next_probe(self, n: int, now: float) -> list[str]:
        return self.watched[:n]

    def quoted(self, asin: str, now: float, changed: bool) -> None:
        self.taken.discard(asin)
        self.quotes.append((asin, changed))

    def quote_failed(self, asin: str, now: float, *, error: bool = False) -> None:
        self.taken.discard(asin)
        self.failed.append(asin)

    def metrics(self, now: float) -> dict[str, Any]:
        return {}  # the real scheduler's figures read its own fields, which this fake reuses

    def probed(self, asin: str, now: float, difference: Difference | None) -> None:
        self.probes.append((asin, difference))
        if difference is not None and asin not in self.urgent and asin not in self.taken:
            self.urgent.append(asin)


def _buyable(item: dict[str, Any]) -> bool:
    """The exposure meter's rule for a BASE item without variations."""
    return int(item["visible"]) == 1 and int(item["stock"]) > 0


def _base_items(shop: Shop) -> dict[str, dict[str, Any]]:
    """ASIN -> the first BASE account's item for it (items without variations)."""
    account = next(iter(shop.stats()["base"]))
    items = shop.sim("GET", f"/_sim/base/{account}/items")["items"]
    return {item["identifier"]: item for item in items if not item.get("variations")}


def _synced_shop(make: Callable[..., Shop], cli: Callable[..., CliResult]) -> tuple[Shop, str, str]:
    """A shop swept once, and two ASINs on sale on BASE: a target and a control."""
    shop = make(products=30, speed=100.0)
    import_channel_listings(shop, cli)
    result = cli("sync")
    assert result.code == 0, result.err
    on_sale = sorted(asin for asin, item in _base_items(shop).items() if _buyable(item))
    assert len(on_sale) >= 2, "the seeded shop has items on sale after a sync"
    return shop, on_sale[0], on_sale[1]


def _window(shop: Shop, scheduler: RefreshScheduler) -> CycleSummary:
    app = open_app(load_settings(shop.config))
    try:
        state = RefreshState(scheduler)
        options = CycleOptions(refresh=RefreshWindow(time.time() + WINDOW_S, state))
        return run_with_stop(lambda stop: CycleRunner(app, stop).run(options))
    finally:
        app.close()


def test_a_probe_finds_a_sell_out_and_the_listing_is_off_sale_within_the_window(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
) -> None:
    shop, target, control = _synced_shop(make_shop, cli)
    shop.sim("PUT", f"/_sim/amazon/{target}", json={"out_of_stock": True})
    scheduler = ProbeDriven([target, control])

    summary = _window(shop, scheduler)

    assert target in scheduler.loaded and control in scheduler.loaded
    # No offer at all: the probe counts no new offer where the quote implied some (the most
    # urgent contradiction); the control's market did not move (market rate 0).
    target_probes = [d for asin, d in scheduler.probes if asin == target]
    assert target_probes, "the target was probed"
    first = target_probes[0]
    assert first is not None and first.reason is Contradiction.NO_NEW_OFFERS, target_probes
    control_probes = [d for asin, d in scheduler.probes if asin == control]
    assert control_probes and all(d is None for d in control_probes)
    # The full quote it called for saw the change; nothing else was quoted.
    assert (target, True) in scheduler.quotes
    assert {asin for asin, _ in scheduler.quotes} == {target}
    assert not scheduler.taken  # every ASIN taken was reported back
    # The channel's truth: the target is off sale, the control still on sale.
    items = _base_items(shop)
    assert not _buyable(items[target]), items[target]
    assert _buyable(items[control]), items[control]
    assert summary.status == "ok", summary
    assert summary.extra["refresh"]["differences"] >= 1
    assert summary.quotes_out_of_stock >= 1


@pytest.mark.parametrize(
    "faults",
    [{"spapi": {"item_error": 1.0}}, {"spapi": {"malformed": 1.0}}],
    ids=["item_error", "malformed"],
)
def test_a_probe_that_errs_is_not_evidence(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
    faults: dict[str, Any],
) -> None:
    shop, target, _ = _synced_shop(make_shop, cli)
    shop.sim("PUT", f"/_sim/amazon/{target}", json={"out_of_stock": True})
    # One ASIN per probe: item_error fails the only entry; malformed spoils the whole body.
    shop.sim("PUT", "/_sim/faults", json=faults)
    scheduler = ProbeDriven([target])

    summary = _window(shop, scheduler)

    assert summary.extra["refresh"]["probe_requests"] >= 1
    assert summary.extra["refresh"]["probe_errors"] >= 1
    assert scheduler.probes == []  # an error is never reported as a probe, with or without
    assert scheduler.quotes == [] and scheduler.failed == []
    assert _buyable(_base_items(shop)[target])  # still on sale: nothing was evidence


class EveryAsin(ProbeDriven):
    """Full-quotes every ASIN it holds, 20 at a time, as often as asked; never probes."""

    def next_full(self, n: int, now: float) -> list[str]:
        out = [asin for asin in self.loaded if asin not in self.taken][:n]
        self.taken.update(out)
        return out

    def next_probe(self, n: int, now: float) -> list[str]:
        return []


def test_an_outage_ends_the_windows_fetch_hands_every_asin_back_and_hides_nothing(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
) -> None:
    shop, _, _ = _synced_shop(make_shop, cli)
    on_sale = {asin for asin, item in _base_items(shop).items() if _buyable(item)}
    shop.sim("PUT", "/_sim/faults", json={"spapi": {"error500": 1.0}})
    scheduler = EveryAsin([])

    started = time.monotonic()
    summary = _window(shop, scheduler)
    took = time.monotonic() - started

    # outage_batches (3) batches failed whole in a row: the breaker ended the window's fetch
    # well before its end, and the cycle says SP-API was down.
    assert took < WINDOW_S, took
    assert summary.extra["spapi_outage"] is True
    assert summary.status == "failed", summary
    assert scheduler.quotes == []
    assert scheduler.failed, "the failed batches were reported back"
    assert not scheduler.taken, "every ASIN taken went back to the scheduler"
    # An error is not evidence: everything on sale before is on sale still.
    items = _base_items(shop)
    assert all(_buyable(items[asin]) for asin in on_sale)


class SingleDriven(ProbeDriven):
    """Like ProbeDriven, but a contradicted ASIN goes to getItemOffers, never to a batch."""

    def next_full(self, n: int, now: float) -> list[str]:
        return []

    def next_single(self, now: float) -> str | None:
        out = super().next_full(1, now)
        return out[0] if out else None


def test_a_single_quote_confirms_what_a_probe_found_and_takes_the_listing_off_sale(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
) -> None:
    shop, target, control = _synced_shop(make_shop, cli)
    shop.sim("PUT", f"/_sim/amazon/{target}", json={"out_of_stock": True})
    scheduler = SingleDriven([target, control])

    summary = _window(shop, scheduler)

    assert (target, True) in scheduler.quotes
    assert {asin for asin, _ in scheduler.quotes} == {target}
    assert not scheduler.taken
    assert summary.extra["refresh"]["singles"] >= 1
    assert summary.extra["refresh"]["full_batches"] == 0
    assert summary.extra["refresh"]["requests"].get("getItemOffers", 0) >= 1
    items = _base_items(shop)
    assert not _buyable(items[target]), items[target]
    assert _buyable(items[control]), items[control]
    assert summary.status == "ok", summary
