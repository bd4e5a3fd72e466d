"""Settings: one TOML file plus ``ECSYNC_...`` environment overrides, validated up front.

A seller edits this file by hand, so every error must say which file, which key and why,
and nothing may start on a half-valid configuration. Secrets may live in the environment
instead of the file: ``ECSYNC_AMAZON__CLIENT_SECRET`` for Amazon, and
``ECSYNC_ACCOUNT__<NAME>__<FIELD>`` for an account (name upper-cased, other characters as
``_``), e.g. ``ECSYNC_ACCOUNT__BASE_MAIN__REFRESH_TOKEN``.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ecsync.errors import ConfigError

if TYPE_CHECKING:
    from ecsync.channels.kinds import ChannelKind

DEFAULT_CONFIG_NAME = "ecsync.toml"
CONFIG_ENV = "ECSYNC_CONFIG"
JAPAN_MARKETPLACE_ID = "A1VC38T7YXB528"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """Accept ``3h``, ``30m``, ``900s``, ``1.5h``, a plain number of seconds, or a timedelta;
    zero only when ``allow_zero`` (``daemon --interval 0``: back to back)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use e.g. 3h, 30m, 900s)")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"duration must be positive, got {value!r}")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """``url`` is an SQLAlchemy URL; empty means ``ecsync.db`` beside the config file."""

    url: str = ""
    busy_timeout_s: float = Field(default=30.0, gt=0)


class OfferRules(_Section):
    """Which Amazon offers a reseller may buy from (see ``ecsync.domain.quotes``)."""

    max_handling_hours: int = Field(default=72, ge=0)
    allow_future: bool = False
    prime_only: bool = False
    fba_only: bool = False
    subtract_points: bool = False


class AmazonSettings(_Section):
    endpoint: str = "https://sellingpartnerapi-fe.amazon.com"
    token_url: str = "https://api.amazon.com/auth/o2/token"
    marketplace_id: str = JAPAN_MARKETPLACE_ID
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    total_timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    retry_base_s: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=32)
    # Circuit breaker: after this many batches in a row that failed as a whole (5xx,
    # timeouts, malformed answers after every retry), the fetch stops for this cycle.
    outage_batches: int = Field(default=3, ge=1)
    offers: OfferRules = OfferRules()


class PricingStrategy(_Section):
    """A named pricing strategy; ``kind`` picks the formula, the rest are its parameters."""

    kind: Literal["markup", "tiered", "ebay_formula"]
    ratio: Decimal = Decimal("1.3")
    # tiered: [[upper_bound_yen, ratio], ...]; the last ratio applies above the last bound.
    tiers: list[tuple[Decimal, Decimal]] = [
        (Decimal(1000), Decimal("1.4")),
        (Decimal(5000), Decimal("1.3")),
        (Decimal(10000), Decimal("1.25")),
    ]
    above_ratio: Decimal = Decimal("1.2")
    round_to: Decimal = Decimal(10)  # default 10 yen; 0.01 USD for ebay_formula
    # ebay_formula
    shipping_yen: Decimal = Decimal(4000)
    packaging_yen: Decimal = Decimal(500)
    fee_rate: Decimal = Decimal("0.17")
    duty_rate: Decimal = Decimal("0.15")
    margin_rate: Decimal = Decimal("0.20")
    usd_jpy: Decimal = Decimal(150)
    usd_jpy_as_of: str = ""
    usd_jpy_max_age: Duration = timedelta(days=7)
    # every strategy
    min_margin: Decimal = Decimal("0.05")
    ceiling: Decimal | None = None

    @model_validator(mode="before")
    @classmethod
    def _round_to_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "round_to" not in data and data.get("kind") == "ebay_formula":
            return {**data, "round_to": Decimal("0.01")}
        return data

    @property
    def currency(self) -> str:
        """The currency this strategy prices in: the eBay formula converts to USD, the rest
        stay in yen. An account may use it only on a platform listing in that currency."""
        return "USD" if self.kind == "ebay_formula" else "JPY"

    @model_validator(mode="after")
    def _sane(self) -> PricingStrategy:
        if self.round_to <= 0:
            raise ValueError("round_to must be positive")
        if self.kind != "ebay_formula" and self.round_to != self.round_to.to_integral_value():
            raise ValueError("round_to must be whole yen for a yen strategy")
        if self.kind == "ebay_formula" and self.round_to < Decimal("0.01"):
            raise ValueError("round_to must be at least 0.01 (one cent)")
        if self.kind == "ebay_formula":
            denominator = 1 - self.fee_rate - self.duty_rate - self.margin_rate
            if denominator <= 0:
                raise ValueError("fee_rate + duty_rate + margin_rate must stay below 1")
            if self.usd_jpy <= 0:
                raise ValueError("usd_jpy must be positive")
        if self.ratio <= 0 or self.above_ratio <= 0:
            raise ValueError("ratios must be positive")
        self._at_least_cost()
        return self

    def _at_least_cost(self) -> None:
        """Refuse a formula that prices under the cost by design (a ratio under 1, a negative
        margin): the floor would hide or raise every listing, and the seller meant otherwise."""
        below = "is under 1: the formula would price under the cost"
        if self.kind == "markup" and self.ratio < 1:
            raise ValueError(f"ratio = {self.ratio} {below}")
        if self.kind == "tiered":
            for index, (bound, ratio) in enumerate(self.tiers):
                if ratio < 1:
                    raise ValueError(f"tiers[{index}] ({bound} yen): ratio {ratio} {below}")
            if self.above_ratio < 1:
                raise ValueError(f"above_ratio = {self.above_ratio} {below}")
        if self.kind == "ebay_formula":
            for name in ("fee_rate", "duty_rate", "margin_rate"):
                if getattr(self, name) < 0:
                    raise ValueError(
                        f"{name} = {getattr(self, name)} is negative: "
                        "the formula would price under the cost"
                    )
        if self.min_margin < 0:
            raise ValueError(
                f"min_margin = {self.min_margin} is negative: the floor would sit under the cost"
            )


def default_strategies() -> dict[str, PricingStrategy]:
    """Every config knows these three names, so ``pricing = "markup"`` works with no table."""
    return {
        "markup": PricingStrategy(kind="markup"),
        "tiered": PricingStrategy(kind="tiered"),
        "ebay_formula": PricingStrategy(kind="ebay_formula"),
    }


class AccountSettings(_Section):
    name: str = Field(min_length=1)
    platform: str
    endpoint: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    redirect_uri: str = ""
    pricing: str = ""
    active: bool = True
    restock_quantity: int = Field(default=1, ge=1)
    stale_after: Duration | None = None
    on_stale: Literal["hide", "keep"] = "hide"
    # A price move is skipped when smaller than max(min_change, min_change_pct % of the
    # listed price); min_change defaults to 10 yen on BASE and 0.10 USD on eBay.
    min_change: Decimal | None = Field(default=None, ge=0)
    min_change_pct: Decimal = Field(default=Decimal(1), ge=0, lt=100)
    daily_call_limit: int = Field(default=5000, ge=1)
    hourly_call_limit: int = Field(default=5000, ge=1)
    zero_quantity_fallback: Literal["error", "unpublish"] = "error"
    reconcile_every: int | None = Field(default=None, ge=1)

    @field_validator("name")
    @classmethod
    def _name_chars(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("use only letters, digits, '_', '-' and '.'")
        return value

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        known = _kind_names()
        if value not in known:
            *head, last = [repr(name) for name in known]
            listed = f"{', '.join(head)} or {last}" if head else last
            raise ValueError(f"must be {listed}")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> AccountSettings:
        # Frozen model: fill the channel kind's defaults through object.__setattr__ once.
        kind = _kind(self.platform)
        if not self.endpoint:
            object.__setattr__(self, "endpoint", kind.default_endpoint)
        if not self.pricing:
            object.__setattr__(self, "pricing", kind.default_pricing)
        if self.min_change is None:
            object.__setattr__(self, "min_change", kind.min_change)
        return self

    @property
    def currency(self) -> str:
        return _kind(self.platform).currency


def _kind_names() -> tuple[str, ...]:
    from ecsync.channels.kinds import kind_names  # registers BASE and eBay on first use

    return kind_names()


def _kind(platform: str) -> ChannelKind:
    from ecsync.channels.kinds import channel_kind

    return channel_kind(platform)


# Cycles between two bulk reads of an account (reconcile), when neither the account nor
# ``[daemon] reconcile_every`` says otherwise. A BASE read costs one call per 100 items and
# eBay's is one inventory report, so both read every cycle: a hand edit on the channel is
# put back by the next cycle, not a day later.
RECONCILE_EVERY = {"base": 1, "ebay": 1}


class GuardSettings(_Section):
    max_drop_pct: Decimal = Field(default=Decimal(50), gt=0, le=100)
    max_hide_fraction: Decimal = Field(default=Decimal("0.3"), gt=0, le=1)
    # The mass-hide guard trips only from this many hides on: 1 of 2 listings is not "mass".
    min_hides: int = Field(default=5, ge=1)
    # Continuous mode's guard (domain/guards.py RollingHideGuard): hides asked for within the
    # last ``window`` (on the time_scale clock) over this fraction of the listed items trip it.
    window: Duration = timedelta(hours=1)
    window_hide_fraction: Decimal = Field(default=Decimal("0.05"), gt=0, le=1)


# ``daemon --interval 0`` runs cycles back to back. A cycle's deadline, the age at which a
# quote is stale, /healthz and the alert gap still need a period: the default cadence's.
BACK_TO_BACK_PERIOD = timedelta(hours=3)


class DaemonSettings(_Section):
    """``mode``: ``sweep`` runs a cycle every ``interval``; ``continuous`` refreshes without
    pause, spending every pricing quota where the risk is, and reports one cycle per
    ``window``. ``max_quote_age`` bounds every ASIN's quote age in continuous mode."""

    mode: Literal["sweep", "continuous"] = "continuous"
    interval: Duration = timedelta(hours=3)
    window: Duration = timedelta(hours=1)
    max_quote_age: Duration = timedelta(hours=6)
    deadline_fraction: float = Field(default=0.9, gt=0, le=1)
    reconcile_every: int | None = Field(default=None, ge=1)  # else per account / platform
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    alerts: list[str] = []

    @property
    def period(self) -> timedelta:
        """What deadlines, staleness and health are measured by: the interval, or for a zero
        interval (back to back) the default cadence."""
        return self.interval if self.interval > timedelta(0) else BACK_TO_BACK_PERIOD


class RuntimeSettings(_Section):
    """``time_scale`` > 1 only against the simulator at ``--speed X`` (its --write-config sets
    it): channel call windows, the daemon interval, staleness and deadlines run X times
    faster, as the simulator's clock does."""

    time_scale: float = Field(default=1.0, gt=0)


class ChannelHttpSettings(_Section):
    """Timeouts, retries and parallelism of every channel account's HTTP calls (BASE, eBay).

    The defaults suit the real APIs; a hung call costs at most ``total_timeout_s`` and is
    retried ``max_retries`` times with jittered backoff from ``retry_base_s``.
    """

    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    total_timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    retry_base_s: float = Field(default=0.5, gt=0)
    concurrency: int = Field(default=4, ge=1, le=32)


class JournalSettings(_Section):
    """Finished changes and cycles older than ``keep_days`` are deleted (store/retention.py)."""

    keep_days: int = Field(default=90, ge=1)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = "ecsync.log"
    json_lines: bool = False
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    backup_count: int = Field(default=5, ge=0)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_settings`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix="ECSYNC_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database: DatabaseSettings = DatabaseSettings()
    amazon: AmazonSettings = AmazonSettings()
    accounts: list[AccountSettings] = []
    pricing: dict[str, PricingStrategy] = {}
    guards: GuardSettings = GuardSettings()
    daemon: DaemonSettings = DaemonSettings()
    journal: JournalSettings = JournalSettings()
    channels: ChannelHttpSettings = ChannelHttpSettings()
    logging: LoggingSettings = LoggingSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    config_path: Path = Path(DEFAULT_CONFIG_NAME)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file; the file arrives as init kwargs from load_settings.
        return (env_settings, init_settings)

    @property
    def strategies(self) -> dict[str, PricingStrategy]:
        return {**default_strategies(), **self.pricing}

    def account(self, name: str) -> AccountSettings:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.config_path.parent / 'ecsync.db').resolve()}"

    def reconcile_every(self, name: str) -> int:
        """Cycles between two reconciles of account ``name``: the account's own setting,
        else ``[daemon] reconcile_every``, else its platform's default."""
        account = self.account(name)
        if account.reconcile_every is not None:
            return account.reconcile_every
        if self.daemon.reconcile_every is not None:
            return self.daemon.reconcile_every
        return RECONCILE_EVERY.get(account.platform, 1)

    def scaled(self, duration: timedelta) -> timedelta:
        """A configured duration in real time (shorter against a sped-up simulator)."""
        return duration / self.runtime.time_scale

    @property
    def log_file(self) -> Path:
        path = Path(self.logging.file)
        return path if path.is_absolute() else self.config_path.parent / path


def _cross_check(settings: Settings) -> None:
    """Checks that span sections, raised with the key they concern."""
    where = settings.config_path
    names = [account.name for account in settings.accounts]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"{where}: accounts[{index}].name: duplicate account name {name!r}")
    strategies = settings.strategies
    for index, account in enumerate(settings.accounts):
        if account.pricing not in strategies:
            known = ", ".join(sorted(strategies))
            raise ConfigError(
                f"{where}: accounts[{index}].pricing: unknown pricing strategy "
                f"{account.pricing!r} (known: {known})"
            )
        prices_in = strategies[account.pricing].currency
        if prices_in != account.currency:
            raise ConfigError(
                f"{where}: accounts[{index}].pricing: strategy {account.pricing!r} prices in "
                f"{_money_name(prices_in)} but {account.platform} lists in "
                f"{_money_name(account.currency)}"
            )


def _money_name(currency: str) -> str:
    return "yen" if currency == "JPY" else currency


def config_path_from(explicit: str | Path | None) -> Path:
    """``--config`` beats ``$ECSYNC_CONFIG`` beats ``./ecsync.toml``."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def _account_env_secrets(raw: dict[str, Any]) -> None:
    accounts = raw.get("accounts")
    if not isinstance(accounts, list):
        return
    for account in accounts:
        if not isinstance(account, dict) or not isinstance(account.get("name"), str):
            continue
        key = re.sub(r"[^A-Za-z0-9]", "_", account["name"]).upper()
        for field in ("client_id", "client_secret", "refresh_token"):
            value = os.environ.get(f"ECSYNC_ACCOUNT__{key}__{field.upper()}")
            if value:
                account[field] = value


def _format_loc(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _friendly(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error.get("type") == "extra_forbidden":
        return "unknown key"
    if error.get("type") == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be {expected}"
    return message


def load_settings(path: str | Path | None = None, *, required: bool = False) -> Settings:
    """Read, merge and validate. Raises :class:`ConfigError` naming file, key and reason."""
    config_path = config_path_from(path)
    raw: dict[str, Any] = {}
    if config_path.exists():
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc}") from exc
    elif required or path is not None or os.environ.get(CONFIG_ENV):
        raise ConfigError(
            f"{config_path}: no such file (create one, or run `ecsync sim --write-config "
            f"{config_path}` to get one that works against the simulator)"
        )
    _account_env_secrets(raw)
    if "config_path" in raw:
        raise ConfigError(f"{config_path}: config_path: unknown key")
    try:
        settings = Settings(**raw, config_path=config_path)
    except ValidationError as exc:
        lines = [
            f"{config_path}: {_format_loc(tuple(err['loc']))}: {_friendly(dict(err))}"
            for err in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from None
    _cross_check(settings)
    return settings


def require_credentials(
    settings: Settings, accounts: list[str] | tuple[str, ...], *, amazon: bool
) -> None:
    """Fail before any network call when a credential the work needs is missing."""
    where = settings.config_path
    missing: list[str] = []
    if amazon:
        for field in ("client_id", "client_secret", "refresh_token"):
            value = getattr(settings.amazon, field)
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                missing.append(
                    f"{where}: amazon.{field}: required (or ECSYNC_AMAZON__{field.upper()})"
                )
    for index, account in enumerate(settings.accounts):
        if account.name not in accounts:
            continue
        env = re.sub(r"[^A-Za-z0-9]", "_", account.name).upper()
        for field in ("client_id", "client_secret", "refresh_token"):
            value = getattr(account, field)
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                missing.append(
                    f"{where}: accounts[{index}].{field}: required for {account.name!r} "
                    f"(or ECSYNC_ACCOUNT__{env}__{field.upper()})"
                )
    if missing:
        raise ConfigError("\n".join(missing))


def secret_values(settings: Settings) -> list[str]:
    """Every secret in the configuration, for the log redaction filter."""
    values = [
        settings.amazon.client_secret.get_secret_value(),
        settings.amazon.refresh_token.get_secret_value(),
    ]
    for account in settings.accounts:
        values += [
            account.client_secret.get_secret_value(),
            account.refresh_token.get_secret_value(),
        ]
    return [value for value in values if len(value) >= 6]
