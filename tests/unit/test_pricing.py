"""Pricing strategies: worked examples, then the money-guard properties for every kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsync.config import PricingStrategy, default_strategies
from ecsync.domain.pricing import PriceDecision, listing_currency, price_listing

D = Decimal
MARKUP = PricingStrategy(kind="markup")
TIERED = PricingStrategy(kind="tiered")
EBAY = default_strategies()["ebay_formula"]
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cost", "price"),
    [
        ("1000", "1300"),
        ("1234", "1600"),  # 1604.2 -> 1600
        ("1235", "1610"),  # 1605.5 -> 1610
        ("1250", "1630"),  # 1625 -> 1630: an exact half goes up, not to even
        ("1350", "1760"),  # 1755 -> 1760
        ("1227", "1600"),  # 1595.1 -> 1600
        ("1", "10"),  # 1.3 rounds to 0: the floor (2 yen) lifts it to the next step
    ],
)
def test_markup(cost: str, price: str) -> None:
    decision = price_listing(MARKUP, D(cost))
    assert decision.price == D(price)
    assert decision.currency == "JPY"


def test_markup_floor_rounds_up_to_the_next_step() -> None:
    thin = PricingStrategy(kind="markup", ratio=D("1.01"), min_margin=D("0.05"))
    decision = price_listing(thin, D(1000))  # formula 1010, floor 1050
    assert decision == PriceDecision(
        D(1050), D(1050), "JPY", (), "formula price 1010.00 raised to the floor 1050 JPY"
    )
    odd = price_listing(thin, D(1001))  # floor 1051.05 -> 1052 -> step 1060
    assert (odd.price, odd.floor) == (D(1060), D(1052))


@pytest.mark.parametrize(
    ("cost", "price"),
    [
        ("500", "700"),  # x1.4
        ("1000", "1400"),  # the bound is inside its band
        ("1001", "1400"),  # x1.3 would be 1301.3: held at the lower band's top
        ("2000", "2600"),  # x1.3
        ("5000", "6500"),
        ("8000", "10000"),  # x1.25
        ("10000", "12500"),
        ("20000", "24000"),  # above: x1.2
    ],
)
def test_tiered(cost: str, price: str) -> None:
    assert price_listing(TIERED, D(cost)).price == D(price)


def test_tiered_bands_need_not_be_sorted() -> None:
    shuffled = PricingStrategy(kind="tiered", tiers=[(D(10000), D("1.25")), (D(1000), D("1.4"))])
    assert price_listing(shuffled, D(500)).price == D(700)
    assert price_listing(shuffled, D(5000)).price == D(6250)


def test_ebay_formula_in_dollars() -> None:
    # (3000 + 4000 + 500) / (1 - 0.17 - 0.15 - 0.20) = 15625 yen = 104.1666 USD at 150
    decision = price_listing(EBAY, D(3000))
    assert decision.price == D("104.17")
    assert decision.currency == "USD"
    assert decision.floor == D("21.00")  # 3000 x 1.05 / 150, up to the cent
    assert listing_currency(EBAY) == "USD" and listing_currency(MARKUP) == "JPY"


def test_ebay_rate_age_warnings() -> None:
    def warnings(as_of: str, now: datetime | None = NOW) -> tuple[str, ...]:
        strategy = EBAY.model_copy(update={"usd_jpy_as_of": as_of})
        return price_listing(strategy, D(3000), now).warnings

    assert warnings("2024-06-10") == ()
    assert warnings("2024-06-08") == ()  # exactly 7 days: still fine
    assert "days old" in warnings("2024-06-07")[0]
    assert "no usd_jpy_as_of" in warnings("")[0]
    assert "not an ISO date" in warnings("June 1st")[0]
    assert warnings("2020-01-01", now=None) == ()  # no clock, no age check
    assert "future" in warnings("2024-07-01")[0]
    # the warning never stops pricing
    assert price_listing(EBAY.model_copy(update={"usd_jpy_as_of": ""}), D(3000)).price


def test_ceiling_caps_and_an_impossible_band_hides() -> None:
    capped = PricingStrategy(kind="markup", ceiling=D(1555))
    decision = price_listing(capped, D(1234))  # 1600 -> at most 1555, on the 10 step: 1550
    assert decision.price == D(1550)
    assert decision.reason is not None and "ceiling" in decision.reason
    impossible = price_listing(capped, D(1500))  # floor 1575 > ceiling
    assert impossible.price is None
    assert impossible.floor == D(1575)
    assert impossible.reason is not None and "above the ceiling" in impossible.reason


@pytest.mark.parametrize("cost", [D(0), D(-5), D("NaN"), D("Infinity")])
def test_unusable_cost_gives_no_price(cost: Decimal) -> None:
    decision = price_listing(MARKUP, cost)
    assert decision.price is None and decision.reason


@pytest.mark.parametrize(
    ("kind", "step"),
    [("markup", D(0)), ("markup", D("0.5")), ("ebay_formula", D("0.001"))],
)
def test_a_rounding_step_the_currency_cannot_express_gives_no_price(kind: str, step: D) -> None:
    """Config validation refuses these; the domain still defends itself if one gets through."""
    valid = PricingStrategy(kind=kind)  # type: ignore[arg-type]
    strategy = valid.model_copy(update={"round_to": step})
    decision = price_listing(strategy, D(1000))
    assert decision.price is None
    assert decision.reason is not None and "round_to" in decision.reason


# ---------------------------------------------------------------- properties

# Ratios under 1 are refused by the config (they price under the cost by design).
ratios = st.decimals(min_value=D(1), max_value=D(3), places=2)
bounds = st.integers(100, 50_000).map(D)


@st.composite
def strategies(draw: st.DrawFn) -> PricingStrategy:
    kind = draw(st.sampled_from(["markup", "tiered", "ebay_formula"]))
    if kind == "ebay_formula":
        step = draw(st.sampled_from([D("0.01"), D("0.05"), D("0.99"), D(1)]))
        ceiling = draw(st.none() | st.integers(5, 3000).map(D))
    else:
        step = draw(st.sampled_from([D(1), D(10), D(50), D(100)]))
        ceiling = draw(st.none() | st.integers(100, 500_000).map(D))
    return PricingStrategy(
        kind=kind,
        ratio=draw(ratios),
        tiers=draw(st.lists(st.tuples(bounds, ratios), max_size=4)),
        above_ratio=draw(ratios),
        round_to=step,
        usd_jpy=draw(st.decimals(min_value=D(80), max_value=D(200), places=2)),
        min_margin=draw(st.decimals(min_value=D(0), max_value=D("0.5"), places=3)),
        ceiling=ceiling,
        usd_jpy_as_of="2024-06-01",
    )


costs = st.integers(1, 2_000_000).map(D) | st.decimals(
    min_value=D(1), max_value=D(100_000), places=2
)


@settings(max_examples=300)
@given(strategy=strategies(), cost=costs)
def test_price_respects_floor_ceiling_and_step(strategy: PricingStrategy, cost: Decimal) -> None:
    decision = price_listing(strategy, cost, NOW)
    assert decision.currency == listing_currency(strategy)
    rate = strategy.usd_jpy if decision.currency == "USD" else D(1)
    exact_floor = cost * (1 + strategy.min_margin) / rate
    assert decision.floor >= exact_floor
    unit = D("0.01") if decision.currency == "USD" else D(1)
    assert decision.floor - exact_floor < unit  # rounded up by less than one unit
    if decision.price is None:
        assert decision.reason
        assert (
            strategy.ceiling is not None and decision.floor > strategy.ceiling - strategy.round_to
        )
        return
    assert decision.price >= decision.floor
    assert decision.price % strategy.round_to == 0
    if strategy.ceiling is not None:
        assert decision.price <= strategy.ceiling


@settings(max_examples=300)
@given(strategy=strategies(), a=costs, b=costs)
def test_price_never_falls_as_cost_rises(strategy: PricingStrategy, a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    cheap = price_listing(strategy, low, NOW)
    dear = price_listing(strategy, high, NOW)
    assert cheap.floor <= dear.floor
    if cheap.price is None:
        assert dear.price is None  # once unpriceable, dearer stays unpriceable
    elif dear.price is not None:
        assert cheap.price <= dear.price


@settings(max_examples=200)
@given(cost=st.integers(1, 1_000_000).map(D), ratio=ratios, step=st.sampled_from([1, 10, 100]))
def test_markup_is_the_nearest_step_unless_the_floor_says_otherwise(
    cost: Decimal, ratio: Decimal, step: int
) -> None:
    strategy = PricingStrategy(kind="markup", ratio=ratio, round_to=D(step))
    decision = price_listing(strategy, cost)
    assert decision.price is not None
    raw = cost * ratio
    if decision.reason is None:
        assert abs(decision.price - raw) <= D(step) / 2
    else:
        assert decision.price == (decision.floor / step).to_integral_value(ROUND_CEILING) * step
        rounded = (raw / step).quantize(D(1), ROUND_HALF_UP) * step
        assert rounded < decision.floor  # the floor only acts when rounding went under it


def test_the_exchange_rate_date_may_be_recent_relative_to_now() -> None:
    strategy = EBAY.model_copy(update={"usd_jpy_as_of": "2024-06-14"})
    assert price_listing(strategy, D(3000), NOW + timedelta(days=1)).warnings == ()
