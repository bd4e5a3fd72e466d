"""Offer selection: examples for every rule, then properties against an independent oracle."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ecsync.config import OfferRules
from ecsync.domain.quotes import (
    ChosenOffer,
    Quote,
    QuoteStatus,
    quote_from_error,
    quote_from_payload,
)

from .offers import (
    ineligible_offer_st,
    is_eligible,
    landed,
    offer,
    offer_st,
    payload,
    rules_st,
)

RULES = OfferRules()


def test_lowest_landed_price_wins_and_is_reported_in_full() -> None:
    quote = quote_from_payload(
        payload([offer(1000, shipping=500, seller="S1"), offer(1200, seller="S2", fba=True)]),
        RULES,
    )
    assert quote.status is QuoteStatus.OK
    assert quote.price == Decimal(1200)
    assert quote.offer == ChosenOffer(
        seller_id="S2",
        listing_price=Decimal(1200),
        shipping=Decimal(0),
        points=Decimal(0),
        is_fba=True,
        is_prime=False,
        max_handling_hours=24,
    )
    assert quote.offer_count == 2
    assert quote.error is None


def test_points_count_only_when_the_rules_say_so() -> None:
    offers = [offer(1000, points=300, seller="P"), offer(900, seller="N")]
    assert quote_from_payload(payload(offers), RULES).price == Decimal(900)
    with_points = quote_from_payload(payload(offers), OfferRules(subtract_points=True))
    assert with_points.price == Decimal(700)
    assert with_points.offer is not None and with_points.offer.seller_id == "P"
    assert with_points.offer.points == Decimal(300)


@pytest.mark.parametrize(
    ("changed", "rules"),
    [
        ({"sub_condition": "used"}, RULES),
        ({"sub_condition": "Mint"}, RULES),
        ({"max_hours": 73}, RULES),
        ({"max_hours": None}, RULES),
        ({"availability": "FUTURE_WITHOUT_DATE"}, RULES),
        ({"availability": "FUTURE_WITH_DATE"}, RULES),
        ({"prime": False}, OfferRules(prime_only=True)),
        ({"prime": None}, OfferRules(prime_only=True)),
        ({"fba": False}, OfferRules(fba_only=True)),
    ],
)
def test_each_rule_excludes_the_cheap_offer(changed: dict[str, Any], rules: OfferRules) -> None:
    good = offer(5000, seller="GOOD", prime=True, fba=True)
    cheap = offer(100, seller="CHEAP", **{"prime": True, "fba": True, **changed})
    quote = quote_from_payload(payload([cheap, good]), rules)
    assert quote.status is QuoteStatus.OK
    assert quote.offer is not None and quote.offer.seller_id == "GOOD"
    only_cheap = quote_from_payload(payload([cheap]), rules)
    assert only_cheap.status is QuoteStatus.NO_ELIGIBLE_OFFER
    assert only_cheap.price is None and only_cheap.offer is None and only_cheap.offer_count == 0


def test_handling_limit_is_inclusive_and_future_can_be_allowed() -> None:
    assert quote_from_payload(payload([offer(max_hours=72)]), RULES).status is QuoteStatus.OK
    future = payload([offer(availability="FUTURE_WITH_DATE")])
    assert quote_from_payload(future, OfferRules(allow_future=True)).status is QuoteStatus.OK


def test_missing_availability_type_means_now_unless_a_date_says_otherwise() -> None:
    assert quote_from_payload(payload([offer(availability=None)]), RULES).status is QuoteStatus.OK
    dated = offer(availability=None)
    dated["ShippingTime"]["availableDate"] = "2030-01-01"
    assert quote_from_payload(payload([dated]), RULES).status is QuoteStatus.NO_ELIGIBLE_OFFER


def test_requested_condition_other_than_new_makes_nothing_eligible() -> None:
    quote = quote_from_payload(payload([offer()], condition="Used"), RULES)
    assert quote.status is QuoteStatus.NO_ELIGIBLE_OFFER


def test_ties_prefer_fba_then_prime_then_seller_id() -> None:
    plain_a = offer(1000, seller="A")
    plain_b = offer(1000, seller="B")
    prime = offer(1000, seller="P", prime=True)
    fba = offer(1000, seller="F", fba=True)
    assert _seller([plain_b, plain_a]) == "A"
    assert _seller([plain_a, prime, plain_b]) == "P"
    assert _seller([prime, fba, plain_a]) == "F"


def _seller(offers: list[dict[str, Any]]) -> str:
    quote = quote_from_payload(payload(offers), RULES)
    assert quote.offer is not None
    return quote.offer.seller_id


@pytest.mark.parametrize(
    "body",
    [
        payload([]),
        payload([], status="NoBuyableOffers"),
        payload([offer()], status="NoBuyableOffers"),
    ],
)
def test_out_of_stock(body: dict[str, Any]) -> None:
    assert quote_from_payload(body, RULES) == Quote(status=QuoteStatus.OUT_OF_STOCK)


def test_offers_listed_with_a_total_of_zero_contradict_each_other_and_prove_nothing() -> None:
    """Found by the fuzz (tests/proof): a malformed answer must never read as a sell-out."""
    quote = quote_from_payload(payload([offer()], total=0), RULES)
    assert quote.status is QuoteStatus.ERROR
    assert quote.error is not None and "TotalOfferCount" in quote.error


def test_float_amounts_are_read_as_written() -> None:
    quote = quote_from_payload(payload([offer(1234.5, shipping=0.1)]), RULES)
    assert quote.price == Decimal("1234.6")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p.pop("status"), "payload.status"),
        (lambda p: p.pop("Summary"), "payload.Summary: missing"),
        (lambda p: p["Summary"].pop("TotalOfferCount"), "TotalOfferCount"),
        (lambda p: p.__setitem__("Offers", None), "payload.Offers"),
        (lambda p: p["Offers"][1].pop("ListingPrice"), "Offers[1].ListingPrice: missing"),
        (lambda p: p["Offers"][1]["ListingPrice"].__setitem__("Amount", "12"), "Offers[1]"),
        (lambda p: p["Offers"][0]["ListingPrice"].__setitem__("Amount", 0), "must be positive"),
        (lambda p: p["Offers"][0]["Shipping"].__setitem__("Amount", -1), "Offers[0].Shipping"),
        (lambda p: p["Offers"][0]["Shipping"].__setitem__("Amount", float("nan")), "finite"),
        (lambda p: p["Offers"][0].pop("ShippingTime"), "Offers[0].ShippingTime: missing"),
        (lambda p: p["Offers"][0].pop("SubCondition"), "Offers[0].SubCondition"),
        (lambda p: p["Offers"][0].pop("IsFulfilledByAmazon"), "IsFulfilledByAmazon"),
        (lambda p: p["Offers"][0]["ShippingTime"].__setitem__("maximumHours", "24"), "Hours"),
        (lambda p: p["Offers"][0]["ShippingTime"].__setitem__("availabilityType", "X"), "X"),
        (lambda p: p["Offers"][0]["PrimeInformation"].__setitem__("IsPrime", "y"), "IsPrime"),
        (lambda p: p["Offers"].__setitem__(0, "offer"), "Offers[0]: expected an object"),
    ],
)
def test_malformed_payload_is_an_error_quote_naming_the_place(mutate: Any, expected: str) -> None:
    body = payload([offer(1000), offer(2000, seller="B")])
    mutate(body)
    quote = quote_from_payload(body, RULES)
    assert quote.status is QuoteStatus.ERROR
    assert quote.price is None and quote.offer is None
    assert quote.error is not None and expected in quote.error, quote.error


def test_a_payload_that_is_not_an_object_is_an_error() -> None:
    quote = quote_from_payload([], RULES)  # type: ignore[arg-type]
    assert quote.status is QuoteStatus.ERROR


def test_non_yen_currency_is_an_error_even_on_an_ineligible_offer() -> None:
    body = payload([offer(1000), offer(10, sub_condition="used", currency="USD")])
    quote = quote_from_payload(body, RULES)
    assert quote.status is QuoteStatus.ERROR
    assert quote.error is not None and "USD" in quote.error and "Offers[1]" in quote.error


def test_other_item_status_is_an_error_not_out_of_stock() -> None:
    quote = quote_from_payload(payload([offer()], status="ActiveButTooSoonForProcessing"), RULES)
    assert quote.status is QuoteStatus.ERROR
    assert quote.error is not None and "ActiveButTooSoonForProcessing" in quote.error


def test_batch_body_shapes_are_unwrapped() -> None:
    assert quote_from_payload({"payload": payload([offer(777)])}, RULES).price == Decimal(777)
    failed = quote_from_payload(
        {"errors": [{"code": "InvalidInput", "message": "Invalid Input", "details": "ASIN"}]},
        RULES,
    )
    assert failed.status is QuoteStatus.ERROR
    assert failed.error == "item failed: InvalidInput: Invalid Input (ASIN)"


def test_quote_from_error() -> None:
    assert quote_from_error("timeout") == Quote(status=QuoteStatus.ERROR, error="timeout")


# ---------------------------------------------------------------- properties

offers_st = st.lists(offer_st(), max_size=8)


@settings(max_examples=120)
@given(offers=offers_st, rules=rules_st)
def test_status_and_price_match_the_oracle(offers: list[dict[str, Any]], rules: OfferRules) -> None:
    quote = quote_from_payload(payload(offers), rules)
    eligible = [raw for raw in offers if is_eligible(raw, rules)]
    if not offers:
        assert quote.status is QuoteStatus.OUT_OF_STOCK
    elif not eligible:
        assert quote.status is QuoteStatus.NO_ELIGIBLE_OFFER
    else:
        assert quote.status is QuoteStatus.OK
        assert quote.price == min(landed(raw, rules) for raw in eligible)
        assert quote.offer_count == len(eligible)
    assert (quote.price is None) == (quote.status is not QuoteStatus.OK)
    assert (quote.offer is None) == (quote.status is not QuoteStatus.OK)


@settings(max_examples=120)
@given(offers=offers_st, rules=rules_st)
def test_the_chosen_offer_is_one_of_the_eligible_offers(
    offers: list[dict[str, Any]], rules: OfferRules
) -> None:
    quote = quote_from_payload(payload(offers), rules)
    if quote.offer is None:
        return
    chosen = quote.offer
    matches = [
        raw
        for raw in offers
        if raw["SellerId"] == chosen.seller_id
        and Decimal(str(raw["ListingPrice"]["Amount"])) == chosen.listing_price
        and Decimal(str(raw["Shipping"]["Amount"])) == chosen.shipping
        and raw["IsFulfilledByAmazon"] == chosen.is_fba
    ]
    assert matches, "chosen offer is not in the payload"
    assert any(is_eligible(raw, rules) for raw in matches)
    assert chosen.max_handling_hours <= rules.max_handling_hours
    assert chosen.is_prime or not rules.prime_only
    assert chosen.is_fba or not rules.fba_only
    if quote.price is not None:
        expected = chosen.listing_price + chosen.shipping
        assert quote.price == (expected - chosen.points if rules.subtract_points else expected)


@settings(max_examples=120)
@given(data=st.data(), offers=st.lists(offer_st(), min_size=1, max_size=6), rules=rules_st)
def test_adding_an_ineligible_offer_never_changes_the_quote(
    data: st.DataObject, offers: list[dict[str, Any]], rules: OfferRules
) -> None:
    before = quote_from_payload(payload(offers), rules)
    extra = data.draw(ineligible_offer_st(rules))
    where = data.draw(st.integers(0, len(offers)))
    after = quote_from_payload(payload([*offers[:where], extra, *offers[where:]]), rules)
    assert after == before


@settings(max_examples=120)
@given(data=st.data(), offers=offers_st, rules=rules_st)
def test_the_order_of_offers_never_matters(
    data: st.DataObject, offers: list[dict[str, Any]], rules: OfferRules
) -> None:
    shuffled = data.draw(st.permutations(offers))
    assert quote_from_payload(payload(shuffled), rules) == quote_from_payload(
        payload(offers), rules
    )


@settings(max_examples=50)
@given(offers=offers_st, rules=rules_st)
def test_the_payload_is_not_modified(offers: list[dict[str, Any]], rules: OfferRules) -> None:
    body = payload(offers)
    snapshot = copy.deepcopy(body)
    quote_from_payload(body, rules)
    assert body == snapshot


@settings(max_examples=80)
@given(
    offers=offers_st,
    rules=rules_st,
    key=st.sampled_from(["ListingPrice", "Shipping", "ShippingTime", "SubCondition"]),
    junk=st.sampled_from([None, "x", 3, [], True]),
    data=st.data(),
)
def test_any_broken_field_gives_an_error_quote_and_never_raises(
    offers: list[dict[str, Any]], rules: OfferRules, key: str, junk: Any, data: st.DataObject
) -> None:
    assume(not (key == "SubCondition" and isinstance(junk, str)))  # a string is readable
    if not offers:
        offers = [offer()]
    index = data.draw(st.integers(0, len(offers) - 1))
    offers[index][key] = junk
    quote = quote_from_payload(payload(offers), rules)
    assert quote.status is QuoteStatus.ERROR
    assert quote.error is not None and f"Offers[{index}]" in quote.error
