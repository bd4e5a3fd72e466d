"""Desired listing state: stock policy, staleness, errors as non-evidence, per platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsync.config import AccountSettings, PricingStrategy, default_strategies
from ecsync.domain.model import ListingState, QuoteStatus
from ecsync.domain.quotes import Quote, quote_from_error
from ecsync.domain.rules import Desired, ProductQuote, desired_state, record_quote

D = Decimal
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
STALE = timedelta(hours=6)
BASE_ACCOUNT = AccountSettings(name="base-1", platform="base")
EBAY_ACCOUNT = AccountSettings(name="ebay-1", platform="ebay")
MARKUP = PricingStrategy(kind="markup")
EBAY = default_strategies()["ebay_formula"].model_copy(update={"usd_jpy_as_of": "2024-06-14"})

SHOWN = ListingState(price=D(1300), visible=True, quantity=1)
HIDDEN_SOLD_OUT = ListingState(price=D(1300), visible=False, quantity=0)
EBAY_LIVE = ListingState(price=D("104.17"), visible=None, quantity=1)


def fresh(
    status: QuoteStatus = QuoteStatus.OK, price: str | None = "1000", **kw: object
) -> ProductQuote:
    return ProductQuote(
        status=status,
        price=D(price) if price is not None else None,
        fetched_at=NOW - timedelta(hours=1),
        **kw,  # type: ignore[arg-type]
    )


def desire(
    quote: ProductQuote,
    confirmed: ListingState = SHOWN,
    account: AccountSettings = BASE_ACCOUNT,
    strategy: PricingStrategy = MARKUP,
    **kw: bool,
) -> Desired:
    return desired_state(account, strategy, quote, confirmed, NOW, default_stale_after=STALE, **kw)


def test_base_in_stock_shows_and_restores_stock() -> None:
    desired = desire(fresh(price="1000"), HIDDEN_SOLD_OUT)
    assert desired.state == ListingState(price=D(1300), visible=True, quantity=1)
    assert desired.floor == D(1050)
    assert "1000" in desired.reason and "1300" in desired.reason


def test_base_keeps_a_larger_stock_and_honours_restock_quantity() -> None:
    assert desire(fresh(), ListingState(D(1300), True, 4)).state.quantity == 4
    three = BASE_ACCOUNT.model_copy(update={"restock_quantity": 3})
    assert desire(fresh(), HIDDEN_SOLD_OUT, three).state.quantity == 3
    assert desire(fresh(), ListingState(None, None, None)).state == ListingState(D(1300), True, 1)


def test_ebay_in_stock_sets_the_restock_quantity_in_dollars() -> None:
    desired = desire(fresh(price="3000"), ListingState(D(90), None, 0), EBAY_ACCOUNT, EBAY)
    assert desired.state == ListingState(price=D("104.17"), visible=None, quantity=1)
    assert desired.floor == D("21.00")
    many = desire(fresh(price="3000"), ListingState(D(90), None, 5), EBAY_ACCOUNT, EBAY)
    assert many.state.quantity == 1


@pytest.mark.parametrize("status", [QuoteStatus.OUT_OF_STOCK, QuoteStatus.NO_ELIGIBLE_OFFER])
def test_no_buyable_source_hides(status: QuoteStatus) -> None:
    assert desire(fresh(status, None)).state == ListingState(D(1300), False, 1)
    ebay = desire(fresh(status, None), EBAY_LIVE, EBAY_ACCOUNT, EBAY)
    assert ebay.state == ListingState(D("104.17"), None, 0)


def test_unpriceable_hides_and_says_why() -> None:
    capped = PricingStrategy(kind="markup", ceiling=D(1000))
    desired = desire(fresh(price="1000"), strategy=capped)
    assert desired.state == ListingState(D(1300), False, 1)
    assert desired.floor == D(1050)
    assert "ceiling" in desired.reason
    ok_without_price = desire(fresh(QuoteStatus.OK, None))
    assert ok_without_price.state.visible is False


def test_stale_quote_follows_the_account_policy() -> None:
    old = ProductQuote(QuoteStatus.OK, D(1000), NOW - STALE - timedelta(seconds=1))
    assert desire(old).state == ListingState(D(1300), False, 1)
    assert "old" in desire(old).reason
    keep = BASE_ACCOUNT.model_copy(update={"on_stale": "keep"})
    assert desire(old, SHOWN, keep).state == SHOWN
    at_limit = ProductQuote(QuoteStatus.OK, D(1000), NOW - STALE)
    assert desire(at_limit, HIDDEN_SOLD_OUT).state.visible is True


def test_account_stale_after_beats_the_default() -> None:
    patient = BASE_ACCOUNT.model_copy(update={"stale_after": timedelta(days=2)})
    day_old = ProductQuote(QuoteStatus.OK, D(1000), NOW - timedelta(days=1))
    assert desire(day_old, HIDDEN_SOLD_OUT, patient).state.visible is True
    assert desire(day_old, SHOWN, BASE_ACCOUNT).state.visible is False


def test_an_error_keeps_the_listing_until_the_last_good_quote_is_stale() -> None:
    errored = fresh(QuoteStatus.OK, "5000", last_error="timeout")
    desired = desire(errored, SHOWN)
    assert desired.state == SHOWN and desired.floor is None
    assert "timeout" in desired.reason
    hidden_stays = desire(fresh(QuoteStatus.OUT_OF_STOCK, None, last_error="503"), HIDDEN_SOLD_OUT)
    assert hidden_stays.state == HIDDEN_SOLD_OUT
    stale = ProductQuote(QuoteStatus.OK, D(1000), NOW - timedelta(days=1), last_error="timeout")
    assert desire(stale, SHOWN).state.visible is False


@pytest.mark.parametrize(
    "quote",
    [
        ProductQuote(),
        ProductQuote(last_error="InvalidInput"),
        ProductQuote(QuoteStatus.ERROR, None, NOW, "boom"),
        ProductQuote(QuoteStatus.OK, D(1000), None),
    ],
)
def test_never_quoted_keeps_the_listing(quote: ProductQuote) -> None:
    assert desire(quote, SHOWN).state == SHOWN
    assert desire(quote, HIDDEN_SOLD_OUT).state == HIDDEN_SOLD_OUT


def test_stock_only_leaves_the_price_alone() -> None:
    desired = desire(fresh(price="9999"), HIDDEN_SOLD_OUT, stock_only=True)
    assert desired.state == ListingState(D(1300), True, 1)
    assert desired.floor is None
    assert desire(fresh(QuoteStatus.OUT_OF_STOCK, None), stock_only=True).state.visible is False


def test_a_strategy_in_the_wrong_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="lists in JPY"):
        desire(fresh(), SHOWN, BASE_ACCOUNT, EBAY)


def test_record_quote() -> None:
    at = NOW - timedelta(minutes=5)
    good = record_quote(None, Quote(QuoteStatus.OK, D(1000), offer_count=1), at)
    assert good == ProductQuote(QuoteStatus.OK, D(1000), at, None)
    failed = record_quote(good, quote_from_error("timeout"), NOW)
    assert failed == ProductQuote(QuoteStatus.OK, D(1000), at, "timeout")
    recovered = record_quote(failed, Quote(QuoteStatus.OUT_OF_STOCK), NOW)
    assert recovered == ProductQuote(QuoteStatus.OUT_OF_STOCK, None, NOW, None)
    assert record_quote(None, quote_from_error("x"), NOW) == ProductQuote(last_error="x")


# ---------------------------------------------------------------- properties

states = st.builds(
    ListingState,
    price=st.none() | st.integers(1, 100_000).map(D),
    visible=st.none() | st.booleans(),
    quantity=st.none() | st.integers(0, 5),
)
quotes = st.builds(
    ProductQuote,
    status=st.none() | st.sampled_from(list(QuoteStatus)),
    price=st.none() | st.integers(1, 100_000).map(D),
    fetched_at=st.none() | st.integers(0, 12 * 3600).map(lambda s: NOW - timedelta(seconds=s)),
    last_error=st.none() | st.just("timeout"),
)


def _usable(quote: ProductQuote) -> bool:
    """A fresh, good, error-free quote: the only thing allowed to move a listing on sale."""
    return (
        quote.status not in (None, QuoteStatus.ERROR)
        and quote.fetched_at is not None
        and NOW - quote.fetched_at <= STALE
        and quote.last_error is None
    )


@settings(max_examples=300)
@given(quote=quotes, confirmed=states, stock_only=st.booleans())
def test_base_rules(quote: ProductQuote, confirmed: ListingState, stock_only: bool) -> None:
    desired = desire(quote, confirmed, stock_only=stock_only).state
    if desired.visible is True and confirmed.visible is not True:
        assert _usable(quote) and quote.status is QuoteStatus.OK
    if desired != confirmed:
        stale = quote.fetched_at is not None and NOW - quote.fetched_at > STALE
        assert _usable(quote) or (stale and quote.status not in (None, QuoteStatus.ERROR))
    if not _usable(quote) or quote.status is not QuoteStatus.OK:
        assert desired.price == confirmed.price and desired.quantity == confirmed.quantity
        assert desired.visible in (confirmed.visible, False)
    if desired.visible is True and desired != confirmed:  # shown by us: with stock
        assert desired.quantity is not None and desired.quantity >= 1
    if stock_only:
        assert desired.price == confirmed.price


@settings(max_examples=200)
@given(quote=quotes, confirmed=states)
def test_ebay_rules(quote: ProductQuote, confirmed: ListingState) -> None:
    desired = desire(quote, confirmed, EBAY_ACCOUNT, EBAY).state
    assert desired.visible == confirmed.visible  # eBay has no visibility flag to manage
    assert desired.quantity in (confirmed.quantity, 0, EBAY_ACCOUNT.restock_quantity)
    if desired.quantity == EBAY_ACCOUNT.restock_quantity != confirmed.quantity:
        assert _usable(quote) and quote.status is QuoteStatus.OK
