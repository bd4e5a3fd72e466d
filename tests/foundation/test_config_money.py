"""A pricing strategy that would list under the cost by design is refused at load, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ecsync.config import load_settings
from ecsync.errors import ConfigError
from tests.conftest import CliResult


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[pricing.cheap]\nkind = "markup"\nratio = 0.5\n',
            "pricing.cheap: ratio = 0.5 is under 1",
        ),
        (
            '[pricing.cheap]\nkind = "tiered"\ntiers = [[1000, 1.4], [5000, 0.95]]\n',
            "pricing.cheap: tiers[1] (5000 yen): ratio 0.95 is under 1",
        ),
        (
            '[pricing.cheap]\nkind = "tiered"\nabove_ratio = 0.9\n',
            "pricing.cheap: above_ratio = 0.9 is under 1",
        ),
        (
            '[pricing.cheap]\nkind = "ebay_formula"\nmargin_rate = -0.1\n',
            "pricing.cheap: margin_rate = -0.1 is negative",
        ),
        (
            '[pricing.cheap]\nkind = "markup"\nmin_margin = -0.05\n',
            "pricing.cheap: min_margin = -0.05 is negative",
        ),
    ],
)
def test_a_strategy_under_cost_is_refused_naming_file_and_key(
    write_config: Callable[[str], Path], body: str, expected: str
) -> None:
    path = write_config(body)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(
    "body",
    [
        '[pricing.even]\nkind = "markup"\nratio = 1\n',
        '[pricing.even]\nkind = "tiered"\ntiers = [[1000, 1]]\nabove_ratio = 1\n',
        '[pricing.even]\nkind = "ebay_formula"\nmargin_rate = 0\n',
        # A ratio the strategy does not use is not judged.
        '[pricing.even]\nkind = "ebay_formula"\nratio = 0.5\n',
    ],
)
def test_ratios_of_one_and_unused_fields_are_accepted(
    write_config: Callable[[str], Path], body: str
) -> None:
    assert "even" in load_settings(write_config(body)).strategies


def test_the_cli_exits_2_with_the_reason(
    write_config: Callable[[str], Path], cli: Callable[..., CliResult]
) -> None:
    path = write_config('[pricing.cheap]\nkind = "markup"\nratio = 0.5\n')
    result = cli("--config", str(path), "status")
    assert result.code == 2
    assert f"{path}: pricing.cheap: ratio = 0.5 is under 1" in result.err
