"""From one item's Amazon offers to a *quote*: the price we would pay, or why there is none.

The reseller buys from Amazon only after a channel sale, so the source price is the cheapest
offer the reseller is actually willing to buy from (new, shipping soon enough, and Prime or
FBA when the account insists), landed (price + shipping, less points if they count). Every
decision downstream (price, visibility) rests on this one value, so the parser is strict:
anything it cannot read with certainty becomes an ``error`` quote that says what and where,
never a guess, and never an exception (one bad item must not sink a batch of twenty).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeGuard

from ecsync.config import OfferRules
from ecsync.domain.model import QuoteStatus

__all__ = [
    "ChosenOffer",
    "Quote",
    "QuoteStatus",
    "quote_from_error",
    "quote_from_item_error",
    "quote_from_payload",
    "settle_batch",
]

SOURCE_CURRENCY: Final = "JPY"
_AVAILABILITY_TYPES: Final = frozenset({"NOW", "FUTURE_WITHOUT_DATE", "FUTURE_WITH_DATE"})
_CONDITIONS: Final = frozenset({"new", "used", "collectible", "refurbished", "club"})


@dataclass(frozen=True, slots=True)
class ChosenOffer:
    """The offer the source price comes from; kept so a price can be explained later."""

    seller_id: str
    listing_price: Decimal
    shipping: Decimal
    points: Decimal
    is_fba: bool
    is_prime: bool
    max_handling_hours: int


@dataclass(frozen=True, slots=True)
class Quote:
    """The outcome of one look at an item's offers.

    ``price`` is the landed source price in JPY, set only when ``status`` is ok.
    ``offer_count`` counts the *eligible* offers (the depth of supply we could buy from), so
    an offer we would never buy from cannot change the quote in any field.
    """

    status: QuoteStatus
    price: Decimal | None = None
    offer: ChosenOffer | None = None
    offer_count: int = 0
    error: str | None = None


def quote_from_error(message: str) -> Quote:
    """A quote for a request or item that failed: it carries the message and no evidence."""
    return Quote(status=QuoteStatus.ERROR, error=message or "unknown error")


def quote_from_item_error(asin: str, status_code: int | None, code: str, message: str) -> Quote:
    """A quote for one failed item of a batch answer.

    Amazon answers an ASIN that does not exist in the marketplace with an item-level 400
    ``InvalidInput`` whose message names it ("B00ZUXG6GY is an invalid ASIN for marketplace
    ..."). That is an answer about the ASIN: ``unknown_asin``, pending :func:`settle_batch`.
    An ``InvalidInput`` that does not name the ASIN ("Requested MarketplaceId is invalid",
    "Duplicate requests submitted") is about the request, and any other failure is an error.
    """
    text = f"HTTP {status_code}: {code} {message}".strip()
    if status_code == 400 and code == "InvalidInput" and asin.casefold() in message.casefold():
        return Quote(status=QuoteStatus.UNKNOWN_ASIN, error=text)
    return quote_from_error(text)


_ANSWERED: Final = frozenset(
    {QuoteStatus.OK, QuoteStatus.OUT_OF_STOCK, QuoteStatus.NO_ELIGIBLE_OFFER}
)


def settle_batch(quotes: Sequence[Quote]) -> list[Quote]:
    """The quotes of one batch answer, with ``unknown_asin`` kept only where it is evidence.

    An ASIN refused while another item of the same batch was answered is unknown to Amazon.
    When no item was answered (every item refused, or refused and failed), the refusals say
    nothing about any one ASIN (a wrong marketplace, a changed request shape, an outage all
    look like that): they become error quotes, which keep the listing as it is.
    """
    if any(quote.status in _ANSWERED for quote in quotes):
        return list(quotes)
    return [
        quote_from_error(f"{q.error}; no item of its batch was answered: not taken as evidence")
        if q.status is QuoteStatus.UNKNOWN_ASIN
        else q
        for q in quotes
    ]


class _Malformed(Exception):
    """Internal: the payload is not what the schema promises (caught, never escapes)."""


@dataclass(frozen=True, slots=True)
class _Offer:
    condition: str
    sub_condition: str
    listing_price: Decimal
    shipping: Decimal
    points: Decimal
    is_fba: bool
    is_prime: bool
    max_hours: int | None
    availability: str
    seller_id: str


def quote_from_payload(payload: Mapping[str, Any], rules: OfferRules) -> Quote:
    """Turn a ``GetOffersResult`` into a quote; never raises.

    Also accepts the batch item ``body`` shape (``{"payload": {...}}`` or
    ``{"errors": [...]}``) so a caller cannot get the unwrapping wrong.
    """
    try:
        return _quote(payload, rules)
    except _Malformed as exc:
        return quote_from_error(f"malformed offers payload: {exc}")


def _quote(payload: Any, rules: OfferRules) -> Quote:
    if not isinstance(payload, Mapping):
        raise _Malformed(f"payload: expected an object, got {type(payload).__name__}")
    if "errors" in payload and "Offers" not in payload:
        return quote_from_error(_describe_errors(payload["errors"]))
    if "payload" in payload and "Offers" not in payload:
        return _quote(payload["payload"], rules)

    status = _string(payload, "status", "payload")
    if status.casefold() == "nobuyableoffers":
        return Quote(status=QuoteStatus.OUT_OF_STOCK)
    if status.casefold() != "success":
        asin = payload.get("ASIN")
        where = f" for {asin}" if isinstance(asin, str) else ""
        return quote_from_error(f"item status {status!r}{where}")

    item_condition = _string(payload, "ItemCondition", "payload")
    if item_condition.casefold() not in _CONDITIONS:  # else every offer would be "not new"
        raise _Malformed(f"payload.ItemCondition: unknown condition {item_condition!r}")
    summary = _mapping(payload, "Summary", "payload")
    total = summary.get("TotalOfferCount")
    if not _is_int(total) or total < 0:
        raise _Malformed(f"payload.Summary.TotalOfferCount: expected a count, got {total!r}")
    raw_offers = payload.get("Offers")
    if not isinstance(raw_offers, Sequence) or isinstance(raw_offers, str | bytes):
        raise _Malformed(f"payload.Offers: expected a list, got {type(raw_offers).__name__}")
    try:
        offers = [
            _parse_offer(raw, f"payload.Offers[{index}]", item_condition)
            for index, raw in enumerate(raw_offers)
        ]
    except _Currency as exc:
        return quote_from_error(str(exc))

    if offers and total == 0:  # a contradiction is not evidence of a sell-out
        raise _Malformed(f"payload.Summary.TotalOfferCount: 0 while Offers lists {len(offers)}")
    if not offers:
        return Quote(status=QuoteStatus.OUT_OF_STOCK)
    eligible = [offer for offer in offers if _eligible(offer, rules)]
    if not eligible:
        return Quote(status=QuoteStatus.NO_ELIGIBLE_OFFER)
    best = min(eligible, key=lambda offer: _preference(offer, rules))
    return Quote(
        status=QuoteStatus.OK,
        price=_landed(best, rules),
        offer=ChosenOffer(
            seller_id=best.seller_id,
            listing_price=best.listing_price,
            shipping=best.shipping,
            points=best.points,
            is_fba=best.is_fba,
            is_prime=best.is_prime,
            max_handling_hours=best.max_hours if best.max_hours is not None else 0,
        ),
        offer_count=len(eligible),
    )


def _eligible(offer: _Offer, rules: OfferRules) -> bool:
    """Would the reseller buy from this offer? Unknown handling time means no."""
    return (
        offer.condition.casefold() == "new"
        and offer.sub_condition.casefold() == "new"
        and offer.max_hours is not None
        and offer.max_hours <= rules.max_handling_hours
        and (offer.availability == "NOW" or rules.allow_future)
        and (offer.is_prime or not rules.prime_only)
        and (offer.is_fba or not rules.fba_only)
    )


def _landed(offer: _Offer, rules: OfferRules) -> Decimal:
    landed = offer.listing_price + offer.shipping
    return landed - offer.points if rules.subtract_points else landed


def _preference(offer: _Offer, rules: OfferRules) -> tuple[Any, ...]:
    """Cheapest first; on a tie FBA, then Prime, then faster handling, then seller id.

    The key ends with every field a ``ChosenOffer`` carries, so two offers that tie on the
    whole key produce equal quotes: the order of offers in the payload never matters.
    """
    return (
        _landed(offer, rules),
        not offer.is_fba,
        not offer.is_prime,
        offer.max_hours,
        offer.seller_id,
        offer.listing_price,
        offer.shipping,
        offer.points,
    )


class _Currency(Exception):
    """Internal: an amount in a currency other than yen (an error quote, not a parse bug)."""


def _parse_offer(raw: Any, where: str, item_condition: str) -> _Offer:
    if not isinstance(raw, Mapping):
        raise _Malformed(f"{where}: expected an object, got {type(raw).__name__}")
    listing_price = _money(raw, "ListingPrice", where)
    if listing_price <= 0:
        raise _Malformed(f"{where}.ListingPrice.Amount: must be positive, got {listing_price}")
    shipping = _money(raw, "Shipping", where)
    points = Decimal(0)
    raw_points = raw.get("Points")
    if raw_points is not None:
        if not isinstance(raw_points, Mapping):
            raise _Malformed(f"{where}.Points: expected an object")
        if raw_points.get("PointsMonetaryValue") is not None:
            points = _money(raw_points, "PointsMonetaryValue", f"{where}.Points")
    if points > listing_price + shipping:
        raise _Malformed(f"{where}.Points: worth {points}, more than the price it comes with")
    shipping_time = _mapping(raw, "ShippingTime", where)
    max_hours = shipping_time.get("maximumHours")
    if max_hours is not None and (not _is_int(max_hours) or max_hours < 0):
        raise _Malformed(f"{where}.ShippingTime.maximumHours: expected hours, got {max_hours!r}")
    is_fba = raw.get("IsFulfilledByAmazon")
    if not isinstance(is_fba, bool):
        raise _Malformed(f"{where}.IsFulfilledByAmazon: expected true/false, got {is_fba!r}")
    seller_id = raw.get("SellerId", "")
    if not isinstance(seller_id, str):
        raise _Malformed(f"{where}.SellerId: expected a string, got {seller_id!r}")
    # A per-offer condition, when a payload carries one, beats the requested condition.
    condition = raw.get("ItemCondition", raw.get("condition", item_condition))
    if not isinstance(condition, str):
        raise _Malformed(f"{where}.ItemCondition: expected a string, got {condition!r}")
    return _Offer(
        condition=condition,
        sub_condition=_string(raw, "SubCondition", where),
        listing_price=listing_price,
        shipping=shipping,
        points=points,
        is_fba=is_fba,
        is_prime=_is_prime(raw, where),
        max_hours=max_hours,
        availability=_availability(shipping_time, f"{where}.ShippingTime"),
        seller_id=seller_id,
    )


def _is_prime(raw: Mapping[str, Any], where: str) -> bool:
    prime = raw.get("PrimeInformation")
    if prime is None:
        return False
    if not isinstance(prime, Mapping):
        raise _Malformed(f"{where}.PrimeInformation: expected an object")
    is_prime = prime.get("IsPrime", False)
    if not isinstance(is_prime, bool):
        raise _Malformed(f"{where}.PrimeInformation.IsPrime: expected true/false")
    return is_prime


def _availability(shipping_time: Mapping[str, Any], where: str) -> str:
    """The schema makes availabilityType optional: absent means now, unless a date says not."""
    value = shipping_time.get("availabilityType")
    if value is None:
        return "FUTURE_WITH_DATE" if shipping_time.get("availableDate") else "NOW"
    if value not in _AVAILABILITY_TYPES:
        raise _Malformed(f"{where}.availabilityType: unknown value {value!r}")
    return str(value)


def _money(container: Mapping[str, Any], key: str, where: str) -> Decimal:
    money = _mapping(container, key, where)
    path = f"{where}.{key}"
    currency = money.get("CurrencyCode")
    if not isinstance(currency, str):
        raise _Malformed(f"{path}.CurrencyCode: missing")
    if currency != SOURCE_CURRENCY:
        raise _Currency(f"non-{SOURCE_CURRENCY} currency {currency!r} at {path}")
    amount = money.get("Amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float | Decimal):
        raise _Malformed(f"{path}.Amount: expected a number, got {amount!r}")
    if isinstance(amount, float) and not math.isfinite(amount):
        raise _Malformed(f"{path}.Amount: not a finite number")
    # str() of a float is its shortest repr, so 24.99 stays 24.99 rather than 24.989999...
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not value.is_finite() or value < 0:
        raise _Malformed(f"{path}.Amount: must be a non-negative number, got {amount!r}")
    return value


def _mapping(container: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = container.get(key)
    if value is None:
        raise _Malformed(f"{where}.{key}: missing")
    if not isinstance(value, Mapping):
        raise _Malformed(f"{where}.{key}: expected an object, got {type(value).__name__}")
    return value


def _string(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe_errors(errors: Any) -> str:
    """``[{"code", "message", "details"?}]`` as one line, tolerating any shape."""
    if not isinstance(errors, Sequence) or isinstance(errors, str | bytes) or not errors:
        return f"item failed: {errors!r}"
    parts = []
    for error in errors:
        if isinstance(error, Mapping):
            text = f"{error.get('code', '?')}: {error.get('message', '')}".rstrip(": ")
            if error.get("details"):
                text += f" ({error['details']})"
            parts.append(text)
        else:
            parts.append(repr(error))
    return "item failed: " + "; ".join(parts)
