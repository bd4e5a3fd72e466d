"""A day on the moving market: ``ecsync daemon`` for H simulated hours, and what it cost.

The simulator moves its market on its own (``--market-rate`` events per product per
simulated day, ``--volatility``) and meters the exposure, the simulator's own truth of how
long listings stayed wrong: buyable while the source sold out (oversell), priced below the
source's landed cost (under cost), and how long each sell-out stayed buyable. The market is
held until the shop is set up (init, pull), then started together with the exposure meter
and the stats, and the daemon starts right after: every run with the same seed and options
sees the same simulated day from its start, whatever the daemon does.

    .venv/bin/python benchmarks/day.py [--products 16000] [--speed 100] [--hours 24]
        [--volatility skewed|uniform] [--market-rate 1] [--interval 0] [--seed 1] [--json]
    .venv/bin/python benchmarks/day.py --reference     # interval 0 vs 3h, same simulated day

One simulated hour lasts 3,600 / speed wall seconds (36 s at speed 100: a 24 h day is
864 s per run, plus set-up). ``--interval 0`` runs the daemon's cycles back to back at the
floor of the API rates; the interval is in simulated time (the simulator's config carries
its time scale). Figures the simulator does not serve yet print "n/a".
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from harness import ECSYNC, Shop, peak_rss_mib, simulator_shop

from ecsync.config import parse_duration

HOUR_S = 3600.0
POLL_S = 0.5  # wall seconds between two looks at the simulator clock (and RSS)
CONTINUOUS = "continuous"
STOP_TIMEOUT_S = 30.0  # a daemon stops within 2 s of SIGTERM; this only bounds a wedged one
REFERENCE_INTERVALS = ("0", "3h")


# --- arguments ----------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _rate(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _interval(text: str) -> str:
    """A daemon interval as ``ecsync daemon --interval`` takes it (0: back to back)."""
    try:
        parse_duration(text, allow_zero=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _runs(text: str) -> tuple[str, ...]:
    """``--runs``: each an interval as ``--interval`` takes it, or ``continuous``."""
    runs = tuple(part.strip() for part in text.split(",") if part.strip())
    if not runs:
        raise argparse.ArgumentTypeError("name at least one run")
    return tuple(run if run == CONTINUOUS else _interval(run) for run in runs)


def daemon_args(run: str) -> list[str]:
    """``ecsync daemon`` arguments of one run: ``continuous`` or a sweep interval."""
    if run == CONTINUOUS:
        return ["--mode", "continuous"]
    return ["--mode", "sweep", "--interval", run]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; bad input exits 2 naming the option (argparse's own errors)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=_positive_int, default=16_000)
    parser.add_argument("--speed", type=_positive_float, default=100.0)
    parser.add_argument("--hours", type=_positive_float, default=24.0, help="simulated hours")
    parser.add_argument("--volatility", choices=("skewed", "uniform"), default="skewed")
    parser.add_argument(
        "--market-rate", type=_rate, default=1.0, help="events per product per simulated day"
    )
    parser.add_argument(
        "--interval", type=_interval, default="0", help="the daemon's (simulated) interval"
    )
    parser.add_argument(
        "--mode",
        choices=("sweep", "continuous"),
        default="sweep",
        help="the daemon's mode (continuous: --interval is ignored)",
    )
    parser.add_argument(
        "--runs",
        type=_runs,
        default=None,
        help="runs to compare on the same simulated day, comma separated: an interval "
        "(sweep at that interval) or 'continuous', e.g. continuous,0,3h",
    )
    parser.add_argument(
        "--deadline-fraction",
        type=_positive_float,
        default=1.0,
        help="the daemon's [daemon] deadline_fraction (default 1: at --speed 100 the "
        "governor's real-time jitter margin stretches a 16,000-ASIN sweep to about 2.8 "
        "simulated hours, 2.2 at real speed, which a 3h cycle's default 0.9 would cut)",
    )
    parser.add_argument(
        "--logs", type=Path, default=None, help="keep each run's daemon log in this folder"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.add_argument(
        "--reference",
        action="store_true",
        help=f"run intervals {' and '.join(REFERENCE_INTERVALS)} one after the other and "
        "compare them (--interval is ignored)",
    )
    return parser.parse_args(argv)


# --- talking to the simulator ---------------------------------------------------------------


@dataclass
class Sim:
    """The simulator's control API, tolerant of routes a simulator does not serve yet: a
    missing one answers None and is named once on stderr."""

    http: httpx.Client
    missing: set[str] = field(default_factory=set)

    def call(self, method: str, path: str, **params: Any) -> dict[str, Any] | None:
        try:
            response = self.http.request(method, path, params=params or None)
        except httpx.HTTPError as exc:
            self._missing(f"{method} {path}", f"{type(exc).__name__}: {exc}")
            return None
        if response.status_code != 200:
            self._missing(f"{method} {path}", f"HTTP {response.status_code} {response.text[:200]}")
            return None
        try:
            data = response.json()
        except ValueError:
            self._missing(f"{method} {path}", "not JSON")
            return None
        return data if isinstance(data, dict) else None

    def _missing(self, what: str, why: str) -> None:
        if what not in self.missing:
            self.missing.add(what)
            print(f"day: {what}: {why} (its figures print n/a)", file=sys.stderr)

    def now(self) -> float:
        clock = self.call("GET", "/_sim/clock")
        if clock is None or not isinstance(clock.get("now"), int | float):
            raise SystemExit("day: GET /_sim/clock did not answer the simulated time")
        return float(clock["now"])

    def events(self, since: float) -> dict[str, Any] | None:
        """Counts only: one event listed at most (``count`` and ``by_kind`` are the totals)."""
        return self.call("GET", "/_sim/market/events", since=since, limit=1)


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def minutes(value: Any) -> float | None:
    seconds = number(value)
    return None if seconds is None else seconds / 60


def sim_supports(option: str) -> bool:
    """Whether this ``ecsync sim`` knows ``option`` (a simulator from before issue 10 may not)."""
    done = subprocess.run(
        [*ECSYNC, "sim", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    return option in done.stdout


# --- one run --------------------------------------------------------------------------------


def run_day(args: argparse.Namespace, interval: str) -> dict[str, Any]:
    """One simulated day (``args.hours``) of the daemon at ``interval``; the figures."""
    sim_args = [
        "--products",
        str(args.products),
        "--speed",
        f"{args.speed:g}",
        "--market-rate",
        f"{args.market_rate:g}",
        "--volatility",
        args.volatility,
        "--seed",
        str(args.seed),
        "--drift",
        "0",
    ]
    held = sim_supports("--market-hold")
    if held:
        sim_args.append("--market-hold")
    else:
        print(
            "day: this simulator has no --market-hold: its market moves from its start, so "
            "the set-up's time is part of the day",
            file=sys.stderr,
        )
    wall_started = time.monotonic()
    say(
        f"day: {args.products} products, speed {args.speed:g}, {args.hours:g} h simulated "
        f"({args.hours * HOUR_S / args.speed:.0f} s wall), {args.volatility}, market rate "
        f"{args.market_rate:g}, interval {interval}, seed {args.seed}"
    )
    with simulator_shop(*sim_args) as shop:
        setup_s = time.monotonic() - wall_started
        say(f"day: shop set up (init, pull) in {setup_s:.0f} s")
        result = _run_daemon(shop, args, interval)
        result["wall_s"] = {
            "setup": round(setup_s, 1),
            "day": result.pop("day_wall_s"),
            "total": round(time.monotonic() - wall_started, 1),
        }
        result["options"] = {
            "products": args.products,
            "speed": args.speed,
            "hours": args.hours,
            "volatility": args.volatility,
            "market_rate": args.market_rate,
            "interval": interval,
            "seed": args.seed,
            "market_hold": held,
        }
    return result


def _run_daemon(shop: Shop, args: argparse.Namespace, interval: str) -> dict[str, Any]:
    sim = Sim(shop.http)
    # The same moment for all three: the day, the meter and the counters start together.
    # A still market (rate 0) has no schedule to start (the simulator answers 409).
    started_answer = sim.call("POST", "/_sim/market/start") if args.market_rate > 0 else None
    sim.call("POST", "/_sim/exposure/reset")
    sim.call("POST", "/_sim/stats/reset")
    start = number(dig(started_answer, "start")) or sim.now()
    started_wall = time.time()
    log = (shop.dir / "daemon.out").open("w", encoding="utf-8")
    daemon = subprocess.Popen(
        [*ECSYNC, "daemon", *daemon_args(interval)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**shop.env, "ECSYNC_DAEMON__DEADLINE_FRACTION": f"{args.deadline_fraction:g}"},
    )
    day_started = time.monotonic()
    end = start + args.hours * HOUR_S
    peaks = {"daemon": 0.0, "simulator": 0.0}
    next_hour = 1
    try:
        while True:
            for name, pid in (("daemon", daemon.pid), ("simulator", shop.sim_pid)):
                peaks[name] = max(peaks[name], peak_rss_mib(pid) or 0.0)
            if daemon.poll() is not None:
                raise SystemExit(
                    f"day: the daemon exited ({daemon.returncode}) before the day ended:\n"
                    + (shop.dir / "daemon.out").read_text(errors="replace")[-3000:]
                )
            now = sim.now()
            if now >= start + next_hour * HOUR_S or now >= end:
                _progress(sim, start, now, time.monotonic() - day_started)
                next_hour = int((now - start) // HOUR_S) + 1
            if now >= end:
                break
            # The simulator's clock is this benchmark's time base: poll it, do not race it.
            time.sleep(min(POLL_S, max(0.01, (end - now) / args.speed)))
        day_wall_s = time.monotonic() - day_started
        exposure = sim.call("GET", "/_sim/exposure")
        stats = sim.call("GET", "/_sim/stats")
        events = sim.events(start)
        peaks["simulator"] = max(peaks["simulator"], peak_rss_mib(shop.sim_pid) or 0.0)
    finally:
        peaks["daemon"] = max(peaks["daemon"], peak_rss_mib(daemon.pid) or 0.0)
        stop_started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=30)
        stop_s = time.monotonic() - stop_started
        log.close()
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            kept = args.logs / f"daemon-{args.volatility}-{interval}.log"
            kept.write_bytes((shop.dir / "daemon.out").read_bytes())
    return {
        "day_wall_s": round(day_wall_s, 1),
        "exposure": exposure,
        "stats": stats,
        "events": {k: v for k, v in (events or {}).items() if k != "events"} or None,
        "peak_rss_mib": {k: round(v, 1) if v else None for k, v in peaks.items()},
        "daemon": {
            "exit": daemon.returncode,
            "stop_s": round(stop_s, 2),
            **_cycles(shop, daemon.pid, started_wall, args.speed),
        },
    }


def _progress(sim: Sim, start: float, now: float, wall_s: float) -> None:
    events = sim.events(start)
    exposure = sim.call("GET", "/_sim/exposure")
    oversell = minutes(dig(exposure, "total", "oversell_s"))
    say(
        f"  sim {(now - start) / HOUR_S:5.2f} h  wall {wall_s:6.0f} s  "
        f"events {_fmt(number(dig(events, 'count')))}  "
        f"oversell {_fmt(oversell)} listing-min  "
        f"oversold now {_fmt(number(dig(exposure, 'total', 'oversold_now')))}"
    )


def _cycles(shop: Shop, pid: int, started_wall: float, speed: float) -> dict[str, Any]:
    """The daemon's cycles from its database (the journal every cycle writes), and how long
    after the market's start its first cycle began (its start-up is part of the day)."""
    path = shop.dir / "ecsync.db"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            rows = db.execute(
                "SELECT status, count(*) FROM cycles WHERE pid = ? GROUP BY status", (pid,)
            ).fetchall()
            first = db.execute("SELECT min(started_at) FROM cycles WHERE pid = ?", (pid,))
            first_at = first.fetchone()[0]
    except sqlite3.Error as exc:
        print(f"day: cycles not read from {path}: {exc}", file=sys.stderr)
        return {"cycles": None, "cycles_by_status": None, "first_cycle_after_s": None}
    by_status = {str(status): int(count) for status, count in rows}
    lag = None
    if isinstance(first_at, str):
        at = datetime.fromisoformat(first_at)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)  # the journal stores UTC
        lag = round((at.timestamp() - started_wall) * speed, 1)
    return {
        "cycles": sum(by_status.values()),
        "cycles_by_status": by_status,
        "first_cycle_after_s": lag,  # simulated seconds
    }


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- figures ----------------------------------------------------------------------------------


def figures(result: dict[str, Any]) -> list[tuple[str, float | None]]:
    """The run's figures as (label, value) rows, in the order they print; None is n/a."""
    total = dig(result, "exposure", "total")
    sellouts = dig(total, "sellouts")
    rows: list[tuple[str, float | None]] = [
        ("oversell listing-min", minutes(dig(total, "oversell_s"))),
        ("under-cost listing-min", minutes(dig(total, "under_cost_s"))),
        ("under-cost yen-min", minutes(dig(total, "under_cost_yen_s"))),
        ("listings in scope", number(dig(total, "listings"))),
        ("buyable at the end", number(dig(total, "buyable"))),
        ("sell-outs", number(dig(sellouts, "count"))),
        ("sell-outs exposed", number(dig(sellouts, "exposed"))),
        ("sell-outs still exposed", number(dig(sellouts, "still_exposed"))),
        ("sell-outs ended by restock", number(dig(sellouts, "ended_by_restock"))),
        ("sell-out latency p50 min", minutes(dig(sellouts, "latency_s", "p50"))),
        ("sell-out latency p95 min", minutes(dig(sellouts, "latency_s", "p95"))),
        ("sell-out latency max min", minutes(dig(sellouts, "latency_s", "max"))),
    ]
    events = result.get("events")
    rows.append(("market events", number(dig(events, "count"))))
    by_kind = dig(events, "by_kind")
    for kind in sorted(by_kind) if isinstance(by_kind, dict) else ():
        rows.append((f"  events {kind}", number(by_kind[kind])))
    spapi = dig(result, "stats", "spapi")
    requests = dig(spapi, "requests")
    throttled = dig(spapi, "throttled_by_operation")
    asins = dig(spapi, "asins_by_operation")
    operations = set()
    for table in (requests, throttled, asins):
        if isinstance(table, dict):
            operations |= set(table)
    total_requests = sum(v for v in requests.values()) if isinstance(requests, dict) else None
    rows.append(("SP-API requests", number(total_requests)))
    rows.append(("SP-API throttled", number(dig(spapi, "throttled"))))
    for operation in sorted(operations):
        rows.append((f"  {operation} requests", number(dig(requests, operation) or 0)))
        if isinstance(throttled, dict):
            rows.append((f"  {operation} throttled", number(throttled.get(operation, 0))))
        if isinstance(asins, dict):
            rows.append((f"  {operation} ASINs", number(asins.get(operation, 0))))
    for platform in ("base", "ebay"):
        accounts = dig(result, "stats", platform)
        for kind in ("writes", "reads"):
            value = (
                sum(int(a.get(kind) or 0) for a in accounts.values() if isinstance(a, dict))
                if isinstance(accounts, dict) and accounts
                else None
            )
            rows.append((f"{'BASE' if platform == 'base' else 'eBay'} {kind}", number(value)))
        if platform == "ebay" and isinstance(accounts, dict) and accounts:
            feed = sum(int(a.get("feed_calls") or 0) for a in accounts.values())
            rows.append(("eBay feed calls", number(feed)))
    rows += [
        ("daemon cycles", number(dig(result, "daemon", "cycles"))),
        ("daemon cycles ok", number(dig(result, "daemon", "cycles_by_status", "ok"))),
        ("first cycle after sim-min", minutes(dig(result, "daemon", "first_cycle_after_s"))),
        ("daemon peak RSS MiB", number(dig(result, "peak_rss_mib", "daemon"))),
        ("simulator peak RSS MiB", number(dig(result, "peak_rss_mib", "simulator"))),
        ("daemon stop s", number(dig(result, "daemon", "stop_s"))),
        ("wall s (day)", number(dig(result, "wall_s", "day"))),
        ("wall s (total)", number(dig(result, "wall_s", "total"))),
    ]
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "=" if a == 0 else "inf"
    return f"{a / b:.3f}"


def print_run(result: dict[str, Any]) -> None:
    options = result["options"]
    print(
        f"day: {options['products']} products, {options['hours']:g} h at speed "
        f"{options['speed']:g}, {options['volatility']}, rate {options['market_rate']:g}, "
        f"interval {options['interval']}, seed {options['seed']}"
    )
    rows = figures(result)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {_fmt(value):>14}")
    if dig(result, "daemon", "cycles_by_status"):
        print(f"  cycles by status: {result['daemon']['cycles_by_status']}")


def print_comparison(results: list[dict[str, Any]]) -> None:
    """Each figure side by side, and each later run's ratio to the first run."""
    tables = [dict(figures(result)) for result in results]
    labels: list[str] = []
    for table in tables:
        labels += [label for label in table if label not in labels]
    head = [_run_name(r["options"]["interval"]) for r in results]
    width = max(len(label) for label in labels)
    options = results[0]["options"]
    print(
        f"compared: {options['products']} products, {options['hours']:g} h at speed "
        f"{options['speed']:g}, {options['volatility']}, rate {options['market_rate']:g}, "
        f"seed {options['seed']} (same simulated day); ratios are to {head[0]}"
    )
    ratio_head = "".join(f"  {'ratio ' + str(i + 2):>8}" for i in range(len(results) - 1))
    print(f"  {'':<{width}}" + "".join(f"  {h:>14}" for h in head) + ratio_head)
    for label in labels:
        values = [table.get(label) for table in tables]
        cells = "".join(f"  {_fmt(v):>14}" for v in values)
        ratios = "".join(f"  {ratio(v, values[0]):>8}" for v in values[1:])
        print(f"  {label:<{width}}{cells}{ratios}")


def _run_name(run: str) -> str:
    return "continuous" if run == CONTINUOUS else f"sweep {run}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    single = CONTINUOUS if args.mode == CONTINUOUS else args.interval
    intervals = args.runs or (REFERENCE_INTERVALS if args.reference else (single,))
    compare = len(intervals) > 1
    if compare:
        say(
            f"day: runs {', '.join(_run_name(i) for i in intervals)} one after the other: "
            f"{len(intervals)} x {args.hours * HOUR_S / args.speed:.0f} s wall, plus set-up"
        )
    results = []
    for interval in intervals:
        result = run_day(args, interval)
        results.append(result)
        if not args.json:
            print_run(result)
            sys.stdout.flush()
    if args.json:
        for result in results:
            result["figures"] = {label.strip(): value for label, value in figures(result)}
        if compare:
            print(json.dumps({"reference": results}, default=str))
        else:
            print(json.dumps(results[0], default=str))
    elif compare:
        print_comparison(results)


if __name__ == "__main__":
    main()
