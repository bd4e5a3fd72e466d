"""Amazon's own ``x-amzn-api-sandbox`` examples as test vectors for the offers parser.

The examples are US marketplace data (USD), so as given they must all be refused as
non-yen; rewritten to JPY (same amounts) they exercise offer selection on real shapes.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ecsync.config import OfferRules
from ecsync.domain.quotes import QuoteStatus, quote_from_payload

from .offers import offer, payload

SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "amazon"
SPEC_FILE = SPECS / "productPricingV0.json"

pytestmark = pytest.mark.skipif(
    not SPEC_FILE.exists(), reason=f"Amazon models not found at {SPEC_FILE.resolve()}"
)


@cache
def _spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_FILE.read_text(encoding="utf-8")))


def _examples(path: str, method: str, code: str) -> list[Any]:
    response = _spec()["paths"][path][method]["responses"][code]
    return [example["response"] for example in response["x-amzn-api-sandbox"]["static"]]


def _item_payloads() -> dict[str, dict[str, Any]]:
    """Every GetOffersResult in the examples, by ASIN (single and batch operations)."""
    found: dict[str, dict[str, Any]] = {}
    for response in _examples("/products/pricing/v0/items/{Asin}/offers", "get", "200"):
        found.setdefault(response["payload"]["ASIN"], response["payload"])
    for response in _examples("/batches/products/pricing/v0/itemOffers", "post", "200"):
        for item in response["responses"]:
            if item["status"]["statusCode"] == 200:
                found[item["body"]["payload"]["ASIN"]] = item["body"]["payload"]
    return found


def _in_yen(value: Any) -> Any:
    value = copy.deepcopy(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("CurrencyCode") == "USD":
                node["CurrencyCode"] = "JPY"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return value


def test_the_examples_are_there() -> None:
    assert len(_item_payloads()) >= 10


def test_examples_in_dollars_are_refused_as_non_yen() -> None:
    for asin, item in _item_payloads().items():
        quote = quote_from_payload(item, OfferRules())
        if item["status"] == "NoBuyableOffers":
            assert quote.status is QuoteStatus.OUT_OF_STOCK, asin
        else:
            assert quote.status is QuoteStatus.ERROR, asin
            assert quote.error is not None and "'USD'" in quote.error, asin


EXPECTED = {
    # asin: (price, seller, eligible offers) with the default rules (New, <= 72 h, now)
    "B00V5DG6IQ": ("10.0", "AXXXXXXXXXXXXX", 1),
    "B000P6Q7MY": ("21", "A2SNBFWOFW4SWG", 1),
    "B001Q3KU9Q": ("24.99", "A1OHOT6VONX3KA", 1),
    "B007Z07UK6": ("3.5", "ARLPNLRVRA0WL", 10),  # the $1 offer ships in 720 h: excluded
    "B000OQA3N4": ("10", "A3TH9S8BH6GOGM", 3),  # 9.99 + 3.99 shipping is dearer
    "B07PTMKYS7": ("12", "A3TH9S8BH6GOGM", 2),
    "B001PYUTII": ("0.5", "A21GPS04ENK3GH", 15),
    "B00505DW2I": ("14.99", "A5LI4TEX5CN80", 3),  # 10 + 4.99 beats 15 + 0
    "B00CGZQU42": ("50", "A2SNBFWOFW4SWG", 3),  # tie at 50: ships in 24 h, not 48 h
    "B01LY2ZYRF": ("22", "A2SNBFWOFW4SWG", 1),
}


@pytest.mark.parametrize("asin", sorted(EXPECTED))
def test_examples_in_yen_choose_the_cheapest_eligible_offer(asin: str) -> None:
    price, seller, count = EXPECTED[asin]
    quote = quote_from_payload(_in_yen(_item_payloads()[asin]), OfferRules())
    assert quote.status is QuoteStatus.OK
    assert quote.price == Decimal(price)
    assert quote.offer is not None and quote.offer.seller_id == seller
    assert quote.offer_count == count


def test_example_rules_variants() -> None:
    items = {asin: _in_yen(item) for asin, item in _item_payloads().items()}
    prime = quote_from_payload(items["B007Z07UK6"], OfferRules(prime_only=True))
    assert (prime.price, prime.offer_count) == (Decimal(5), 2)
    assert prime.offer is not None and prime.offer.seller_id == "AQBXQGCOQTJS6"
    fba = quote_from_payload(items["B007Z07UK6"], OfferRules(fba_only=True))
    assert fba.status is QuoteStatus.NO_ELIGIBLE_OFFER
    fba_ok = quote_from_payload(items["B00CGZQU42"], OfferRules(fba_only=True))
    assert fba_ok.price == Decimal(100) and fba_ok.offer is not None and fba_ok.offer.is_fba
    slow = quote_from_payload(items["B007Z07UK6"], OfferRules(max_handling_hours=720))
    assert slow.price == Decimal(1)


def test_no_buyable_offers_example_is_out_of_stock() -> None:
    quote = quote_from_payload(_in_yen(_item_payloads()["B00KFRNZY6"]), OfferRules())
    assert quote.status is QuoteStatus.OUT_OF_STOCK


def test_error_examples_become_error_quotes() -> None:
    bodies = [
        *_examples("/products/pricing/v0/items/{Asin}/offers", "get", "400"),
        *_examples("/batches/products/pricing/v0/itemOffers", "post", "400"),
    ]
    assert bodies
    for body in bodies:
        quote = quote_from_payload(body, OfferRules())
        assert quote.status is QuoteStatus.ERROR
        assert quote.error is not None and "InvalidInput" in quote.error


def test_the_test_builders_produce_schema_valid_payloads() -> None:
    """Keeps the hand-made payloads of the other tests honest about the real shape."""
    jsonschema = pytest.importorskip("jsonschema")
    spec = _spec()
    schema = {"$ref": "#/definitions/GetOffersResult", "definitions": spec["definitions"]}
    validator = jsonschema.Draft4Validator(schema)
    body = payload([offer(1000, points=50, prime=True), offer(2000, prime=None, fba=True)])
    validator.validate(body)
    for item in _item_payloads().values():
        validator.validate(item)
