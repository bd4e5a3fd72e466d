"""Every class of configuration error names file, key and reason, and exits 2."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ecsync.config import load_settings, parse_duration
from ecsync.errors import ConfigError
from tests.conftest import CliResult


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[[accounts]]\nname = "a"\nplatform = "amazon"\n',
            "accounts[0].platform: must be 'base' or 'ebay'",
        ),
        (
            '[[accounts]]\nname = "a"\nplatform = "base"\n[[accounts]]\nname = "b"\nplatform = "shopify"\n',
            "accounts[1].platform: must be 'base' or 'ebay'",
        ),
        (
            '[[accounts]]\nname = "a"\nplatform = "base"\ncolour = "red"\n',
            "accounts[0].colour: unknown key",
        ),
        ("[databse]\nurl = 'x'\n", "databse: unknown key"),
        ('[[accounts]]\nplatform = "base"\n', "accounts[0].name: Field required"),
        ('[[accounts]]\nname = "a b"\nplatform = "base"\n', "accounts[0].name: use only letters"),
        ('[daemon]\ninterval = "soon"\n', "daemon.interval: not a duration: 'soon'"),
        ('[daemon]\ninterval = "-5m"\n', "daemon.interval: not a duration"),
        (
            "[amazon]\nmax_retries = -1\n",
            "amazon.max_retries: Input should be greater than or equal to 0",
        ),
        (
            "[amazon]\nconnect_timeout_s = 'fast'\n",
            "amazon.connect_timeout_s: Input should be a valid number",
        ),
        (
            '[logging]\nlevel = "LOUD"\n',
            "logging.level: must be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (
            '[[accounts]]\nname = "a"\nplatform = "base"\non_stale = "panic"\n',
            "accounts[0].on_stale: must be 'hide' or 'keep'",
        ),
        (
            '[[accounts]]\nname = "a"\nplatform = "base"\n[[accounts]]\nname = "a"\nplatform = "ebay"\n',
            "accounts[1].name: duplicate account name 'a'",
        ),
        (
            '[[accounts]]\nname = "a"\nplatform = "base"\npricing = "cheap"\n',
            "accounts[0].pricing: unknown pricing strategy 'cheap'",
        ),
        (
            '[pricing.x]\nkind = "ebay_formula"\nfee_rate = 0.5\nduty_rate = 0.3\nmargin_rate = 0.3\n',
            "pricing.x: fee_rate + duty_rate + margin_rate must stay below 1",
        ),
        (
            '[pricing.x]\nkind = "discount"\n',
            "pricing.x.kind: must be 'markup', 'tiered' or 'ebay_formula'",
        ),
        (
            "[guards]\nmax_hide_fraction = 2\n",
            "guards.max_hide_fraction: Input should be less than or equal to 1",
        ),
        ("[[accounts]\nname = 1\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_reason(
    write_config: Callable[[str], Path], body: str, expected: str
) -> None:
    path = write_config(body)
    message = _error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_missing_explicit_file_is_an_error(workdir: Path) -> None:
    assert "no such file" in _error(workdir / "nope.toml")


def test_no_file_at_default_location_gives_defaults(workdir: Path) -> None:
    settings = load_settings(None)
    assert settings.accounts == []
    assert settings.database_url.endswith("/ecsync.db")


def test_config_env_variable_picks_the_file(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config('[daemon]\ninterval = "30m"\n', name="other.toml")
    monkeypatch.setenv("ECSYNC_CONFIG", str(path))
    assert load_settings(None).daemon.interval == timedelta(minutes=30)


def test_environment_overrides_file_and_supplies_secrets(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        '[database]\nurl = "sqlite:///file.db"\n[amazon]\nclient_id = "id-from-file"\n'
        '[[accounts]]\nname = "base-main"\nplatform = "base"\n'
    )
    monkeypatch.setenv("ECSYNC_DATABASE__URL", "sqlite:///env.db")
    monkeypatch.setenv("ECSYNC_AMAZON__CLIENT_SECRET", "amazon-secret-from-env")
    monkeypatch.setenv("ECSYNC_ACCOUNT__BASE_MAIN__REFRESH_TOKEN", "base-refresh-from-env")
    settings = load_settings(path)
    assert settings.database_url == "sqlite:///env.db"
    assert settings.amazon.client_id == "id-from-file"
    assert settings.amazon.client_secret.get_secret_value() == "amazon-secret-from-env"
    assert settings.account("base-main").refresh_token.get_secret_value() == "base-refresh-from-env"


def test_bad_environment_value_is_named(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config("")
    monkeypatch.setenv("ECSYNC_AMAZON__MAX_RETRIES", "many")
    assert "amazon.max_retries" in _error(path)


def test_strategy_rounding_defaults_follow_the_currency(
    write_config: Callable[[str], Path],
) -> None:
    settings = load_settings(write_config('[pricing.mine]\nkind = "ebay_formula"\nusd_jpy = 150\n'))
    assert settings.strategies["mine"].round_to == Decimal("0.01")
    assert settings.strategies["markup"].round_to == 10


def test_platform_defaults(write_config: Callable[[str], Path]) -> None:
    settings = load_settings(write_config())
    base, ebay = settings.account("base-1"), settings.account("ebay-1")
    assert (base.pricing, base.endpoint, base.min_change, base.min_change_pct) == (
        "markup",
        "https://api.thebase.in",
        10,
        1,
    )
    assert (ebay.pricing, ebay.endpoint, ebay.min_change, ebay.min_change_pct) == (
        "ebay_formula",
        "https://api.ebay.com",
        Decimal("0.10"),
        1,
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("3h", 10800), ("30m", 1800), ("900s", 900), ("1.5h", 5400), (45, 45)]
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0", "0s", "0h", 0])
def test_zero_is_a_duration_only_where_allowed(text: str | int) -> None:
    # A config interval of 0 is refused; `daemon --interval 0` (back to back) allows it.
    with pytest.raises(ValueError, match="duration must be positive"):
        parse_duration(text)
    assert parse_duration(text, allow_zero=True) == timedelta(0)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("-1s", allow_zero=True)


def test_cli_exits_2_with_the_message(
    write_config: Callable[[str], Path], cli: Callable[..., CliResult]
) -> None:
    path = write_config('[[accounts]]\nname = "a"\nplatform = "amazon"\n')
    result = cli("--config", str(path), "accounts", "list")
    assert result.code == 2
    assert f"{path}: accounts[0].platform: must be 'base' or 'ebay'" in result.err
