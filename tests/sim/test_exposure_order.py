"""The exposure meter hears the market and the channels in simulated-time order, even when a
route's edit lands after market events its request's middleware did not yet apply.

``_MarketFirst`` applies the events due when a request ARRIVES; the route reads the clock
again when it edits (after awaiting its body, the gate, other requests). An event due in
between is applied only by the next request, after the edit, yet it happened before it. The
oracle here is the timeline written out in the test: the item was buyable from the sell-out
(event time t) until the hiding edit at t + 2 s, so 2 listing-seconds of oversell and one
exposed sell-out of latency 2 s, whatever order the code heard of them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import pytest

from ecsync.sim.clock import SimClock
from ecsync.sim.options import SimOptions
from ecsync.sim.seeding import build_state
from ecsync.sim.state import SimState
from tests.sim.conftest import SimFactory

T0 = 1_767_600_000.0
DAY = 86_400.0
OPTIONS: dict[str, Any] = {
    "products": 40,
    "drift": 0.0,
    "ebay_share": 0.0,
    "market_rate": 48.0,
    "volatility": "uniform",
    "seed": 3,
}
EXACT = 1e-6


def frozen_state() -> SimState:
    clock = SimClock(1.0, start=T0, real=lambda: 0.0)
    clock.set_frozen(True)
    return build_state(SimOptions(**OPTIONS), clock)


def first_exposed_sellout() -> tuple[float, str]:
    """(t, ASIN) of the first event that leaves an ASIN with no eligible offer, in a twin
    simulator left alone for a day; the ASIN's BASE item is buyable (seeded, untouched)."""
    twin = frozen_state()
    twin.clock.advance(DAY)
    twin.advance_market()
    assert twin.events is not None
    events = twin.events.since(-math.inf)
    items = {item.identifier: item for item in twin.base["base-1"].items.values()}
    first = next(e for e in events if e["cost_before"] is not None and e["cost_after"] is None)
    item = items[first["asin"]]
    assert item.visible == 1 and item.stock > 0 and not item.variations
    later = [e for e in events if e["asin"] == first["asin"] and e["t"] > first["t"]]
    assert not later or later[0]["t"] > first["t"] + 2  # nothing else moves it in the window
    return first["t"], first["asin"]


def test_an_edit_that_lands_after_an_unapplied_event_is_counted_after_it() -> None:
    t, asin = first_exposed_sellout()
    state = frozen_state()
    account = state.base["base-1"]
    item = next(i for i in account.items.values() if i.identifier == asin)
    # A request arrives one second before the sell-out: its middleware applies what is due.
    state.clock.advance(t - 1 - T0)
    state.advance_market()
    # Its route edits three seconds later (2 s after the sell-out): the seller hides the item.
    state.clock.advance(3)
    item.visible = 0
    account.touch(item, state.clock.now())
    # The next request's middleware applies the sell-out, which happened before the edit.
    state.advance_market()
    assert state.exposure is not None
    figures = state.exposure.snapshot(state.clock.now())["accounts"]["base-1"]
    assert abs(figures["oversell_s"] - 2.0) < EXACT
    sellouts = figures["sellouts"]
    assert (sellouts["count"], sellouts["exposed"], sellouts["still_exposed"]) == (1, 1, 0)
    assert abs(sellouts["latency_s"]["max"] - 2.0) < EXACT


def test_a_snapshot_counts_the_events_due_by_its_own_time() -> None:
    t, _ = first_exposed_sellout()
    state = frozen_state()
    state.clock.advance(t - 1 - T0)
    state.advance_market()  # the request arrived before the sell-out ...
    state.clock.advance(3)  # ... and reads the figures 2 s after it
    assert state.exposure is not None
    figures = state.exposure.snapshot(state.clock.now())["accounts"]["base-1"]
    assert abs(figures["oversell_s"] - 2.0) < EXACT
    assert figures["sellouts"]["count"] == 1 and figures["sellouts"]["still_exposed"] == 1


def test_an_event_that_raises_is_skipped_and_the_rest_still_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request applies the events due first: one event's bug must not fail the request
    that happened to carry it, nor keep the events after it from happening."""
    state = frozen_state()
    events = state.events
    assert events is not None
    real = events._outcome
    calls = {"n": 0}

    def broken_once(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in one event")
        return real(*args)

    monkeypatch.setattr(events, "_outcome", broken_once)
    state.clock.advance(6 * 3600)
    state.advance_market()  # must not raise
    applied = events.since(-math.inf)
    assert calls["n"] > 2 and len(applied) == calls["n"] - 1
    assert state.events is not None and events.summary(state.clock.now())["failed"] == 1


def test_a_hand_edit_of_the_market_lands_after_the_events_due_before_it(
    make_sim: SimFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PUT /_sim/amazon/{asin}`` at t + 2 s, in a request that arrived at t - 1 s, with
    an event of that ASIN at t: the event happened first, so the hand-set offers are what the
    ASIN holds afterwards (not the event's outcome drawn from them, applied later)."""
    twin = frozen_state()  # the schedule (offsets from its start) is the seed's alone
    twin.clock.advance(DAY)
    twin.advance_market()
    assert twin.events is not None
    events = twin.events.since(-math.inf)
    first = events[0]
    later = [e for e in events if e["asin"] == first["asin"] and e["t"] > first["t"]]
    assert not later or later[0]["t"] > first["t"] + 10
    sim = make_sim(**OPTIONS, market_hold=True)
    sim.freeze()
    start = sim.control("POST", "/market/start")["start"]
    due = start + first["t"] - T0
    sim.advance(due - 1 - sim.control("GET", "/clock")["now"])
    state = sim.handle.state
    real_advance = state.advance_market

    def advance_then_lag() -> float:
        now = real_advance()
        state.clock.advance(3)  # the route reads the clock 3 s after the request arrived
        return now

    monkeypatch.setattr(state, "advance_market", advance_then_lag)
    hand = {"seller_id": "A1HAND", "price": 1234, "shipping": 0}
    sim.control("PUT", f"/amazon/{first['asin']}", {"offers": [hand]})
    monkeypatch.undo()  # the class's own again
    held = sim.control("GET", f"/amazon/{first['asin']}")["offers"]  # applies what is due
    assert [(o["seller_id"], o["price"], o["shipping"]) for o in held] == [("A1HAND", 1234, 0)]
    applied = sim.control("GET", f"/market/events?since={due - 1}")["events"]
    assert applied and applied[0]["asin"] == first["asin"]
    assert abs(applied[0]["t"] - due) < EXACT  # the event was applied, at its own time


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--market-rate", "nan"], "--market-rate must be a finite number, 0 or more"),
        (["--market-rate", "inf"], "--market-rate must be a finite number, 0 or more"),
        (["--speed", "nan"], "--speed must be a finite number"),
    ],
)
def test_options_that_are_not_finite_numbers_exit_2(args: list[str], message: str) -> None:
    """``nan < 0`` is False: the checks let NaN through (``--market-rate nan`` served a still
    market, ``--speed nan`` a clock of NaNs) and ``inf`` failed with a traceback at start."""
    done = subprocess.run(
        [sys.executable, "-m", "ecsync", "sim", "--products", "5", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done
    assert message in done.stderr


@pytest.mark.parametrize("seconds", ["Infinity", "NaN"])
def test_the_clock_refuses_a_jump_that_is_not_a_finite_number(
    make_sim: SimFactory, seconds: str
) -> None:
    """Python's JSON reads ``Infinity`` and ``NaN``: the clock took them, and the moving
    market then tried to apply every event due by an infinite (or NaN) time before the next
    request: the simulator hung for good."""
    sim = make_sim(**OPTIONS)
    sim.freeze()
    before = sim.control("GET", "/clock")["now"]
    answer = sim.http.post(
        "/_sim/clock/advance",
        content=f'{{"seconds": {seconds}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert "seconds" in answer.json()["error"]
    assert sim.http.get("/_sim/clock", timeout=5).json()["now"] == before
