"""Builders and hypothesis strategies for SP-API offers payloads (``GetOffersResult``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ecsync.config import OfferRules


def money(amount: float | int, currency: str = "JPY") -> dict[str, Any]:
    return {"CurrencyCode": currency, "Amount": amount}


def offer(
    price: float | int = 1000,
    *,
    shipping: float | int = 0,
    points: float | int | None = None,
    sub_condition: str = "new",
    max_hours: int | None = 24,
    availability: str | None = "NOW",
    prime: bool | None = False,
    fba: bool = False,
    seller: str = "A1SELLER",
    currency: str = "JPY",
) -> dict[str, Any]:
    shipping_time: dict[str, Any] = {"minimumHours": 0}
    if max_hours is not None:
        shipping_time["maximumHours"] = max_hours
    if availability is not None:
        shipping_time["availabilityType"] = availability
    result: dict[str, Any] = {
        "ListingPrice": money(price, currency),
        "Shipping": money(shipping, currency),
        "ShippingTime": shipping_time,
        "SubCondition": sub_condition,
        "IsFulfilledByAmazon": fba,
        "SellerId": seller,
    }
    if points is not None:
        result["Points"] = {"PointsNumber": int(points), "PointsMonetaryValue": money(points)}
    if prime is not None:
        result["PrimeInformation"] = {"IsPrime": prime, "IsNationalPrime": prime}
    return result


def payload(
    offers: list[dict[str, Any]],
    *,
    status: str = "Success",
    total: int | None = None,
    condition: str = "New",
) -> dict[str, Any]:
    return {
        "ASIN": "B000TEST01",
        "marketplaceId": "A1VC38T7YXB528",
        "status": status,
        "ItemCondition": condition,
        "Identifier": {"MarketplaceId": "A1VC38T7YXB528", "ItemCondition": condition},
        "Summary": {"TotalOfferCount": len(offers) if total is None else total},
        "Offers": offers,
    }


# ---- an oracle written against the raw dicts, independent of the parser under test ----


def is_eligible(raw: dict[str, Any], rules: OfferRules) -> bool:
    time = raw["ShippingTime"]
    prime = raw.get("PrimeInformation", {}).get("IsPrime", False)
    return (
        raw["SubCondition"].lower() == "new"
        and "maximumHours" in time
        and time["maximumHours"] <= rules.max_handling_hours
        and (time.get("availabilityType", "NOW") == "NOW" or rules.allow_future)
        and (prime or not rules.prime_only)
        and (raw["IsFulfilledByAmazon"] or not rules.fba_only)
    )


def landed(raw: dict[str, Any], rules: OfferRules) -> Decimal:
    value = Decimal(str(raw["ListingPrice"]["Amount"])) + Decimal(str(raw["Shipping"]["Amount"]))
    if rules.subtract_points and "Points" in raw:
        value -= Decimal(str(raw["Points"]["PointsMonetaryValue"]["Amount"]))
    return value


# ---- strategies ----

rules_st = st.builds(
    OfferRules,
    max_handling_hours=st.sampled_from([0, 24, 48, 72, 120]),
    allow_future=st.booleans(),
    prime_only=st.booleans(),
    fba_only=st.booleans(),
    subtract_points=st.booleans(),
)


@st.composite
def offer_st(draw: st.DrawFn) -> dict[str, Any]:
    # Few distinct prices and sellers, so that ties actually happen.
    price = draw(st.sampled_from([500, 980, 1000, 1200, 1500]) | st.integers(1, 200_000))
    shipping = draw(st.sampled_from([0, 0, 350, 500]))
    points = draw(st.none() | st.integers(0, min(price, 300)))
    return offer(
        price,
        shipping=shipping,
        points=points,
        sub_condition=draw(st.sampled_from(["new", "New", "used", "mint", "good", "OEM"])),
        max_hours=draw(st.none() | st.sampled_from([0, 24, 48, 72, 96, 720])),
        availability=draw(st.sampled_from(["NOW", "NOW", "FUTURE_WITH_DATE", None])),
        prime=draw(st.none() | st.booleans()),
        fba=draw(st.booleans()),
        seller=draw(st.sampled_from(["A1", "A2", "B7", "ZZ"])),
    )


@st.composite
def ineligible_offer_st(draw: st.DrawFn, rules: OfferRules) -> dict[str, Any]:
    """An offer broken on purpose in one way these rules reject."""
    base = draw(offer_st())
    ways = ["condition", "handling", "unknown_handling"]
    if not rules.allow_future:
        ways.append("future")
    if rules.prime_only:
        ways.append("prime")
    if rules.fba_only:
        ways.append("fba")
    way = draw(st.sampled_from(ways))
    if way == "condition":
        base["SubCondition"] = draw(st.sampled_from(["used", "Mint", "Refurbished"]))
    elif way == "handling":
        base["ShippingTime"]["maximumHours"] = rules.max_handling_hours + draw(st.integers(1, 500))
    elif way == "unknown_handling":
        base["ShippingTime"].pop("maximumHours", None)
    elif way == "future":
        base["ShippingTime"]["availabilityType"] = "FUTURE_WITHOUT_DATE"
    elif way == "prime":
        base["PrimeInformation"] = {"IsPrime": False, "IsNationalPrime": False}
    else:
        base["IsFulfilledByAmazon"] = False
    assert not is_eligible(base, rules)
    return base
