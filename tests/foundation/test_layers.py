"""Channels stay sealed behind their port, checked on the source itself.

The store and the pure domain import nothing from ``ecsync.channels``, and no module outside
``channels/``, ``config.py`` and the simulator compares a value with a platform name: a
channel's differences live in its registered kind (``channels/kinds.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ecsync

SRC = Path(ecsync.__file__).parent
PLATFORM_NAMES = {"base", "ebay"}


def _modules(*parts: str) -> list[Path]:
    return sorted((SRC.joinpath(*parts)).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_store_and_domain_import_nothing_from_channels() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for layer in ("store", "domain")
        for path in _modules(layer)
        for name in _imports(path)
        if name == "ecsync.channels" or name.startswith("ecsync.channels.")
    ]
    assert offenders == []


def _platform_checks(path: Path) -> list[str]:
    """Comparisons (==, !=, in, not in) whose operand is a platform name literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        literals: list[ast.expr] = []
        for operand in operands:
            if isinstance(operand, ast.Tuple | ast.List | ast.Set):
                literals.extend(operand.elts)
            else:
                literals.append(operand)
        if any(isinstance(v, ast.Constant) and v.value in PLATFORM_NAMES for v in literals):
            where = path.relative_to(SRC) if SRC in path.parents else path.name
            found.append(f"{where}:{node.lineno}")
    return found


def test_no_platform_name_checks_outside_channels_and_config() -> None:
    allowed = {SRC / "config.py"}
    sealed = {SRC / "channels", SRC / "sim"}
    offenders = [
        where
        for path in _modules()
        if path not in allowed and not any(folder in path.parents for folder in sealed)
        for where in _platform_checks(path)
    ]
    assert offenders == []


def test_the_check_sees_a_platform_comparison(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('def f(p):\n    return p == "ebay" or p in ("base", "x")\n')
    assert len(_platform_checks(sample)) == 2
