"""The simulator's own "correctly synced" rules, against hand-computed values, and the seal
that keeps the simulator from borrowing ecsync's client code."""

from __future__ import annotations

import ast
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from ecsync.sim.market import Offer
from ecsync.sim.synced import base_price, ebay_price, source_cost

SIM = Path(__file__).resolve().parents[2] / "src" / "ecsync" / "sim"
FORBIDDEN = ("ecsync.domain", "ecsync.engine", "ecsync.channels", "ecsync.store")


def test_source_is_the_cheapest_landed_new_offer_available_now_within_72_hours() -> None:
    offers = [
        Offer("A1", price=1000, shipping=500),  # landed 1,500
        Offer("A2", price=1300, shipping=0, max_hours=72),  # landed 1,300: the source
        Offer("A3", price=800, sub_condition="good"),  # used
        Offer("A4", price=900, max_hours=96),  # ships too late
        Offer("A5", price=700, availability="FUTURE_WITHOUT_DATE"),  # not available now
        Offer("A6", price=1250, shipping=100),  # landed 1,350
    ]
    assert source_cost(offers) == 1300
    assert source_cost(offers[2:5]) is None
    assert source_cost([]) is None


def test_base_markup_by_hand() -> None:
    assert base_price(1000) == 1300
    assert base_price(1234) == 1600  # 1,604.2
    assert base_price(1250) == 1630  # 1,625: the half goes up
    assert base_price(10) == 20  # 13 -> 10 is under the floor 10.5: the next step up


def test_ebay_formula_by_hand() -> None:
    assert ebay_price(3000) == Decimal("104.17")  # 7,500 / 0.48 / 150 = 104.1666...
    assert ebay_price(1500) == Decimal("83.33")  # 6,000 / 0.48 / 150 = 83.333...
    assert ebay_price(9) == Decimal("62.63")  # 4,509 / 0.48 / 150 = 62.625: the half goes up


def _imported(tree: ast.AST, package: str) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against ecsync.sim
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts)
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_sim_imports_nothing_from_the_client() -> None:
    files = sorted(SIM.glob("*.py"))
    assert len(files) > 10
    bad = [
        f"{path.name}: {name}"
        for path in files
        for name in _imported(ast.parse(path.read_text(encoding="utf-8")), "ecsync.sim")
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    ]
    assert not bad, bad


def test_loading_every_sim_module_loads_no_client_module() -> None:
    modules = [f"ecsync.sim.{path.stem}" for path in sorted(SIM.glob("*.py"))]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
