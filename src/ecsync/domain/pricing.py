"""Source cost -> channel price, by the account's named strategy, never below the floor.

Each account picks a strategy by name (``PricingStrategy.kind``): a flat ``markup``, a
``tiered`` markup whose ratio falls as the cost rises, or the ``ebay_formula`` that adds
shipping and packaging, grosses up for eBay's fees, duty and the wanted margin, and converts
yen to dollars. Whatever the formula says, the price respects the money guard: at least the
cost plus the minimum margin (the *floor*), at most the optional ceiling, on the rounding
step. When no price fits, the decision carries ``price=None`` and the listing must be hidden:
a listing is never sold at a loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ecsync.config import PricingStrategy
from ecsync.domain.model import MINOR_UNIT

__all__ = ["PriceDecision", "listing_currency", "price_listing"]


@dataclass(frozen=True, slots=True)
class PriceDecision:
    """The price to list at, the floor it was held to, and why it differs from the formula.

    ``price`` is ``None`` when no price on the step lies between floor and ceiling, or the
    inputs cannot be priced; ``reason`` then says why. ``floor`` is in ``currency``.
    """

    price: Decimal | None
    floor: Decimal
    currency: str
    warnings: tuple[str, ...] = ()
    reason: str | None = None


def listing_currency(strategy: PricingStrategy) -> str:
    """The currency a strategy prices in (decided once, by ``PricingStrategy.currency``)."""
    return strategy.currency


def price_listing(
    strategy: PricingStrategy, cost: Decimal, now: datetime | None = None
) -> PriceDecision:
    """Price one listing whose source costs ``cost`` yen (landed). Pure; never raises.

    ``now`` is only used to judge the age of the eBay exchange rate; without it the age is
    not checked (a missing rate date is still reported).
    """
    currency = listing_currency(strategy)
    warnings = _rate_warnings(strategy, now) if strategy.kind == "ebay_formula" else ()
    step = strategy.round_to
    if not step.is_finite() or step <= 0 or step % MINOR_UNIT[currency] != 0:
        reason = f"round_to {step} is not a positive multiple of {MINOR_UNIT[currency]} {currency}"
        return PriceDecision(None, Decimal(0), currency, warnings, reason)
    if not cost.is_finite() or cost <= 0:
        return PriceDecision(None, Decimal(0), currency, warnings, f"cost {cost} is not positive")
    try:
        return _decide(strategy, cost, currency, step, warnings)
    except ArithmeticError as exc:  # decimal.InvalidOperation on absurd magnitudes only
        reason = f"cannot price cost {cost}: {exc.__class__.__name__}"
        return PriceDecision(None, Decimal(0), currency, warnings, reason)


def _decide(
    strategy: PricingStrategy,
    cost: Decimal,
    currency: str,
    step: Decimal,
    warnings: tuple[str, ...],
) -> PriceDecision:
    floor = _ceil(_to_currency(strategy, cost * (1 + strategy.min_margin)), MINOR_UNIT[currency])
    formula = _formula(strategy, cost)
    price = _round(formula, step)
    reason = None
    if price < floor:
        price = _ceil(floor, step)
        reason = f"formula price {formula:.2f} raised to the floor {floor} {currency}"
    ceiling = strategy.ceiling
    if ceiling is not None and price > ceiling:
        price = _floor(ceiling, step)
        reason = f"formula price {formula:.2f} capped at the ceiling {ceiling} {currency}"
        if price < floor:
            reason = f"floor {floor} {currency} is above the ceiling {ceiling} (on step {step})"
            return PriceDecision(None, floor, currency, warnings, reason)
    return PriceDecision(price, floor, currency, warnings, reason)


def _formula(strategy: PricingStrategy, cost: Decimal) -> Decimal:
    """The strategy's price before rounding and guards, in the listing currency."""
    if strategy.kind == "markup":
        return cost * strategy.ratio
    if strategy.kind == "tiered":
        return _tiered(strategy, cost)
    gross = (cost + strategy.shipping_yen + strategy.packaging_yen) / (
        1 - strategy.fee_rate - strategy.duty_rate - strategy.margin_rate
    )
    return _to_currency(strategy, gross)


def _tiered(strategy: PricingStrategy, cost: Decimal) -> Decimal:
    """The band's ratio, but never below the top price of a lower band.

    Taken literally, bands with falling ratios make the price drop when the cost crosses a
    bound (1,000 yen x1.4 = 1,400, but 1,001 x1.3 = 1,301). A dearer item must not sell for
    less, so just above a bound the price stays at the lower band's top until the band's own
    ratio catches up (1,001 to about 1,077 yen all list at 1,400).
    """
    plateau = Decimal(0)
    for bound, ratio in sorted(strategy.tiers):
        if cost <= bound:
            return max(cost * ratio, plateau)
        plateau = max(plateau, bound * ratio)
    return max(cost * strategy.above_ratio, plateau)


def _to_currency(strategy: PricingStrategy, yen: Decimal) -> Decimal:
    return yen / strategy.usd_jpy if strategy.kind == "ebay_formula" else yen


def _round(value: Decimal, step: Decimal) -> Decimal:
    """Nearest multiple of ``step``, halves up (1,235 -> 1,240 on a 10 yen step)."""
    return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def _ceil(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).quantize(Decimal(1), rounding=ROUND_CEILING) * step


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).quantize(Decimal(1), rounding=ROUND_FLOOR) * step


def _rate_warnings(strategy: PricingStrategy, now: datetime | None) -> tuple[str, ...]:
    """A stale or undated exchange rate still prices (better than hiding every eBay listing),
    but the seller must hear about it."""
    as_of = strategy.usd_jpy_as_of.strip()
    if not as_of:
        return (f"usd_jpy {strategy.usd_jpy} has no usd_jpy_as_of date: its age is unknown",)
    try:
        rate_date = date.fromisoformat(as_of[:10])
    except ValueError:
        return (f"usd_jpy_as_of {as_of!r} is not an ISO date (YYYY-MM-DD)",)
    if now is None:
        return ()
    age = now.date() - rate_date
    if age > strategy.usd_jpy_max_age:
        return (
            f"usd_jpy {strategy.usd_jpy} is from {rate_date.isoformat()}, {age.days} days old "
            f"(max {strategy.usd_jpy_max_age})",
        )
    if age.days < 0:
        return (f"usd_jpy_as_of {rate_date.isoformat()} is in the future",)
    return ()
