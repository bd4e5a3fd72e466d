"""Fuzz the parsers that turn API answers into evidence: Amazon's offers (the quote parser),
BASE items and eBay offers. Whatever arrives, they never raise, and a malformed answer is
never read as a sell-out (``out_of_stock``, stock 0, hidden): a malformed answer is no
evidence, and reading it as one would take a listing off sale, or keep it there.

Payloads come from Amazon's own model (``productPricingV0.json``, through
hypothesis-jsonschema), from well-formed answers with one required part broken, and from
arbitrary JSON. "Malformed" is defined here, independently of the parsers.
"""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import hypothesis_jsonschema._from_schema as jsonschema_internals
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils
from hypothesis_jsonschema import from_schema

from ecsync.channels.ebay import _offer_item
from ecsync.channels.thebase import _parse
from ecsync.config import OfferRules
from ecsync.domain.model import QuoteStatus
from ecsync.domain.quotes import quote_from_payload

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "amazon" / "productPricingV0.json"
RULES = OfferRules()
FUZZ = settings(
    max_examples=200,  # per property; deadline off: a loaded machine is not a bug
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Values that are not a number (nor a count, nor a flag): what a broken answer carries.
JUNK = st.sampled_from([None, "", "abc", "12,00", [], {}, [1], {"a": 1}, "NaN", "Infinity"])


class _ManyWithMore:
    """hypothesis-jsonschema 0.23 drives ``many`` through ``more()``, which newer Hypothesis
    replaced by a with/for protocol; this adapter (test-only) speaks the old one over it."""

    def __init__(self, data: Any, **sizes: Any) -> None:
        self._many = conjecture_utils.many(data, **sizes)
        self._many.__enter__()
        self._steps = iter(self._many)

    def more(self) -> bool:
        if next(self._steps, StopIteration) is StopIteration:
            self._many.__exit__(None)
            return False
        return True

    def reject(self) -> None:
        self._many.reject()


if not hasattr(conjecture_utils.many, "more"):

    class _CompatUtils:
        many = _ManyWithMore

        def __getattr__(self, name: str) -> Any:
            return getattr(conjecture_utils, name)

    jsonschema_internals.cu = _CompatUtils()  # type: ignore[assignment]


# Optional parts of Amazon's model the quote parser reads; the others (lowest prices, buy box,
# sales ranks, ...) are left out of generation: they only slow it down.
READ = {
    "GetOffersResult": {"ASIN"},
    "Summary": set(),
    "OfferDetail": {"SellerId", "Points", "PrimeInformation"},
}


def _schema(name: str) -> dict[str, Any]:
    definitions = json.loads(SPEC.read_text(encoding="utf-8"))["definitions"]
    for model, read in READ.items():
        schema = definitions[model]
        keep = set(schema.get("required", [])) | read
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k in keep}
    for schema in definitions.values():
        if schema.get("type") == "object":
            schema.setdefault("additionalProperties", False)  # no random extra keys to filter
    return {"$ref": f"#/definitions/{name}", "definitions": definitions}


def _recognisable_out_of_stock(payload: Any) -> bool:
    """Could an answer honestly say "nothing to buy"? Amazon's NoBuyableOffers status, or a
    Success whose Offers list is empty (none in the requested condition) with a count."""
    if isinstance(payload, dict) and "payload" in payload and "Offers" not in payload:
        return _recognisable_out_of_stock(payload["payload"])
    if not isinstance(payload, dict) or not isinstance(payload.get("status"), str):
        return False
    status = payload["status"].casefold()
    if status == "nobuyableoffers":
        return True
    summary = payload.get("Summary")
    count = summary.get("TotalOfferCount") if isinstance(summary, dict) else None
    return (
        status == "success"
        and isinstance(payload.get("ItemCondition"), str)
        and payload.get("Offers") == []
        and isinstance(count, int)
        and not isinstance(count, bool)
        and count >= 0
    )


def _well_formed_offer() -> dict[str, Any]:
    return {
        "SubCondition": "new",
        "SellerId": "A1SELLER",
        "ListingPrice": {"CurrencyCode": "JPY", "Amount": 2480},
        "Shipping": {"CurrencyCode": "JPY", "Amount": 0},
        "ShippingTime": {"maximumHours": 24, "availabilityType": "NOW"},
        "IsFulfilledByAmazon": True,
    }


def _well_formed() -> dict[str, Any]:
    return {
        "marketplaceId": "A1VC38T7YXB528",
        "ASIN": "B000000001",
        "ItemCondition": "New",
        "status": "Success",
        "Identifier": {"MarketplaceId": "A1VC38T7YXB528", "ItemCondition": "New"},
        "Summary": {"TotalOfferCount": 1},
        "Offers": [_well_formed_offer()],
    }


# Required parts of a well-formed in-stock answer; breaking any one must give an error quote.
REQUIRED = [
    ("status",),
    ("ItemCondition",),
    ("Summary",),
    ("Summary", "TotalOfferCount"),
    ("Offers",),
    ("Offers", 0),
    ("Offers", 0, "ListingPrice"),
    ("Offers", 0, "ListingPrice", "Amount"),
    ("Offers", 0, "ListingPrice", "CurrencyCode"),
    ("Offers", 0, "Shipping"),
    ("Offers", 0, "Shipping", "Amount"),
    ("Offers", 0, "ShippingTime"),
    ("Offers", 0, "IsFulfilledByAmazon"),
    ("Offers", 0, "SubCondition"),
]


def test_the_well_formed_answer_is_a_good_quote() -> None:
    """The base of the mutations is read as in stock: breaking it is what makes it fail."""
    quote = quote_from_payload(_well_formed(), RULES)
    assert quote.status is QuoteStatus.OK and quote.price == Decimal(2480)


@FUZZ
@given(path=st.sampled_from(REQUIRED), junk=JUNK, delete=st.booleans())
def test_a_broken_required_part_is_an_error_never_a_sellout(
    path: tuple[Any, ...], junk: Any, delete: bool
) -> None:
    if path[-1] == "SubCondition" and isinstance(junk, str) and junk:
        return  # any non-empty string is a sub-condition by the model (just not "new")
    if path == ("Offers",) and junk == [] and not delete:
        return  # no offer in the requested condition: a true "out of stock", not a broken one
    if path[-1] == "ShippingTime" and isinstance(junk, dict) and not delete:
        return  # the model makes every field optional: unknown handling time, by choice not bought
    payload = _well_formed()
    parent: Any = payload
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    for shape in (payload, {"payload": payload}):
        quote = quote_from_payload(copy.deepcopy(shape), RULES)
        assert quote.status is QuoteStatus.ERROR, (path, junk, delete, quote)
        assert quote.error


@FUZZ
@given(payload=from_schema(_schema("GetOffersResult")), success=st.booleans(), jpy=st.booleans())
def test_answers_shaped_by_amazons_model_never_raise_nor_fake_a_sellout(
    payload: dict[str, Any], success: bool, jpy: bool
) -> None:
    if success:
        payload["status"] = "Success"
    if jpy:
        for offer in payload.get("Offers", []):
            for key in ("ListingPrice", "Shipping"):
                if isinstance(offer.get(key), dict):
                    offer[key]["CurrencyCode"] = "JPY"
    quote = quote_from_payload(payload, RULES)
    if quote.status is QuoteStatus.OUT_OF_STOCK:
        assert _recognisable_out_of_stock(payload), payload
    if quote.status is QuoteStatus.OK:
        assert quote.price is not None and quote.price.is_finite() and quote.price >= 0


@FUZZ
@given(payload=JSON)
def test_arbitrary_json_is_never_a_crash_nor_a_sellout(payload: Any) -> None:
    for shape in (payload, {"payload": payload}, {"errors": payload}):
        quote = quote_from_payload(shape, RULES)  # type: ignore[arg-type]
        if quote.status is QuoteStatus.OUT_OF_STOCK:
            assert _recognisable_out_of_stock(shape), shape


# --- channels ----------------------------------------------------------------------------


def _exact_zero(value: Any) -> bool:
    """A well-formed zero as BASE and eBay send it: the integer 0 (or its digits)."""
    return (isinstance(value, int) and not isinstance(value, bool) and value == 0) or value == "0"


def _sane_price(price: Decimal | None) -> bool:
    return price is None or (price.is_finite() and not math.isnan(float(price)))


BASE_ITEM = st.fixed_dictionaries(
    {"item_id": st.integers(1, 10**9) | JSON},
    optional={
        "price": st.integers(0, 10**6) | JSON,
        "stock": st.integers(0, 10) | JSON,
        "visible": st.sampled_from([0, 1, "0", "1"]) | JSON,
        "identifier": st.text(max_size=10) | JSON,
        "title": JSON,
    },
)


@FUZZ
@given(raw=BASE_ITEM | JSON)
def test_a_base_item_answer_never_raises_nor_reads_malformed_as_sold_out(raw: Any) -> None:
    parsed = _parse(raw)
    if parsed is None:
        return
    item = parsed[0]
    assert isinstance(raw, dict)
    if item.quantity == 0:
        variations = raw.get("variations") or []
        if variations:  # stock is read from the variation that carries the ASIN
            assert any(_exact_zero(v.get("variation_stock")) for v in variations), raw
        else:
            assert _exact_zero(raw.get("stock")), raw
    if item.visible is False:
        assert _exact_zero(raw.get("visible")), raw
    assert _sane_price(item.price), raw


EBAY_OFFER = st.fixed_dictionaries(
    {"offerId": st.text(min_size=1, max_size=12) | JSON},
    optional={
        "sku": st.text(max_size=10) | JSON,
        "availableQuantity": st.integers(0, 10) | JSON,
        "pricingSummary": st.fixed_dictionaries(
            {},
            optional={
                "price": st.fixed_dictionaries(
                    {}, optional={"value": st.decimals(0, 1000, places=2).map(str) | JSON}
                )
                | JSON
            },
        )
        | JSON,
        "status": st.sampled_from(["PUBLISHED", "UNPUBLISHED"]) | JSON,
    },
)


@FUZZ
@given(offer=EBAY_OFFER | st.dictionaries(st.text(max_size=8), JSON, max_size=5))
def test_an_ebay_offer_answer_never_raises_nor_reads_malformed_as_sold_out(
    offer: dict[str, Any],
) -> None:
    item = _offer_item(offer, "title")
    if item is None:
        return
    if item.quantity == 0:
        assert _exact_zero(offer.get("availableQuantity")), offer
    assert _sane_price(item.price), offer
