"""benchmarks/day.py without running a day: its command line refuses bad input naming the
option, and its figures are read from the simulator's documented answers (n/a where a key
is missing), in the units the issue asks for (minutes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _day() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_day", ROOT / "benchmarks" / "day.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # it puts benchmarks/ first to import its harness: not for others
    return module


day = _day()


def test_defaults_are_the_reference_day() -> None:
    args = day.parse_args([])
    assert (args.products, args.speed, args.hours) == (16_000, 100.0, 24.0)
    assert (args.volatility, args.market_rate, args.interval, args.seed) == ("skewed", 1.0, "0", 1)
    assert not args.json and not args.reference
    assert day.parse_args(["--interval", "3h"]).interval == "3h"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--products", "0"], "--products: must be 1 or more, got 0"),
        (["--products", "many"], "--products: not a whole number: 'many'"),
        (["--speed", "-1"], "--speed: must be more than 0"),
        (["--hours", "nan"], "--hours: not a finite number: 'nan'"),
        (["--market-rate", "-0.5"], "--market-rate: must be 0 or more"),
        (["--volatility", "wild"], "--volatility: invalid choice: 'wild'"),
        (["--interval=-1h"], "--interval: not a duration: '-1h'"),
        (["--interval", "soon"], "--interval: not a duration: 'soon'"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        day.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


FIG: dict[str, Any] = {
    "listings": 120,
    "buyable": 100,
    "oversell_s": 900.0,
    "oversold_now": 1,
    "under_cost_s": 120.0,
    "under_cost_yen_s": 6000.0,
    "under_cost_now": 0,
    "sellouts": {
        "count": 7,
        "exposed": 5,
        "still_exposed": 1,
        "ended_by_restock": 2,
        "latency_s": {"p50": 60.0, "p95": 300.0, "max": 600.0},
    },
}


def test_figures_from_the_documented_answers() -> None:
    result = {
        "exposure": {"total": FIG, "accounts": {"base-1": FIG}},
        "events": {"count": 9, "by_kind": {"sold_out": 4, "price_up": 5}},
        "stats": {
            "spapi": {
                "requests": {"getItemOffersBatch": 40, "getItemOffers": 2},
                "throttled": 3,
                "throttled_by_operation": {"getItemOffersBatch": 3},
                "asins_by_operation": {"getItemOffersBatch": 800, "getItemOffers": 2},
            },
            "base": {"base-1": {"reads": 5, "writes": 11}, "base-2": {"reads": 1, "writes": 2}},
            "ebay": {"ebay-1": {"reads": 0, "writes": 4, "feed_calls": 6}},
        },
        "daemon": {"cycles": 3, "cycles_by_status": {"ok": 3}},
        "peak_rss_mib": {"daemon": 120.5, "simulator": 90.0},
    }
    rows = dict(day.figures(result))
    # seconds in the answers, minutes in the figures: 900 s = 15 min, 6000 yen-s = 100 yen-min
    assert rows["oversell listing-min"] == 15.0
    assert rows["under-cost listing-min"] == 2.0
    assert rows["under-cost yen-min"] == 100.0
    assert (rows["sell-outs"], rows["sell-outs exposed"], rows["sell-outs still exposed"]) == (
        7,
        5,
        1,
    )
    assert rows["sell-out latency p50 min"] == 1.0
    assert rows["sell-out latency p95 min"] == 5.0
    assert rows["sell-out latency max min"] == 10.0
    assert rows["market events"] == 9 and rows["  events sold_out"] == 4
    assert rows["SP-API requests"] == 42
    assert rows["  getItemOffersBatch throttled"] == 3
    assert rows["  getItemOffers throttled"] == 0
    assert rows["  getItemOffersBatch ASINs"] == 800
    assert rows["BASE writes"] == 13 and rows["eBay writes"] == 4 and rows["eBay feed calls"] == 6
    assert rows["daemon cycles"] == 3 and rows["daemon peak RSS MiB"] == 120.5


def test_missing_figures_are_none_and_print_n_a() -> None:
    rows = dict(day.figures({"exposure": {}, "stats": {"spapi": {"requests": {}}}}))
    assert rows["oversell listing-min"] is None
    assert rows["sell-out latency p95 min"] is None
    assert rows["market events"] is None
    assert rows["BASE writes"] is None
    assert day._fmt(None) == "n/a"
    assert (
        day.ratio(None, 1.0) == "n/a"
        and day.ratio(0.0, 0.0) == "="
        and day.ratio(3.0, 2.0) == ("1.500")
    )
    null_latency = {"total": {"sellouts": {"latency_s": {"p50": None}}}}
    assert dict(day.figures({"exposure": null_latency}))["sell-out latency p50 min"] is None
