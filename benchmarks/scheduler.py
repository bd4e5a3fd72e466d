"""The refresh scheduler alone: its CPU and memory at 100,000 ASINs, and what it gains over a sweep.

A seeded simulation, no network: N ASINs whose market changes as Poisson processes with
skewed true rates (``--volatility skewed``: 5 % at 12/day, 15 % at 2/day, 80 % at 1/8 a day,
mean 1/day; ``uniform``: all 1/day), served at the documented quotas for H simulated hours:

- getItemOffersBatch: ``next_full(20)`` every 10 s (2 ASIN/s), answered 2 s later;
- getItemOffers: ``next_single`` every 2 s (0.5 ASIN/s);
- getCompetitivePricing: ``next_probe(20)`` every 2 s (10 ASIN/s). A probe sees a pending
  change with probability ``--probe-sees`` per market event (changes the Buy Box and the
  offer count do not show stay invisible); what it sees is reported as a difference.

The same market (same seed, events drawn in time order by their own generator) is then
served by a plain round-robin sweep at the same full-quote capacity (2.5 ASIN/s, oldest
quote first, no probes). The exposure proxy is the stake-weighted time a change stays
unquoted: for every change, stake x (time of the quote that saw it - time it happened),
changes still unseen at the end counted up to the end.

Prints the scheduler's CPU seconds per simulated hour (``time.process_time`` around its
calls only, and separately ``metrics`` once a simulated minute), peak RSS of this process,
quote age p50/p95/max at the end, the worst max seen each minute, probe hits, and both
exposures.

    .venv/bin/python benchmarks/scheduler.py [--asins 100000] [--hours 6] [--seed 1]

Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import resource
import time
import tracemalloc
from array import array
from dataclasses import dataclass, field

from ecsync.domain.probes import Contradiction, Difference
from ecsync.domain.refresh import AsinState, RefreshPolicy, RefreshScheduler

DAY = 86_400.0
STEP = 2.0  # seconds between the singles' and the probes' calls
FULL_EVERY = 5  # steps between two batches: 20 ASINs every 10 s
FULL_RATE = 2.0 + 0.5  # ASIN/s of full quotes, batch + single
SEEN = Difference(Contradiction.BUY_BOX_PRICE_UP, "benchmark: a change the probe saw")


def true_rates(n: int, volatility: str, rng: random.Random) -> list[float]:
    """Change rates per second, mean one a day."""
    if volatility == "uniform":
        return [1.0 / DAY] * n
    out = []
    for _ in range(n):
        draw = rng.random()
        per_day = 12.0 if draw < 0.05 else 2.0 if draw < 0.20 else 0.125
        out.append(per_day / DAY)
    return out


@dataclass
class Market:
    """The truth: when each ASIN changed since its last quote, and whether a probe sees it."""

    rates: list[float]
    stakes: list[float]
    seed: int
    dirty_since: array[float] = field(init=False)  # NaN: nothing changed since last quote
    visible: bytearray = field(init=False)
    events: list[tuple[float, int]] = field(init=False)
    exposure: float = 0.0  # stake x seconds a change stayed unquoted
    changes_seen: int = 0
    changes: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        n = len(self.rates)
        self.dirty_since = array("d", [math.nan]) * n
        self.visible = bytearray(n)
        self.events = [(self.rng.expovariate(rate), i) for i, rate in enumerate(self.rates)]
        heapq.heapify(self.events)

    def advance(self, now: float, probe_sees: float) -> None:
        events = self.events
        while events[0][0] <= now:
            t, i = events[0]
            self.changes += 1
            if self.dirty_since[i] != self.dirty_since[i]:
                self.dirty_since[i] = t
            if self.rng.random() < probe_sees:
                self.visible[i] = 1
            heapq.heapreplace(events, (t + self.rng.expovariate(self.rates[i]), i))

    def quote(self, i: int, now: float) -> bool:
        since = self.dirty_since[i]
        if since != since:
            return False
        self.exposure += self.stakes[i] * (now - since)
        self.changes_seen += 1
        self.dirty_since[i] = math.nan
        self.visible[i] = 0
        return True

    def open_exposure(self, now: float) -> float:
        return sum(
            stake * (now - since)
            for stake, since in zip(self.stakes, self.dirty_since, strict=True)
            if since == since
        )


def initial(
    n: int, rates: list[float], history_days: float, rng: random.Random
) -> tuple[list[float], list[float], list[tuple[int, float, int]]]:
    """Stakes, last quotes (as after back-to-back sweeps) and a sweep-paced quote history."""
    sweep = n / FULL_RATE
    stakes = [
        rng.choice((1, 1, 1, 2, 3)) * rng.lognormvariate(math.log(3000.0), 0.8) for _ in range(n)
    ]
    last = [-rng.uniform(0.0, sweep) for _ in range(n)]
    intervals = int(history_days * DAY // sweep)
    history = []
    for rate in rates:
        p = 1.0 - math.exp(-rate * sweep)
        changed = sum(rng.random() < p for _ in range(intervals))
        history.append((changed, intervals * sweep, intervals))
    return stakes, last, history


def run_scheduler(
    args: argparse.Namespace,
    rates: list[float],
    stakes: list[float],
    last: list[float],
    history: list[tuple[int, float, int]],
    max_age: float,
) -> None:
    names = [f"B{i:09d}" for i in range(args.asins)]
    index = {name: i for i, name in enumerate(names)}
    policy = RefreshPolicy(max_quote_age_s=max_age, rebuild_s=args.rebuild_s)
    scheduler = RefreshScheduler(policy)
    states = [
        AsinState(
            names[i],
            stake=stakes[i],
            last_quote_s=last[i],
            changes=c,
            observed_s=o,
            quotes=0 if args.plain_history else k,
        )
        for i, (c, o, k) in enumerate(history)
    ]
    cpu = time.process_time()
    scheduler.load(states, 0.0)
    load_cpu = time.process_time() - cpu
    tracemalloc.start()  # the same load again, to weigh the scheduler's own structures
    twin = RefreshScheduler(policy)
    twin.load(states, 0.0)
    footprint = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    del states, twin
    market = Market(rates, stakes, args.seed)
    end = args.hours * 3600.0
    sched_cpu = metrics_cpu = 0.0
    worst_max = 0.0
    pending: list[str] = []
    quotes = 0
    step = 0
    now = 0.0
    process_time = time.process_time
    while now < end:
        market.advance(now, args.probe_sees)
        for name in pending:  # the batch sent 2 s ago
            changed = market.quote(index[name], now)
            c0 = process_time()
            scheduler.quoted(name, now, changed)
            sched_cpu += process_time() - c0
            quotes += 1
        c0 = process_time()
        pending = scheduler.next_full(20, now) if step % FULL_EVERY == 0 else []
        single = scheduler.next_single(now)
        probes = [] if args.no_probes else scheduler.next_probe(20, now)
        sched_cpu += process_time() - c0
        answers = []
        if single is not None:
            answers.append((single, market.quote(index[single], now)))
        seen = [(name, market.visible[index[name]] == 1) for name in probes]
        c0 = process_time()
        for name, changed in answers:
            scheduler.quoted(name, now, changed)
        for name, visible in seen:
            scheduler.probed(name, now, SEEN if visible else None)
        sched_cpu += process_time() - c0
        quotes += len(answers)
        if step % 30 == 0:
            c0 = process_time()
            figures = scheduler.metrics(now)
            metrics_cpu += process_time() - c0
            worst_max = max(worst_max, figures["quote_age_s"]["max"] or 0.0)
        step += 1
        now = step * STEP
    figures = scheduler.metrics(now)
    exposure = market.exposure + market.open_exposure(now)
    hours = args.hours
    print(
        f"scheduler: {args.asins} ASINs, {hours} simulated h, seed {args.seed}, "
        f"{args.volatility}, max_quote_age {max_age / 3600:.1f} h, rebuild {args.rebuild_s:g} s"
    )
    print(f"  load: {load_cpu:.2f} CPU s, {footprint:.1f} MB allocated by the scheduler")
    print(
        f"  CPU per simulated hour: {sched_cpu / hours:.2f} s (calls) "
        f"+ {metrics_cpu / hours:.2f} s (metrics once a minute)"
    )
    age = figures["quote_age_s"]
    print(
        f"  quote age at the end: p50 {age['p50'] / 3600:.2f} h, p95 {age['p95'] / 3600:.2f} h, "
        f"max {age['max'] / 3600:.2f} h; worst max seen {worst_max / 3600:.2f} h"
    )
    print(
        f"  full quotes {quotes}, probes {figures['probes']}, differences "
        f"{figures['probe_differences']}, hits {figures['probe_hits']}, "
        f"mean rate learned {figures['mean_rate_per_day']:.2f}/day"
    )
    report_exposure("scheduler", market, exposure, hours)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process (market and all): {rss:.0f} MB")
    run_sweep(args, rates, stakes, last, exposure)


def report_exposure(label: str, market: Market, exposure: float, hours: float) -> None:
    per = exposure / max(1, market.changes)
    print(
        f"  {label}: {market.changes} changes, {market.changes_seen} quoted; exposure "
        f"{exposure / 3600 / 1e6:.1f} M yen.h ({per / 3600:.0f} yen.h per change)"
    )


def run_sweep(
    args: argparse.Namespace,
    rates: list[float],
    stakes: list[float],
    last: list[float],
    scheduled: float,
) -> None:
    """The same market served round robin, oldest quote first, at the same full capacity."""
    market = Market(rates, stakes, args.seed)
    order = sorted(range(args.asins), key=last.__getitem__)
    per_step = FULL_RATE * STEP
    end = args.hours * 3600.0
    credit = 0.0
    cursor = 0
    step = 0
    now = 0.0
    while now < end:
        market.advance(now, 0.0)
        credit += per_step
        while credit >= 1.0:
            market.quote(order[cursor], now)
            cursor = (cursor + 1) % len(order)
            credit -= 1.0
        step += 1
        now = step * STEP
    exposure = market.exposure + market.open_exposure(now)
    report_exposure("round-robin sweep", market, exposure, args.hours)
    print(f"  scheduler / sweep exposure: {scheduled / exposure:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asins", type=int, default=100_000)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--volatility", choices=("skewed", "uniform"), default="skewed")
    parser.add_argument(
        "--history-days",
        type=float,
        default=7.0,
        help="sweep-paced quote history loaded at start (0: none)",
    )
    parser.add_argument(
        "--max-age-h",
        type=float,
        default=None,
        help="max_quote_age (default: 6 h or two sweeps, the larger)",
    )
    parser.add_argument("--probe-sees", type=float, default=0.8)
    parser.add_argument("--no-probes", action="store_true")
    parser.add_argument(
        "--plain-history",
        action="store_true",
        help="load the history without its interval count (no censoring correction at load)",
    )
    parser.add_argument("--rebuild-s", type=float, default=300.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rates = true_rates(args.asins, args.volatility, rng)
    stakes, last, history = initial(args.asins, rates, args.history_days, rng)
    sweep = args.asins / FULL_RATE
    max_age = args.max_age_h * 3600.0 if args.max_age_h else max(6 * 3600.0, 2 * sweep)
    run_scheduler(args, rates, stakes, last, history, max_age)


if __name__ == "__main__":
    main()
