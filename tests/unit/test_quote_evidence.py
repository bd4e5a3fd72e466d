"""Which Amazon answers are evidence about one ASIN, and what a listing without any becomes.

An item-level ``InvalidInput`` naming the ASIN, while another item of the same batch was
answered, says the ASIN is unknown in the marketplace: the listing is hidden. A batch where
nothing was answered says nothing about any one ASIN. A listing that never got a good quote
falls under the stale policy once it has been listed longer than ``stale_after``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ecsync.amazon.client import _parse_batch
from ecsync.config import AccountSettings, PricingStrategy
from ecsync.domain.model import ListingState, QuoteStatus
from ecsync.domain.quotes import (
    Quote,
    quote_from_error,
    quote_from_item_error,
    settle_batch,
)
from ecsync.domain.rules import ProductQuote, desired_state, record_quote

ASIN = "B00ZUXG6GY"
MARKETPLACE = "A1VC38T7YXB528"
INVALID = f"{ASIN} is an invalid ASIN for marketplace {MARKETPLACE}"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(hours=6)
BASE_ACCOUNT = AccountSettings(name="base-1", platform="base")
EBAY_ACCOUNT = AccountSettings(name="ebay-1", platform="ebay")
MARKUP = PricingStrategy(kind="markup")
EBAY = PricingStrategy(kind="ebay_formula", usd_jpy_as_of="2026-11-30")
SHOWN = ListingState(price=Decimal(1300), visible=True, quantity=2)
EBAY_LIVE = ListingState(price=Decimal("30.00"), visible=None, quantity=1)
OK = Quote(status=QuoteStatus.OK, price=Decimal(1000), offer_count=1)


def test_an_invalid_input_naming_the_asin_is_unknown_asin() -> None:
    quote = quote_from_item_error(ASIN, 400, "InvalidInput", INVALID)
    assert quote.status is QuoteStatus.UNKNOWN_ASIN
    assert quote.price is None and quote.error is not None and ASIN in quote.error
    # The simulator's wording, lower-cased ASIN in the message: still about this ASIN.
    sim = quote_from_item_error(ASIN, 400, "InvalidInput", f"Invalid ASIN {ASIN.lower()} for X")
    assert sim.status is QuoteStatus.UNKNOWN_ASIN


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            400,
            "InvalidInput",
            "Requested MarketplaceId is invalid, unsupported, or does not exist.",
        ),
        (400, "InvalidInput", "Duplicate requests submitted."),
        (400, "InvalidInput", "B000000000 is an invalid ASIN for marketplace X"),  # another ASIN
        (500, "InternalFailure", f"We encountered an internal error ({ASIN})."),
        (400, "InvalidParameterValue", INVALID),
        (404, "NotFound", INVALID),
        (None, "", ""),
    ],
)
def test_other_item_failures_are_errors(status: int | None, code: str, message: str) -> None:
    quote = quote_from_item_error(ASIN, status, code, message)
    assert quote.status is QuoteStatus.ERROR
    assert quote.error is not None and quote.error.startswith(f"HTTP {status}")


def test_unknown_asin_is_kept_when_another_item_of_the_batch_was_answered() -> None:
    unknown = quote_from_item_error(ASIN, 400, "InvalidInput", INVALID)
    failed = quote_from_error("HTTP 500: InternalFailure")
    for answered in (
        OK,
        Quote(status=QuoteStatus.OUT_OF_STOCK),
        Quote(status=QuoteStatus.NO_ELIGIBLE_OFFER),
    ):
        settled = settle_batch([failed, unknown, answered])
        assert [q.status for q in settled] == [
            QuoteStatus.ERROR,
            QuoteStatus.UNKNOWN_ASIN,
            answered.status,
        ]


@pytest.mark.parametrize("size", [1, 2, 20])
def test_a_batch_where_nothing_was_answered_is_no_evidence(size: int) -> None:
    unknown = quote_from_item_error(ASIN, 400, "InvalidInput", INVALID)
    failed = quote_from_error("HTTP 500: InternalFailure")
    batch = [unknown] * size
    assert all(q.status is QuoteStatus.ERROR for q in settle_batch(batch))
    mixed = settle_batch([unknown, failed])
    assert [q.status for q in mixed] == [QuoteStatus.ERROR, QuoteStatus.ERROR]
    assert mixed[0].error is not None and "not taken as evidence" in mixed[0].error
    assert mixed[1] == failed


def test_the_client_keeps_the_parts_of_an_item_refusal() -> None:
    def entry(asin: str, status: int, body: dict[str, object]) -> dict[str, object]:
        return {"status": {"statusCode": status}, "request": {"Asin": asin}, "body": body}

    refused = {"errors": [{"code": "InvalidInput", "message": INVALID, "details": ""}]}
    answer = _parse_batch(
        [ASIN, "B000000001"],
        {"responses": [entry(ASIN, 400, refused), entry("B000000001", 200, {"payload": {}})]},
        None,
    )
    first, second = answer.items
    assert (first.status_code, first.code, first.message) == (400, "InvalidInput", INVALID)
    assert first.payload is None and first.error == f"HTTP 400: InvalidInput {INVALID}"
    assert second.payload == {} and second.status_code is None


def test_an_unknown_asin_is_a_good_quote_that_hides_the_listing() -> None:
    unknown = quote_from_item_error(ASIN, 400, "InvalidInput", INVALID)
    recorded = record_quote(None, unknown, NOW - timedelta(minutes=5))
    assert recorded == ProductQuote(
        status=QuoteStatus.UNKNOWN_ASIN, price=None, fetched_at=NOW - timedelta(minutes=5)
    )
    base = desired_state(BASE_ACCOUNT, MARKUP, recorded, SHOWN, NOW, default_stale_after=STALE)
    assert base.state == ListingState(Decimal(1300), False, 2)
    assert "unknown to Amazon" in base.reason
    ebay = desired_state(EBAY_ACCOUNT, EBAY, recorded, EBAY_LIVE, NOW, default_stale_after=STALE)
    assert ebay.state == ListingState(Decimal("30.00"), None, 0)
    # A later error does not undo the answer; the listing stays hidden until Amazon knows it.
    failed = record_quote(recorded, quote_from_error("HTTP 500"), NOW)
    assert failed.status is QuoteStatus.UNKNOWN_ASIN and failed.last_error == "HTTP 500"


NEVER = [ProductQuote(), ProductQuote(last_error="HTTP 500: InternalFailure")]


@pytest.mark.parametrize("quote", NEVER)
def test_a_listing_never_quoted_is_kept_while_younger_than_stale_after(
    quote: ProductQuote,
) -> None:
    for since in (None, NOW - STALE, NOW - timedelta(minutes=1)):
        desired = desired_state(
            BASE_ACCOUNT, MARKUP, quote, SHOWN, NOW, default_stale_after=STALE, listed_since=since
        )
        assert desired.state == SHOWN and "no good quote yet" in desired.reason


@pytest.mark.parametrize("quote", NEVER)
def test_a_listing_never_quoted_for_longer_than_stale_after_follows_on_stale(
    quote: ProductQuote,
) -> None:
    since = NOW - STALE - timedelta(seconds=1)
    hidden = desired_state(
        BASE_ACCOUNT, MARKUP, quote, SHOWN, NOW, default_stale_after=STALE, listed_since=since
    )
    assert hidden.state == ListingState(Decimal(1300), False, 2)
    assert "since listed" in hidden.reason and hidden.reason.endswith("hidden")
    if quote.last_error:
        assert quote.last_error in hidden.reason
    ebay = desired_state(
        EBAY_ACCOUNT, EBAY, quote, EBAY_LIVE, NOW, default_stale_after=STALE, listed_since=since
    )
    assert ebay.state == ListingState(Decimal("30.00"), None, 0)
    keep = BASE_ACCOUNT.model_copy(update={"on_stale": "keep"})
    kept = desired_state(
        keep, MARKUP, quote, SHOWN, NOW, default_stale_after=STALE, listed_since=since
    )
    assert kept.state == SHOWN and "on_stale=keep" in kept.reason
    # The account's own stale_after beats the default, both ways.
    longer = BASE_ACCOUNT.model_copy(update={"stale_after": timedelta(days=2)})
    young = desired_state(
        longer, MARKUP, quote, SHOWN, NOW, default_stale_after=STALE, listed_since=since
    )
    assert young.state == SHOWN
