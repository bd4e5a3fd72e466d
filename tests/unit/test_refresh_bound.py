"""The effective max_quote_age (raised to two full passes when the catalogue outgrows the
configured bound) and the scheduler's ``ask`` queue (a seller's release quoted at once).

Numbers are worked by hand here from the documented rates: getItemOffersBatch 0.1 request/s
x 20 ASINs + getItemOffers 0.5 request/s x 1 ASIN = 2.5 ASIN/s.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from ecsync.config import DaemonSettings
from ecsync.domain.probes import Contradiction, Difference
from ecsync.domain.refresh import AsinState, RefreshPolicy, RefreshScheduler
from ecsync.engine.cycle import quote_cadence
from ecsync.engine.refresh import RefreshState, effective_max_quote_age, full_quote_rate

H = 3600.0
GONE = Difference(Contradiction.BUY_BOX_GONE, "Buy Box gone")


def _states(n: int, last_quote_s: float | None = 0.0) -> list[AsinState]:
    return [AsinState(f"A{i:06d}", stake=1.0, last_quote_s=last_quote_s) for i in range(n)]


# -- the bound ---------------------------------------------------------------------------------


def test_the_full_quote_rate_is_the_documented_one_times_the_time_scale() -> None:
    assert full_quote_rate() == pytest.approx(2.5)
    assert full_quote_rate(100.0) == pytest.approx(250.0)


def test_the_bound_is_two_passes_when_the_configured_one_cannot_hold() -> None:
    # 100,000 ASINs / 2.5 per s = 40,000 s a pass; two passes = 80,000 s (22.2 h) > 6 h.
    assert effective_max_quote_age(6 * H, 100_000, 2.5) == pytest.approx(80_000.0)
    # 16,000 ASINs: 6,400 s a pass, 12,800 s (3.6 h) for two: 6 h holds as configured.
    assert effective_max_quote_age(6 * H, 16_000, 2.5) == 6 * H
    # Exactly at the edge: 27,000 ASINs -> 2 x 10,800 s = 21,600 s = 6 h.
    assert effective_max_quote_age(6 * H, 27_000, 2.5) == 6 * H


def test_sync_raises_the_bound_warns_once_and_shows_it_in_the_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=6 * H))
    state = RefreshState(scheduler, full_rate=2.5)
    caplog.set_level(logging.WARNING, logger="ecsync.engine.refresh")

    state.sync(_states(100_000), 0.0)

    assert scheduler.policy.max_quote_age_s == pytest.approx(80_000.0)
    assert scheduler.metrics(0.0)["max_quote_age_s"] == pytest.approx(80_000.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "max_quote_age 6h cannot hold for 100,000 ASINs at 2.5 quotes/s: using 22h"
    ], warnings
    # Overdue from 0.8 x the bound: at 63,000 s (< 64,000) nothing is overdue, so the first
    # batch comes from the priority list (equal stakes: any 20); at 64,000 s all are.
    assert scheduler.metrics(63_000.0)["queue"]["overdue"] == 0
    assert scheduler.metrics(64_000.0)["queue"]["overdue"] == 100_000

    # Fewer ASINs (retired): 20,000 -> 2 x 8,000 s = 16,000 s < 6 h: back to 6 h, no warning.
    caplog.clear()
    state.sync(_states(20_000), 1.0)
    assert scheduler.policy.max_quote_age_s == 6 * H
    assert scheduler.metrics(1.0)["max_quote_age_s"] == 6 * H
    # Growing again raises it again, without a second warning.
    state.sync(_states(50_000), 2.0)  # 2 x 20,000 s = 40,000 s
    assert scheduler.policy.max_quote_age_s == pytest.approx(40_000.0)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_warning_speaks_in_simulated_time_against_a_sped_up_simulator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # time_scale 100: the configured 6 h is 216 real seconds; the rate is 250 ASIN/s real.
    # 100,000 ASINs: 400 s a pass, 800 s for two (real) = 80,000 s = 22 h simulated.
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=216.0))
    state = RefreshState(scheduler, full_rate=full_quote_rate(100.0), time_scale=100.0)
    caplog.set_level(logging.WARNING, logger="ecsync.engine.refresh")
    state.sync(_states(100_000), 0.0)
    assert scheduler.policy.max_quote_age_s == pytest.approx(800.0)
    assert [r.getMessage() for r in caplog.records] == [
        "max_quote_age 6h cannot hold for 100,000 ASINs at 2.5 quotes/s: using 22h"
    ]


def test_without_a_rate_the_configured_bound_stands() -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=6 * H))
    RefreshState(scheduler).sync(_states(100_000), 0.0)
    assert scheduler.policy.max_quote_age_s == 6 * H


def test_set_max_quote_age_moves_the_overdue_threshold_and_rejects_nonsense() -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=1000.0))
    scheduler.load([AsinState("OLD", stake=1, last_quote_s=0.0)], 0.0)
    assert scheduler.metrics(800.0)["queue"]["overdue"] == 1  # 0.8 x 1000
    scheduler.set_max_quote_age(2000.0)
    assert scheduler.metrics(800.0)["queue"]["overdue"] == 0
    assert scheduler.metrics(1600.0)["queue"]["overdue"] == 1  # 0.8 x 2000
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="set_max_quote_age"):
            scheduler.set_max_quote_age(bad)


# -- ask: a release quoted at once -------------------------------------------------------------


def test_an_asked_asin_comes_before_every_other_queue() -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=1000.0))
    scheduler.load(
        [
            AsinState("OLD", stake=1, last_quote_s=-900),  # overdue
            AsinState("NEW", stake=1),
            AsinState("CONTRA", stake=1, last_quote_s=-50),
            AsinState("QUIET", stake=1, last_quote_s=-10),  # the lowest priority of all
        ],
        0.0,
    )
    scheduler.probed("CONTRA", -5, GONE)
    assert scheduler.ask("QUIET") is True
    assert scheduler.ask("QUIET") is True  # asked twice: queued once
    assert scheduler.ask("UNKNOWN") is False
    assert scheduler.metrics(0.0)["queue"]["asked"] == 1
    assert scheduler.next_full(2, 0.0) == ["QUIET", "CONTRA"]
    assert scheduler.next_full(20, 0.0) == ["NEW", "OLD"]
    assert scheduler.metrics(0.0)["queue"]["asked"] == 0  # in flight


def test_an_asked_asin_whose_quote_fails_goes_back_to_the_front() -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=1000.0))
    scheduler.load([AsinState("A", stake=1, last_quote_s=-10), AsinState("NEW", stake=1)], 0.0)
    scheduler.ask("A")
    assert scheduler.next_single(0.0) == "A"
    scheduler.quote_failed("A", 1.0)
    assert scheduler.next_full(20, 1.0) == ["A", "NEW"]
    scheduler.quoted("A", 2.0, changed=True)
    scheduler.quoted("NEW", 2.0, changed=False)
    # Quoted: no longer asked; it waits its turn like any other (nothing overdue, nothing new).
    assert scheduler.metrics(2.0)["queue"]["asked"] == 0
    assert scheduler.probe_hits == 0  # an asked quote is not a probe's hit


def test_asking_for_an_asin_in_flight_does_not_hand_it_out_twice() -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=1000.0))
    scheduler.load([AsinState("A", stake=1, last_quote_s=-900)], 0.0)
    assert scheduler.next_full(1, 0.0) == ["A"]  # overdue, in flight
    scheduler.ask("A")
    assert scheduler.next_full(20, 0.0) == []  # the quote under way will tell
    assert scheduler.metrics(0.0)["queue"]["asked"] == 0  # flagged, not queued
    scheduler.quoted("A", 1.0, changed=False)
    assert scheduler.metrics(1.0)["queue"]["asked"] == 0  # answered after the ask: done with
    scheduler.quote_failed("A", 1.0)  # a late failure report of that quote: ignored
    assert scheduler.metrics(1.0)["queue"]["asked"] == 0


def test_an_asked_asin_stays_asked_across_a_reload() -> None:
    scheduler = RefreshScheduler(RefreshPolicy(max_quote_age_s=1000.0))
    scheduler.load([AsinState("A", stake=1, last_quote_s=-10)], 0.0)
    scheduler.ask("A")
    scheduler.load([AsinState("A", stake=1, last_quote_s=-10), AsinState("B", stake=1)], 1.0)
    assert scheduler.next_full(20, 1.0) == ["A", "B"]


def test_staleness_follows_the_effective_bound_in_continuous_mode() -> None:
    daemon = DaemonSettings()  # max_quote_age 6 h, window 1 h, interval 3 h
    # 100,000 ASINs: two passes at 2.5 ASIN/s = 80,000 s; staleness is twice the cadence.
    assert quote_cadence(daemon, True, 100_000) == timedelta(seconds=80_000)
    assert quote_cadence(daemon, True, 16_000) == timedelta(hours=6)
    assert quote_cadence(daemon, False, 100_000) == daemon.period  # a sweep: its interval
