"""The market moving on its own (sim/events.py): reproducible from the seed, skewed as
asked, each kind doing what it says, and its log and hold served over HTTP.

The oracles are written here: a reseller's rule (new, available now, ships within 72 h;
landed = price + shipping) and the buy box (the cheapest featured new offer available now),
applied to the offers the market really holds before and after each event.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from typing import Any

import httpx
import pytest

from ecsync.sim.clock import SimClock
from ecsync.sim.events import MarketEvents
from ecsync.sim.market import Market, Offer, Product
from ecsync.sim.options import SimOptions
from ecsync.sim.seeding import build_state
from ecsync.sim.state import SimState
from tests.sim.conftest import SimClient, SimFactory

TODAY = date(2026, 1, 5)
T0 = 1_767_600_000.0  # 2026-01-05, a fixed start for in-process simulators
HOUR = 3600.0
DAY = 86_400.0
KINDS = {"price_up", "price_down", "sold_out", "restocked", "offer_added", "offer_removed"}


# --- the rules, written out here ------------------------------------------------------


def eligible(offer: Offer) -> bool:
    return offer.sub_condition == "new" and offer.availability == "NOW" and offer.max_hours <= 72


def cost(offers: list[Offer]) -> int | None:
    landed = [o.price + o.shipping for o in offers if eligible(o)]
    return min(landed) if landed else None


def buy_box(offers: list[Offer]) -> Offer | None:
    """The cheapest featured new offer available now (first of those in Amazon's order)."""
    candidates = [o for o in offers if o.featured and o.sub_condition == "new"]
    candidates = [o for o in candidates if o.availability == "NOW"]
    if not candidates:
        return None
    cheapest = min(o.price + o.shipping for o in candidates)
    return next(o for o in candidates if o.price + o.shipping == cheapest)


def landed(offer: Offer | None) -> int | None:
    return None if offer is None else offer.price + offer.shipping


# --- helpers ----------------------------------------------------------------------------


def frozen_state(**options: Any) -> SimState:
    """A whole simulator state (no server) on a clock that stands at T0 exactly and only
    moves when advanced."""
    clock = SimClock(options.get("speed", 1.0), start=T0, real=lambda: 0.0)
    clock.set_frozen(True)
    return build_state(SimOptions(**options), clock)


def run_day(state: SimState, steps: list[float]) -> None:
    for seconds in steps:
        state.clock.advance(seconds)
        state.advance_market()


def all_events(state: SimState) -> list[dict[str, Any]]:
    assert state.events is not None
    return state.events.since(-math.inf)


class Recorder:
    """Every offer change the market reports, with the offers before and after."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.last = {p.index: p.offers for p in market.products}
        self.changes: list[tuple[float, str, list[Offer], list[Offer]]] = []
        market.listener = self.changed

    def changed(self, product: Product, at: float) -> None:
        before = self.market.unpack(self.last[product.index])
        self.last[product.index] = product.offers
        self.changes.append((at, product.asin, before, self.market.offers(product)))


def top_decile_share(events: list[dict[str, Any]], products: int) -> float:
    counts = sorted(Counter(e["asin"] for e in events).values(), reverse=True)
    return sum(counts[: products // 10]) / len(events)


# --- reproducible from the seed -------------------------------------------------------


def test_same_options_same_events_and_market_whatever_clients_do() -> None:
    options = {"products": 400, "seed": 5, "market_rate": 12.0, "drift": 0.0}
    first, second, other = frozen_state(**options), frozen_state(**options), None
    run_day(first, [600.0, 3 * HOUR, 7 * HOUR + 13.5, 10 * HOUR, 4 * HOUR])
    # The second one is asked far more often (every request advances the market) but the
    # clock reaches the same times.
    run_day(second, [1.0] * 30 + [570.0] + [HOUR / 4] * 12 + [4 * HOUR + 13.5])
    run_day(second, [5.0] * 200 + [9 * HOUR] + [HOUR] * 7 + [2600.0])
    assert first.clock.now() == second.clock.now()
    events = all_events(first)
    assert len(events) > 2000  # about 400 x 12 x (24.2 h / 24 h)
    assert events == all_events(second)
    assert [p.offers for p in first.market.products] == [p.offers for p in second.market.products]
    assert {e["kind"] for e in events} == KINDS

    other = frozen_state(**{**options, "seed": 6})
    run_day(other, [24 * HOUR + 600.0 + 13.5])
    assert [(e["t"], e["kind"]) for e in all_events(other)] != [(e["t"], e["kind"]) for e in events]


def test_a_hand_edit_changes_only_its_own_product() -> None:
    options = {"products": 300, "seed": 9, "market_rate": 20.0, "drift": 0.0}
    plain, edited = frozen_state(**options), frozen_state(**options)
    run_day(plain, [6 * HOUR, 18 * HOUR])
    run_day(edited, [6 * HOUR])
    assert edited.events is not None
    rates = edited.events.rates
    target = edited.market.products[max(range(len(rates)), key=rates.__getitem__)]  # a hot one
    edited.market.set_offers(target.asin, [], at=edited.clock.now())  # the control API's PUT
    run_day(edited, [18 * HOUR])

    def others(state: SimState) -> list[dict[str, Any]]:
        return [e for e in all_events(state) if e["asin"] != target.asin]

    def times(state: SimState) -> list[float]:
        return [e["t"] for e in all_events(state) if e["asin"] == target.asin]

    assert others(plain) == others(edited)
    assert times(plain) == times(edited)  # the edited product's events still come on time
    assert times(plain)  # (it has some)
    after = [e for e in all_events(edited) if e["asin"] == target.asin and e["t"] > T0 + 6 * HOUR]
    assert after[0]["kind"] == "restocked"  # emptied by hand, so its next event restocks it


def test_a_held_market_started_later_sees_the_same_day_from_its_start() -> None:
    options = {"products": 300, "seed": 3, "market_rate": 10.0, "drift": 0.0}
    running, held = frozen_state(**options), frozen_state(**options, market_hold=True)
    assert held.events is not None and held.events.held
    untouched = [p.offers for p in held.market.products]
    run_day(held, [5 * HOUR])
    assert all_events(held) == []
    assert [p.offers for p in held.market.products] == untouched
    held.events.start_at(held.clock.now())
    assert held.events.start == T0 + 5 * HOUR
    run_day(held, [HOUR] * 6)
    run_day(running, [HOUR] * 6)

    def offsets(state: SimState) -> list[float]:
        assert state.events is not None
        return [e["t"] - state.events.start for e in all_events(state)]

    def outcomes(state: SimState) -> list[tuple[str, str, int | None, int | None]]:
        return [
            (e["asin"], e["kind"], e["cost_after"], e["buy_box_after"]) for e in all_events(state)
        ]

    assert outcomes(held)
    assert outcomes(held) == outcomes(running)
    assert offsets(held) == pytest.approx(offsets(running), abs=1e-5)


# --- rates ----------------------------------------------------------------------------


@pytest.mark.parametrize("volatility", ["skewed", "uniform"])
def test_rates_average_the_market_rate(volatility: str) -> None:
    market = Market.generate(4, 1000, TODAY)
    events = MarketEvents(market, 4, 10.0, volatility, T0)
    assert len(events.rates) == 1000
    assert sum(events.rates) / 1000 == pytest.approx(10.0)
    events.advance(T0 + DAY)
    log = events.since(T0)
    # A Poisson count of mean 10,000: 4 % is about four standard deviations.
    assert abs(len(log) - 10_000) < 400
    assert all(T0 <= e["t"] <= T0 + DAY for e in log)
    assert [e["t"] for e in log] == sorted(e["t"] for e in log)


def test_skewed_rates_make_a_tenth_of_the_products_make_most_events() -> None:
    market = Market.generate(4, 1000, TODAY)
    skewed = MarketEvents(market, 4, 10.0, "skewed", T0)
    skewed.advance(T0 + DAY)
    assert top_decile_share(skewed.since(T0), 1000) > 0.5

    market = Market.generate(4, 1000, TODAY)
    uniform = MarketEvents(market, 4, 10.0, "uniform", T0)
    uniform.advance(T0 + DAY)
    # Poisson counts of mean 10: the busiest tenth makes about 15 % of the events.
    assert 0.1 <= top_decile_share(uniform.since(T0), 1000) <= 0.2


def test_bad_rates_are_refused() -> None:
    market = Market.generate(1, 10, TODAY)
    with pytest.raises(ValueError, match="rate"):
        MarketEvents(market, 1, -1.0, "skewed", T0)
    with pytest.raises(ValueError, match="volatility"):
        MarketEvents(market, 1, 1.0, "bursty", T0)


# --- what each kind does ---------------------------------------------------------------


def test_each_kind_does_what_it_says() -> None:
    market = Market.generate(11, 1500, TODAY)
    recorder = Recorder(market)
    events = MarketEvents(market, 11, 8.0, "skewed", T0)
    events.advance(T0 + DAY)
    log = events.since(T0)
    assert len(log) == len(recorder.changes) > 8000
    seen: Counter[str] = Counter()
    for event, (at, asin, before, after) in zip(log, recorder.changes, strict=True):
        kind = event["kind"]
        seen[kind] += 1
        assert (event["t"], event["asin"]) == (at, asin)
        # The log says what the market really did, by the rules written here.
        assert event["cost_before"] == cost(before)
        assert event["cost_after"] == cost(after)
        assert event["buy_box_before"] == landed(buy_box(before))
        assert event["buy_box_after"] == landed(buy_box(after))
        if cost(before) is None:
            assert kind == "restocked"
        if kind == "restocked":
            assert cost(before) is None and cost(after) is not None
        elif kind == "sold_out":
            assert cost(before) is not None and cost(after) is None
            assert Counter(after) <= Counter(before)  # nothing new came
            seen["sold_out_box_stays" if buy_box(after) else "sold_out_box_gone"] += 1
        elif kind in ("offer_added", "offer_removed"):
            assert buy_box(after) == buy_box(before)  # the same offer holds it
            added, removed = Counter(after) - Counter(before), Counter(before) - Counter(after)
            difference, none = (added, removed) if kind == "offer_added" else (removed, added)
            assert sum(difference.values()) == 1 and not none
            (changed,) = difference
            assert eligible(changed)
            box = buy_box(before)
            if kind == "offer_added" and box is not None:
                assert landed(changed) > landed(box)  # type: ignore[operator]
            if kind == "offer_removed":
                assert changed != box
                if cost(after) != cost(before):
                    seen["removed_raises_cost"] += 1
                    assert cost(after) is None or cost(after) > cost(before)  # type: ignore[operator]
                if cost(after) is None:
                    seen["removed_last_eligible"] += 1
        else:
            assert kind in ("price_up", "price_down")
            old = sorted(o.price for o in before)
            new = sorted(o.price for o in after)
            factor = new[-1] / old[-1]
            if kind == "price_up":
                assert 1.04 <= factor <= 1.31
            else:
                assert 0.69 <= factor <= 0.96
            for was, now in zip(old, new, strict=True):
                assert abs(now - was * factor) <= 1 + was * 0.01
            assert sorted(o.shipping for o in before) == sorted(o.shipping for o in after)
    assert set(seen) >= KINDS
    for variant in ("sold_out_box_stays", "sold_out_box_gone", "removed_raises_cost"):
        assert seen[variant] > 0, variant
    assert seen["removed_last_eligible"] > 0
    # The documented weights: price moves dominate among products that have a source.
    drawn = sum(seen[k] for k in KINDS - {"restocked"})
    assert 0.45 < (seen["price_up"] + seen["price_down"]) / drawn < 0.65


def test_every_event_tells_the_listener_at_its_own_time() -> None:
    market = Market.generate(2, 200, TODAY)
    calls: list[tuple[str, float, int]] = []
    market.listener = lambda product, at: calls.append((product.asin, at, product.version))
    events = MarketEvents(market, 2, 24.0, "uniform", T0)
    assert events.advance(T0 + 2 * HOUR) == len(calls) > 0
    assert [(a, t) for a, t, _ in calls] == [(e["asin"], e["t"]) for e in events.since(T0)]
    assert all(v > 0 for _, _, v in calls)  # each change bumped the product's version


def test_an_idle_advance_does_nothing() -> None:
    market = Market.generate(2, 50, TODAY)
    events = MarketEvents(market, 2, 1.0, "uniform", T0)
    applied = events.advance(T0 + DAY)
    first = events.since(T0)
    assert events.advance(T0 + DAY) == 0
    assert events.advance(T0 + 10) == 0  # an earlier time never re-applies
    assert events.since(T0) == first
    assert applied == len(first)


def test_the_log_keeps_the_newest_and_says_when_it_dropped() -> None:
    market = Market.generate(2, 100, TODAY)
    events = MarketEvents(market, 2, 50.0, "uniform", T0, keep=100)
    events.advance(T0 + DAY)
    assert events.applied > 1000
    kept = events.since(-math.inf)
    assert 100 <= len(kept) <= 113
    report = events.report(T0 + DAY, T0, 10)
    assert report["truncated"] is True
    assert report["count"] == len(kept)
    assert events.report(T0 + DAY, kept[1]["t"], 10)["truncated"] is False


# --- over HTTP ------------------------------------------------------------------------


def events_answer(sim: SimClient, **params: Any) -> httpx.Response:
    return sim.http.get("/_sim/market/events", params=params)


def test_events_since_over_http(make_sim: SimFactory) -> None:
    sim = make_sim(market_rate=40.0, volatility="uniform", products=80)
    start = sim.freeze()
    summary = sim.control("GET", "/market")
    assert summary["held"] is False and summary["rate"] == 40.0
    now = sim.advance(6 * HOUR)
    everything = sim.control("GET", "/market/events?limit=500000")
    assert everything["now"] == now
    assert everything["start"] <= start
    events = everything["events"]
    assert len(events) == everything["count"] > 400  # the request applied what was due
    assert everything["truncated"] is False
    assert Counter(e["kind"] for e in events) == {
        k: n for k, n in everything["by_kind"].items() if n
    }
    assert all(start <= e["t"] <= now for e in events)
    middle = events[len(events) // 2]["t"]
    later = sim.control("GET", f"/market/events?since={middle}")
    assert later["since"] == middle
    assert later["events"] == [e for e in events if e["t"] >= middle]
    assert later["count"] == len(later["events"])
    few = sim.control("GET", f"/market/events?since={middle}&limit=3")
    assert few["events"] == later["events"][:3] and few["count"] == later["count"]
    assert few["more"] is True
    # The log agrees with the market: the last event of an ASIN left its current cost.
    last = {e["asin"]: e for e in events}
    for asin, event in list(last.items())[:15]:
        offers = [Offer.from_json(o) for o in sim.control("GET", f"/amazon/{asin}")["offers"]]
        assert event["cost_after"] == cost(offers)
        assert event["buy_box_after"] == landed(buy_box(offers))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("since=yesterday", "since"),
        ("since=nan", "since"),
        ("since=FUTURE", "future"),
        ("limit=-1", "limit"),
        ("limit=many", "limit"),
        ("limit=1.5", "limit"),
    ],
)
def test_bad_event_queries_answer_400(make_sim: SimFactory, query: str, reason: str) -> None:
    sim = make_sim(market_rate=1.0, products=20)
    now = sim.freeze()
    response = sim.http.get(f"/_sim/market/events?{query.replace('FUTURE', str(now + 60))}")
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_a_still_market_lists_nothing(make_sim: SimFactory) -> None:
    sim = make_sim(products=20)
    sim.freeze()
    sim.advance(DAY)
    answer = sim.control("GET", "/market/events")
    assert answer["events"] == [] and answer["count"] == 0 and answer["rate"] == 0
    response = sim.http.post("/_sim/market/start")
    assert response.status_code == 409
    assert "does not move" in response.json()["error"]


def test_market_hold_and_start_over_http(make_sim: SimFactory) -> None:
    sim = make_sim(market_rate=30.0, products=60, market_hold=True)
    sim.freeze()
    asins = sim.asins(60)
    before = {a: sim.control("GET", f"/amazon/{a}")["offers"] for a in asins}
    sim.advance(DAY)
    held = sim.control("GET", "/market/events")
    assert held["held"] is True and held["count"] == 0
    assert {a: sim.control("GET", f"/amazon/{a}")["offers"] for a in asins} == before
    started = sim.http.post("/_sim/market/start")
    assert started.status_code == 200, started.text
    body = started.json()
    now = sim.control("GET", "/clock")["now"]
    assert body["held"] is False and body["start"] == now and "events" not in body
    again = sim.http.post("/_sim/market/start")
    assert again.status_code == 409 and "already moving" in again.json()["error"]
    sim.advance(2 * HOUR)
    moved = sim.control("GET", "/market/events")
    assert moved["count"] > 50  # about 60 x 30 / 12
    assert all(now <= e["t"] <= now + 2 * HOUR for e in moved["events"])
    assert sim.control("GET", "/market")["applied"] == moved["count"]


# --- the command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--market-rate", "-1"], "--market-rate must be 0 or more"),
        (["--volatility", "foo"], "--volatility must be skewed or uniform"),
    ],
)
def test_bad_market_options_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ecsync", "sim", "--products", "5", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done
    assert message in done.stderr
