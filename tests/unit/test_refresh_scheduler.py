"""The refresh scheduler on plain data: the order of service, in-flight exclusion, what a
failed quote teaches (nothing), rate learning, probes, and the hard max_quote_age bound over
a long seeded run. Every oracle is computed here from the rules written in this file."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from ecsync.domain.probes import Contradiction, Difference
from ecsync.domain.refresh import AsinState, RefreshPolicy, RefreshScheduler

DAY = 86_400.0
GONE = Difference(Contradiction.BUY_BOX_GONE, "Buy Box gone")
UP = Difference(Contradiction.BUY_BOX_PRICE_UP, "Buy Box 1000 -> 1100 JPY")
NONE_LEFT = Difference(Contradiction.NO_NEW_OFFERS, "new offers 2 -> 0")


def _scheduler(states: list[AsinState], now: float = 0.0, **policy: object) -> RefreshScheduler:
    scheduler = RefreshScheduler(RefreshPolicy(**policy))  # type: ignore[arg-type]
    scheduler.load(states, now)
    return scheduler


def _exposure(
    stake: float, changes: int, observed: float, age: float, mean: float, weight: float
) -> float:
    """The priority written out: stake x P(changed during age) at the shrunk rate."""
    rate = (changes + mean * weight) / (observed + weight)
    return stake * (1 - math.exp(-rate * age))


# -- order of service ----------------------------------------------------------------------


def test_contradicted_then_new_then_overdue_then_priority() -> None:
    # max age 1000 s: overdue from 800 s.
    states = [
        AsinState("P_LOW", stake=10, last_quote_s=-100),
        AsinState("P_HIGH", stake=10_000, last_quote_s=-100),
        AsinState("OLD_B", stake=1, last_quote_s=-900),
        AsinState("OLD_A", stake=1, last_quote_s=-950),
        AsinState("NEW_1", stake=1),
        AsinState("NEW_2", stake=1),
        AsinState("C_UP_LATE", stake=1, last_quote_s=-50),
        AsinState("C_UP_EARLY", stake=1, last_quote_s=-50),
        AsinState("C_GONE", stake=1, last_quote_s=-50),
    ]
    scheduler = _scheduler(states, max_quote_age_s=1000.0)
    scheduler.probed("C_UP_LATE", -10, UP)
    scheduler.probed("C_UP_EARLY", -20, UP)
    scheduler.probed("C_GONE", -5, GONE)  # latest, but the most urgent reason
    assert scheduler.next_full(20, 0.0) == [
        "C_GONE",
        "C_UP_EARLY",
        "C_UP_LATE",
        "NEW_1",
        "NEW_2",
        "OLD_A",
        "OLD_B",
        "P_HIGH",
        "P_LOW",
    ]
    assert scheduler.next_full(20, 1.0) == []  # everything is in flight
    assert scheduler.next_single(1.0) is None


def test_next_single_follows_the_same_order() -> None:
    states = [
        AsinState("OLD", stake=1, last_quote_s=-5000),
        AsinState("NEW", stake=1),
        AsinState("C", stake=1, last_quote_s=-10),
    ]
    scheduler = _scheduler(states, max_quote_age_s=5000.0)
    scheduler.probed("C", -1, NONE_LEFT)
    assert [scheduler.next_single(0.0) for _ in range(4)] == ["C", "NEW", "OLD", None]


def test_priority_is_the_expected_exposure_avoided() -> None:
    rng = random.Random(7)
    weight = 86_400.0
    rows = [
        (
            f"A{i:03d}",
            rng.choice([10.0, 500.0, 5_000.0, 50_000.0]),
            rng.randint(0, 30),
            rng.uniform(0, 20 * DAY),
            rng.uniform(10.0, 3_000.0),
        )
        for i in range(60)
    ]
    states = [
        AsinState(a, stake=s, last_quote_s=-age, changes=c, observed_s=o)
        for a, s, c, o, age in rows
    ]
    scheduler = _scheduler(states, max_quote_age_s=10_000.0, prior_weight_s=weight)
    mean = (sum(c for _, _, c, _, _ in rows) + 1.0 / DAY * weight) / (
        sum(o for _, _, _, o, _ in rows) + weight
    )
    expected = sorted(rows, key=lambda r: -_exposure(r[1], r[2], r[3], r[4], mean, weight))
    assert scheduler.next_full(60, 0.0) == [r[0] for r in expected]
    assert scheduler.mean_rate() == pytest.approx(mean)


def test_overdue_is_served_oldest_first_before_a_higher_stake() -> None:
    states = [
        AsinState("RICH", stake=1e9, last_quote_s=-100, changes=50, observed_s=DAY),
        AsinState("LATE_1", stake=1, last_quote_s=-810),  # age 810 >= 0.8 x 1000
        AsinState("LATE_2", stake=1, last_quote_s=-990),
        AsinState("YOUNG", stake=1, last_quote_s=-799),  # just under the threshold
    ]
    scheduler = _scheduler(states, max_quote_age_s=1000.0)
    assert scheduler.next_full(3, 0.0) == ["LATE_2", "LATE_1", "RICH"]
    assert scheduler.metrics(0.0)["queue"]["overdue"] == 0  # both overdue ones in flight


# -- in flight, failures ---------------------------------------------------------------------


def test_an_asin_in_flight_is_handed_out_by_nothing_else() -> None:
    states = [AsinState(f"A{i}", stake=100 - i, last_quote_s=-10.0) for i in range(6)]
    scheduler = _scheduler(states, rebuild_s=0.0)
    first = scheduler.next_full(2, 0.0)
    assert first == ["A0", "A1"]
    assert scheduler.next_single(1.0) == "A2"
    in_flight = {"A0", "A1", "A2"}
    assert in_flight.isdisjoint(scheduler.next_full(10, 2.0))  # A3..A5
    assert scheduler.next_full(10, 3.0) == []
    assert scheduler.metrics(3.0)["queue"]["in_flight"] == 6
    for asin in ("A0", "A1", "A2", "A3", "A4", "A5"):
        scheduler.quoted(asin, 4.0, changed=False)
    scheduler.next_full(1, 5.0)  # A0 again, the highest stake at equal age
    probes = scheduler.next_probe(10, 5.0)
    assert "A0" not in probes and len(probes) == 5


def test_quote_failed_brings_back_where_it_was_without_learning() -> None:
    states = [
        AsinState("C", stake=1, last_quote_s=-100, changes=3, observed_s=DAY),
        AsinState("NEW_1", stake=1),
        AsinState("NEW_2", stake=1),
        AsinState("TOP", stake=1_000, last_quote_s=-500, changes=3, observed_s=DAY),
        AsinState("LOW", stake=1, last_quote_s=-500),
    ]
    scheduler = _scheduler(states, rebuild_s=0.0)
    scheduler.probed("C", -1.0, GONE)
    rates = {asin: scheduler.rate(asin) for asin in ("C", "TOP")}
    mean = scheduler.mean_rate()
    assert scheduler.next_full(4, 0.0) == ["C", "NEW_1", "NEW_2", "TOP"]
    for asin in ("C", "NEW_1", "TOP"):
        scheduler.quote_failed(asin, 10.0)
    assert {asin: scheduler.rate(asin) for asin in ("C", "TOP")} == rates
    assert scheduler.mean_rate() == mean
    assert scheduler.metrics(10.0)["queue"] == {
        "asked": 0,
        "urgent": 1,
        "new": 1,
        "overdue": 0,
        "in_flight": 1,
    }
    # back in front of its class: the contradiction, then the new one, then the priority
    assert scheduler.next_full(3, 20.0) == ["C", "NEW_1", "TOP"]
    scheduler.quoted("C", 30.0, changed=True)
    assert scheduler.probe_hits == 1  # the failure did not use up the contradiction


# -- rates ------------------------------------------------------------------------------------


def test_the_prior_for_an_empty_catalogue_and_a_new_asin() -> None:
    scheduler = _scheduler([AsinState("NEW", stake=1)], prior_rate_per_day=2.0)
    assert scheduler.mean_rate() == pytest.approx(2.0 / DAY)
    assert scheduler.rate("NEW") == pytest.approx(2.0 / DAY)
    states = [
        AsinState("HOT", stake=1, last_quote_s=0, changes=40, observed_s=4 * DAY),
        AsinState("COLD", stake=1, last_quote_s=0, changes=0, observed_s=6 * DAY),
        AsinState("NEW", stake=1),
    ]
    scheduler = _scheduler(states, prior_rate_per_day=2.0, prior_weight_s=DAY)
    mean = (40 + 2.0) / (10 * DAY + DAY)  # the prior counts for one day at 2/day
    assert scheduler.mean_rate() == pytest.approx(mean)
    assert scheduler.rate("NEW") == pytest.approx(mean)  # a new ASIN starts at the catalogue's
    assert scheduler.rate("HOT") == pytest.approx((40 + mean * DAY) / (5 * DAY))
    assert scheduler.metrics(0.0)["mean_rate_per_day"] == pytest.approx(mean * DAY)


@pytest.mark.parametrize("correct", [False, True])
def test_an_asin_that_always_changes_learns_a_higher_rate(correct: bool) -> None:
    states = [AsinState(a, stake=1, last_quote_s=0.0) for a in ("MOVES", "STILL", "OTHER")]
    scheduler = _scheduler(states, correct_censoring=correct, prior_weight_s=DAY)
    for k in range(1, 11):
        scheduler.quoted("MOVES", k * 3600.0, changed=True)
        scheduler.quoted("STILL", k * 3600.0, changed=False)
    moves, still, mean = scheduler.rate("MOVES"), scheduler.rate("STILL"), scheduler.mean_rate()
    assert moves > mean > still
    if not correct:  # plain counting, written out
        assert mean == pytest.approx((10 + 1.0) / (20 * 3600.0 + DAY))
        assert moves == pytest.approx((10 + mean * DAY) / (10 * 3600.0 + DAY))
        assert still == pytest.approx(mean * DAY / (10 * 3600.0 + DAY))
    else:  # each changed interval counts at least one change
        assert scheduler.rate("MOVES") >= (10 + mean * DAY) / (10 * 3600.0 + DAY)


def _learn(rate_per_s: float, interval: float, rounds: int, correct: bool, seed: int) -> float:
    """The rate learned for one ASIN quoted every ``interval`` s while its market changes as a
    Poisson process (the catalogue: that ASIN alone, so the prior barely matters)."""
    rng = random.Random(seed)
    scheduler = _scheduler(
        [AsinState("X", stake=1, last_quote_s=0.0)],
        correct_censoring=correct,
        prior_weight_s=3600.0,
    )
    for k in range(1, rounds + 1):
        changed = rng.random() < 1 - math.exp(-rate_per_s * interval)  # >= 1 event
        scheduler.quoted("X", k * interval, changed=changed)
    return scheduler.rate("X")


def test_the_censoring_correction_recovers_a_hot_rate() -> None:
    hot = 4 / 3600.0  # four changes an hour, quoted hourly: almost every quote changed
    plain = _learn(hot, 3600.0, 400, correct=False, seed=3)
    corrected = _learn(hot, 3600.0, 400, correct=True, seed=3)
    assert plain < 0.3 * hot  # one change per interval at most: about 1/h
    assert 0.6 * hot < corrected < 1.4 * hot
    cold = 0.1 / 3600.0  # rarely more than one change per interval: both agree
    assert _learn(cold, 3600.0, 2000, False, 5) == pytest.approx(cold, rel=0.25)
    assert _learn(cold, 3600.0, 2000, True, 5) == pytest.approx(cold, rel=0.25)


def test_a_stored_history_is_corrected_for_censoring_at_load() -> None:
    weight = DAY
    states = [
        AsinState("SOME", stake=1, last_quote_s=0, changes=3, observed_s=10 * 3600.0, quotes=10),
        AsinState("ALL", stake=1, last_quote_s=0, changes=5, observed_s=5 * 3600.0, quotes=5),
        AsinState("UNKNOWN", stake=1, last_quote_s=0, changes=2, observed_s=3600.0),
    ]
    # 3 of 10 intervals changed: P = 1 - exp(-r d) = 0.3, so r d = -ln 0.7 per interval;
    # every one of 5 changed: capped at 4.5 of 5, r d = -ln 0.1; no interval count: plain.
    events = {"SOME": -10 * math.log(0.7), "ALL": -5 * math.log(0.1), "UNKNOWN": 2.0}
    observed = {"SOME": 10 * 3600.0, "ALL": 5 * 3600.0, "UNKNOWN": 3600.0}
    mean = (sum(events.values()) + 1.0 / DAY * weight) / (sum(observed.values()) + weight)
    scheduler = _scheduler(states, prior_weight_s=weight)
    assert scheduler.mean_rate() == pytest.approx(mean)
    for asin in events:
        expected = (events[asin] + mean * weight) / (observed[asin] + weight)
        assert scheduler.rate(asin) == pytest.approx(expected), asin
    plain = _scheduler(states, prior_weight_s=weight, correct_censoring=False)
    assert plain.mean_rate() == pytest.approx((10 + 1.0) / (sum(observed.values()) + weight))


# -- probes -----------------------------------------------------------------------------------


def test_a_contradicted_asin_jumps_the_queue_and_is_not_probed_again() -> None:
    states = [AsinState("NEW", stake=1)] + [
        AsinState(f"A{i}", stake=10.0 + i, last_quote_s=-1000.0) for i in range(5)
    ]
    scheduler = _scheduler(states, rebuild_s=0.0)
    probed = scheduler.next_probe(20, 0.0)
    assert sorted(probed) == ["A0", "A1", "A2", "A3", "A4"]  # never the never-quoted one
    assert probed[0] == "A4"  # the highest stake at equal age
    for asin in probed:
        scheduler.probed(asin, 1.0, UP if asin == "A1" else None)
    assert scheduler.next_probe(20, 2.0) == ["A4", "A3", "A2", "A0"]  # not the contradicted A1
    assert scheduler.next_single(3.0) == "A1"  # ahead of the new listing
    assert scheduler.next_probe(20, 4.0) == ["A4", "A3", "A2", "A0"]  # in flight: still not
    scheduler.quoted("A1", 5.0, changed=True)
    assert "A1" in scheduler.next_probe(20, 6.0)  # quoted again: probed like any other


def test_probe_age_counts_from_the_later_of_quote_and_probe() -> None:
    states = [AsinState(a, stake=1, last_quote_s=0.0) for a in ("P", "Q", "R")]
    scheduler = _scheduler(states, rebuild_s=0.0)
    scheduler.probed("P", 50.0, None)
    scheduler.quoted("Q", 60.0, changed=False)
    assert scheduler.next_probe(3, 100.0) == ["R", "P", "Q"]


def test_a_never_quoted_or_in_flight_asin_is_never_probed() -> None:
    states = [AsinState("NEW", stake=5), AsinState("OLD", stake=1, last_quote_s=-7000.0)]
    scheduler = _scheduler(states, rebuild_s=0.0)
    assert scheduler.next_probe(5, 0.0) == ["OLD"]
    assert scheduler.next_full(2, 1.0) == ["NEW", "OLD"]
    assert scheduler.next_probe(5, 2.0) == []
    scheduler.probed("OLD", 3.0, GONE)  # a probe sent before: counted, queues nothing
    assert scheduler.metrics(3.0)["queue"]["urgent"] == 0
    assert scheduler.metrics(3.0)["probe_differences"] == 1


def test_probe_hits_count_contradictions_a_full_quote_confirmed() -> None:
    states = [AsinState(a, stake=1, last_quote_s=0.0) for a in ("HIT", "MISS", "PLAIN")]
    scheduler = _scheduler(states)
    scheduler.probed("HIT", 10.0, UP)
    scheduler.probed("MISS", 10.0, GONE)
    scheduler.probed("PLAIN", 10.0, None)
    scheduler.probed("HIT", 11.0, NONE_LEFT)  # a late, more urgent one: still one contradiction
    assert scheduler.next_full(2, 20.0) == ["HIT", "MISS"]  # NO_NEW_OFFERS before BUY_BOX_GONE
    scheduler.quoted("HIT", 30.0, changed=True)
    scheduler.quoted("MISS", 30.0, changed=False)
    scheduler.quoted("PLAIN", 30.0, changed=True)  # never contradicted: no hit
    metrics = scheduler.metrics(30.0)
    assert (metrics["probes"], metrics["probe_differences"], metrics["probe_hits"]) == (4, 3, 1)
    assert metrics["queue"]["urgent"] == 0


def test_unknown_or_removed_asins_are_ignored() -> None:
    scheduler = _scheduler([AsinState("A", stake=1, last_quote_s=0.0), AsinState("B", stake=1)])
    assert scheduler.next_full(1, 0.0) == ["B"]
    scheduler.remove("B")
    scheduler.quoted("B", 1.0, changed=True)
    scheduler.probed("B", 1.0, GONE)
    scheduler.quote_failed("B", 1.0)
    scheduler.quoted("ZZZ", 1.0, changed=True)
    metrics = scheduler.metrics(1.0)
    assert metrics["asins"] == 1 and metrics["queue"]["in_flight"] == 0
    scheduler.add(AsinState("C", stake=1))
    scheduler.add(AsinState("A", stake=9, last_quote_s=None))  # known: only the stake changes
    assert scheduler.next_full(5, 2.0) == ["C", "A"]


def test_load_again_keeps_what_is_in_flight() -> None:
    scheduler = _scheduler([AsinState("A", stake=1, last_quote_s=0.0), AsinState("B", stake=1)])
    assert scheduler.next_full(1, 0.0) == ["B"]
    scheduler.load(
        [
            AsinState("A", stake=1, last_quote_s=0.0),
            AsinState("B", stake=1),
            AsinState("C", stake=1),
        ],
        1.0,
    )
    assert scheduler.next_full(5, 2.0) == ["C", "A"]
    assert scheduler.metrics(2.0)["queue"]["in_flight"] == 3  # B from before the load
    scheduler.add(AsinState("HOT", stake=1, changes=30, observed_s=0.0))  # no interval known
    assert scheduler.mean_rate() == pytest.approx((30 + 1.0) / DAY)
    for asin in ("A", "B", "C", "HOT"):
        scheduler.remove(asin)
    assert scheduler.mean_rate() == pytest.approx(1.0 / DAY)  # nothing left: the prior


# -- metrics, input -----------------------------------------------------------------------------


def test_metrics_quote_ages_and_queue() -> None:
    ages = [float(a) for a in range(1, 101)]  # 1..100 s
    states = [AsinState(f"A{i}", stake=1, last_quote_s=-age) for i, age in enumerate(ages)]
    states += [AsinState("NEW_1", stake=1), AsinState("NEW_2", stake=1)]
    scheduler = _scheduler(states, max_quote_age_s=100.0)  # overdue from 80 s
    scheduler.probed("A0", -0.5, GONE)
    scheduler.probed("A99", -0.5, UP)  # the oldest: contradicted, so not counted overdue
    metrics = scheduler.metrics(0.0)
    assert metrics["quote_age_s"] == {"p50": 50.0, "p95": 95.0, "max": 100.0}
    assert metrics["never_quoted"] == 2
    assert metrics["queue"] == {"asked": 0, "urgent": 2, "new": 2, "overdue": 20, "in_flight": 0}
    assert scheduler.next_full(3, 0.0) == ["A0", "A99", "NEW_1"]
    metrics = scheduler.metrics(0.0)
    assert metrics["queue"] == {"asked": 0, "urgent": 0, "new": 1, "overdue": 20, "in_flight": 3}
    assert metrics["never_quoted"] == 2 and metrics["quote_age_s"]["max"] == 100.0
    assert metrics["asins"] == 102


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"AsinState\('B01'\)\.stake"):
        AsinState("B01", stake=-1)
    with pytest.raises(ValueError, match="observed_s"):
        AsinState("B01", stake=1, observed_s=-5)
    with pytest.raises(ValueError, match="max_quote_age_s"):
        RefreshPolicy(max_quote_age_s=0)
    with pytest.raises(ValueError, match="overdue_share"):
        RefreshPolicy(overdue_share=1.5)
    scheduler = RefreshScheduler()
    with pytest.raises(ValueError, match="ASIN 'B01' given twice"):
        scheduler.load([AsinState("B01", stake=1), AsinState("B01", stake=2)], 0.0)
    with pytest.raises(ValueError, match="next_full: n"):
        scheduler.next_full(-1, 0.0)
    with pytest.raises(ValueError, match="next_probe: n"):
        scheduler.next_probe(-1, 0.0)


def test_calls_between_rebuilds_do_not_rank_every_asin() -> None:
    states = [AsinState(f"A{i}", stake=1 + i % 7, last_quote_s=-float(i)) for i in range(5000)]
    scheduler = _scheduler(states, rebuild_s=60.0, max_quote_age_s=1e9)
    ranked: list[float] = []
    original = scheduler._rebuild

    def counting(*args: object, **kwargs: object) -> None:
        ranked.append(1.0)
        original(*args, **kwargs)  # type: ignore[arg-type]

    scheduler._rebuild = counting  # type: ignore[method-assign]
    for step in range(60):  # one call a second for a minute: 1,200 full quotes
        for asin in scheduler.next_full(20, float(step)):
            scheduler.quoted(asin, float(step) + 0.5, changed=False)
    # the first list holds min_ranked (256); once exhausted the next holds 4x what was taken
    assert len(ranked) <= 3


# -- a long run: the hard bound, and where the quotes go ----------------------------------------


def test_max_quote_age_holds_and_hot_asins_get_more_quotes() -> None:
    rng = random.Random(11)
    max_age = 4000.0
    n = 2000
    hot = {f"B{i:05d}" for i in range(0, n, 10)}  # 10 % churn all day
    true_rate = {f"B{i:05d}": (24.0 if f"B{i:05d}" in hot else 0.2) / DAY for i in range(n)}
    last_quote = {asin: -rng.uniform(0.0, 2000.0) for asin in true_rate}
    states = [AsinState(asin, stake=1000.0, last_quote_s=t) for asin, t in last_quote.items()]
    next_event = {asin: rng.expovariate(rate) for asin, rate in true_rate.items()}
    scheduler = _scheduler(states, max_quote_age_s=max_age, prior_weight_s=3 * 3600.0)
    quotes: Counter[str] = Counter()
    pending: list[str] = []
    step = 10.0  # next_full(10) every 10 s: 1 ASIN/s, a sweep every 2000 s
    t = 0.0
    worst = 0.0
    while t < 6 * max_age:
        for asin in pending:  # answers of the previous step (one step of latency)
            if rng.random() < 0.05:
                scheduler.quote_failed(asin, t)
                continue
            changed = next_event[asin] <= t  # at least one event since the last quote
            while next_event[asin] <= t:
                next_event[asin] += rng.expovariate(true_rate[asin])
            scheduler.quoted(asin, t, changed=changed)
            last_quote[asin] = t
            quotes[asin] += 1
        worst = max(worst, t - min(last_quote.values()))
        assert worst <= max_age, f"an ASIN reached {worst:.0f} s at t={t:.0f}"
        pending = scheduler.next_full(10, t)
        assert len(pending) == len(set(pending)) == 10
        t += step
    # at equal stake the hot ASINs get more quotes (a rate learned, not told)
    hot_mean = sum(quotes[a] for a in hot) / len(hot)
    cold_mean = sum(quotes[a] for a in true_rate if a not in hot) / (n - len(hot))
    assert hot_mean > 3 * cold_mean, (hot_mean, cold_mean)
    assert scheduler.rate("B00000") > scheduler.mean_rate() > scheduler.rate("B00001")


def test_an_asin_whose_quote_errs_goes_behind_its_queue_not_to_its_front() -> None:
    """The single-quote loop asks again as soon as a quote fails: an ASIN getItemOffers
    always refuses, handed back to the front, would be its only work forever. Handed back
    unanswered (a throttle, the window's end), it keeps its place."""
    scheduler = _scheduler([AsinState("BAD", stake=1), AsinState("GOOD", stake=1)])
    assert scheduler.next_single(1.0) == "BAD"
    scheduler.quote_failed("BAD", 2.0)  # throttled: no answer, its place kept
    assert scheduler.next_single(3.0) == "BAD"
    scheduler.quote_failed("BAD", 4.0, error=True)
    assert scheduler.next_single(5.0) == "GOOD"

    urgent = _scheduler(
        [AsinState("X", stake=1, last_quote_s=0.0), AsinState("Y", stake=1, last_quote_s=0.0)]
    )
    gone = Difference(Contradiction.BUY_BOX_GONE, "gone")
    urgent.probed("X", 1.0, gone)
    urgent.probed("Y", 2.0, gone)
    assert urgent.next_single(3.0) == "X"
    urgent.quote_failed("X", 4.0, error=True)
    assert urgent.next_full(2, 5.0) == ["Y", "X"]  # still contradicted, now behind Y
