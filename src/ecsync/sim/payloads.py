"""SP-API JSON shapes built from the market model (Product Pricing v0, Catalog 2022-04-01).

One module builds them so that every SP-API route serves the same shapes. Field names,
nesting and value types follow Amazon's models in ``shared/specs/amazon``; the
conformance tests validate every shape built here against them.

The simulator returns every offer regardless of the requested ``ItemCondition`` (echoing
the condition back), so used offers reach the client and its own condition filter is
exercised; Amazon's own summary groups likewise cover every condition.

The Buy Box (the featured offer) is chosen by the simulator's own rule, :func:`buy_box_index`:
the cheapest (listing price + shipping) *featured* offer in *new* condition that is available
*now*, whatever its handling time. A reseller's rules (``sim/synced.py``: ships within 72 h)
are stricter, so the box may be held by an offer a reseller would not buy from (a 96 h seller
cheaper than every fast one): a client that takes the Buy Box price for its cost is caught.
Every operation shows the same box: ``IsBuyBoxWinner`` and ``BuyBoxPrices`` of getItemOffers,
``CompetitivePriceId`` "1" of getCompetitivePricing, ``featuredBuyingOptions`` of
getCompetitiveSummary (``summary_payloads.py``), and the market events' ``buy_box_*``. The
Used Buy Box (``CompetitivePriceId`` "2") follows the same rule among used offers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from ecsync.sim.market import JAPAN_MARKETPLACE_ID, Offer

CURRENCY = "JPY"
DISPLAY_GROUP = "hobby_display_on_website"
QUOTA_EXCEEDED = "You exceeded your quota for the requested resource."
ACCESS_DENIED = "Access to requested resource is denied."
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."
# getCompetitivePricing's ``subcondition`` words (the v0 model lists "Very Good", spaced).
_SUBCONDITION_TEXT = {
    "new": "New",
    "mint": "Mint",
    "very_good": "Very Good",
    "good": "Good",
    "acceptable": "Acceptable",
}
CATALOG_DATASETS = frozenset(
    {
        "attributes",
        "classifications",
        "dimensions",
        "identifiers",
        "images",
        "productTypes",
        "relationships",
        "salesRanks",
        "summaries",
        "vendorDetails",
    }
)


def money(amount: int) -> dict[str, Any]:
    return {"CurrencyCode": CURRENCY, "Amount": float(amount)}


def errors_body(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


def _points(points: int) -> dict[str, Any]:
    return {"PointsNumber": points, "PointsMonetaryValue": money(points)}


def buy_box_index(offers: Sequence[Offer], condition: str = "new") -> int:
    """The index of the Buy Box offer (-1: none): the cheapest featured offer of ``condition``
    (``new`` or ``used``, :attr:`Offer.condition`) that is available now, any handling time.

    ``offers`` come cheapest first (price + shipping, as :class:`Market` keeps them), so the
    first match is the cheapest. Handling time is deliberately not looked at: Amazon features
    offers on its own criteria, not on a reseller's (see the module docstring)."""
    for index, offer in enumerate(offers):
        if offer.featured and offer.condition == condition and offer.availability == "NOW":
            return index
    return -1


def offer_detail(offer: Offer, winner: bool) -> dict[str, Any]:
    shipping_time: dict[str, Any] = {
        "minimumHours": offer.min_hours,
        "maximumHours": offer.max_hours,
        "availabilityType": offer.availability,
    }
    if offer.available_date:
        shipping_time["availableDate"] = f"{offer.available_date}T00:00:00Z"
    seller_hash = zlib.crc32(offer.seller_id.encode())  # stable, unlike hash()
    detail: dict[str, Any] = {
        "Shipping": money(offer.shipping),
        "ListingPrice": money(offer.price),
        "ShippingTime": shipping_time,
        "ShipsFrom": {"Country": "JP"},
        "SellerFeedbackRating": {
            "SellerPositiveFeedbackRating": 90.0 + seller_hash % 10,
            "FeedbackCount": 50 + seller_hash % 5000,
        },
        "PrimeInformation": {"IsPrime": offer.prime, "IsNationalPrime": offer.prime},
        "SubCondition": offer.sub_condition,
        "SellerId": offer.seller_id,
        "IsFeaturedMerchant": offer.featured,
        "IsBuyBoxWinner": winner,
        "IsFulfilledByAmazon": offer.fba,
    }
    if offer.points:
        detail["Points"] = _points(offer.points)
    return detail


def _summary(offers: Sequence[Offer], winner: int, list_price: int, rank: int) -> dict[str, Any]:
    counts: dict[tuple[str, str], int] = {}
    eligible: dict[tuple[str, str], int] = {}
    lowest: dict[tuple[str, str], Offer] = {}
    for offer in offers:
        key = (offer.condition, "Amazon" if offer.fba else "Merchant")
        counts[key] = counts.get(key, 0) + 1
        eligible[key] = eligible.get(key, 0) + (1 if offer.featured else 0)
        best = lowest.get(key)
        if best is None or offer.landed - offer.points < best.landed - best.points:
            lowest[key] = offer
    summary: dict[str, Any] = {
        "TotalOfferCount": len(offers),
        "NumberOfOffers": [
            {"condition": c, "fulfillmentChannel": f, "OfferCount": n}
            for (c, f), n in counts.items()
        ],
        "BuyBoxEligibleOffers": [
            {"condition": c, "fulfillmentChannel": f, "OfferCount": n}
            for (c, f), n in eligible.items()
        ],
        "ListPrice": money(list_price),
        "SalesRankings": [{"ProductCategoryId": DISPLAY_GROUP, "Rank": rank}],
    }
    if lowest:
        entries = []
        for (condition, channel), offer in lowest.items():
            entry: dict[str, Any] = {
                "condition": condition,
                "fulfillmentChannel": channel,
                "LandedPrice": money(offer.landed - offer.points),
                "ListingPrice": money(offer.price),
                "Shipping": money(offer.shipping),
            }
            if offer.points:
                entry["Points"] = _points(offer.points)
            entries.append(entry)
        summary["LowestPrices"] = entries
    if winner >= 0:
        offer = offers[winner]
        summary["BuyBoxPrices"] = [
            {
                "condition": offer.condition,
                "LandedPrice": money(offer.landed - offer.points),
                "ListingPrice": money(offer.price),
                "Shipping": money(offer.shipping),
                "sellerId": offer.seller_id,
            }
        ]
    return summary


def offers_payload(
    asin: str,
    offers: Sequence[Offer],
    *,
    list_price: int,
    rank: int,
    item_condition: str = "New",
) -> dict[str, Any]:
    """A ``GetOffersResult`` (the ``payload`` of getItemOffers and of each batch entry)."""
    winner = buy_box_index(offers)
    return {
        "ASIN": asin,
        "status": "Success" if offers else "NoBuyableOffers",
        "ItemCondition": item_condition,
        "Identifier": {
            "MarketplaceId": JAPAN_MARKETPLACE_ID,
            "ItemCondition": item_condition,
            "ASIN": asin,
        },
        "Summary": _summary(offers, winner, list_price, rank),
        "Offers": [offer_detail(offer, index == winner) for index, offer in enumerate(offers)],
        "marketplaceId": JAPAN_MARKETPLACE_ID,
    }


def _price_type(offer: Offer) -> dict[str, Any]:
    price: dict[str, Any] = {
        "LandedPrice": money(offer.landed - offer.points),
        "ListingPrice": money(offer.price),
        "Shipping": money(offer.shipping),
    }
    if offer.points:
        price["Points"] = _points(offer.points)
    return price


def competitive_pricing(asin: str, offers: Sequence[Offer], rank: int) -> dict[str, Any]:
    """One ``Price`` entry of getCompetitivePricing: the Buy Box prices and offer counts.

    ``CompetitivePrices``: id "1" the New Buy Box, id "2" the Used Buy Box, each present only
    when :func:`buy_box_index` finds a winner for that condition; so a product without any
    Buy Box has an empty list, as Amazon answers it. ``NumberOfOfferListings``: how many
    offers are listed per condition (``New``: sub-condition new; ``Used``: any other), every
    listed offer whatever its availability, handling time or featured flag -- the offers
    getItemOffers lists -- and a condition without offers is left out. No shipping time and no
    seller: this operation is a change detector, not a quote."""
    prices: list[dict[str, Any]] = []
    for price_id, condition, label in (("1", "new", "New"), ("2", "used", "Used")):
        winner = buy_box_index(offers, condition)
        if winner < 0:
            continue
        offer = offers[winner]
        subcondition = "New" if condition == "new" else _SUBCONDITION_TEXT[offer.sub_condition]
        prices.append(
            {
                "CompetitivePriceId": price_id,
                "Price": _price_type(offer),
                "condition": label,
                "subcondition": subcondition,
                "belongsToRequester": False,
            }
        )
    new_count = sum(1 for offer in offers if offer.condition == "new")
    listings = []
    if new_count:
        listings.append({"Count": new_count, "condition": "New"})
    if len(offers) > new_count:
        listings.append({"Count": len(offers) - new_count, "condition": "Used"})
    return {
        "status": "Success",
        "ASIN": asin,
        "Product": {
            "Identifiers": {
                "MarketplaceASIN": {"MarketplaceId": JAPAN_MARKETPLACE_ID, "ASIN": asin}
            },
            "CompetitivePricing": {
                "CompetitivePrices": prices,
                "NumberOfOfferListings": listings,
            },
            "SalesRankings": [{"ProductCategoryId": DISPLAY_GROUP, "Rank": rank}],
        },
    }


def competitive_pricing_error(asin: str) -> dict[str, Any]:
    return {
        "status": "ClientError",
        "ASIN": asin,
        "error": {
            "code": "InvalidParameterValue",
            "message": f"ASIN {asin} is not valid for marketplace {JAPAN_MARKETPLACE_ID}",
        },
    }


def catalog_item(
    asin: str,
    *,
    title: str,
    brand: str,
    list_price: int,
    rank: int,
    included: frozenset[str],
) -> dict[str, Any]:
    """A Catalog Items 2022-04-01 ``Item`` with the requested datasets (default summaries)."""
    market = JAPAN_MARKETPLACE_ID
    item: dict[str, Any] = {"asin": asin}
    if "summaries" in included:
        item["summaries"] = [
            {
                "marketplaceId": market,
                "brand": brand,
                "browseClassification": {"displayName": "ホビー", "classificationId": "2277721051"},
                "itemClassification": "BASE_PRODUCT",
                "itemName": title,
                "manufacturer": brand,
                "websiteDisplayGroup": DISPLAY_GROUP,
                "websiteDisplayGroupName": "ホビー",
            }
        ]
    if "attributes" in included:
        item["attributes"] = {
            "item_name": [{"value": title, "language_tag": "ja_JP", "marketplace_id": market}],
            "brand": [{"value": brand, "language_tag": "ja_JP", "marketplace_id": market}],
            "list_price": [{"value": list_price, "currency": CURRENCY, "marketplace_id": market}],
        }
    if "identifiers" in included:
        ean = f"49{int(asin[2:], 36) % 10**10:010d}"
        ean += str((10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(ean)) % 10) % 10)
        item["identifiers"] = [
            {"marketplaceId": market, "identifiers": [{"identifierType": "EAN", "identifier": ean}]}
        ]
    if "images" in included:
        link = f"https://m.media-amazon.com/images/I/sim-{asin}.jpg"
        item["images"] = [
            {
                "marketplaceId": market,
                "images": [{"variant": "MAIN", "link": link, "height": 500, "width": 500}],
            }
        ]
    if "productTypes" in included:
        item["productTypes"] = [{"marketplaceId": market, "productType": "HOBBIES"}]
    if "salesRanks" in included:
        item["salesRanks"] = [
            {
                "marketplaceId": market,
                "displayGroupRanks": [
                    {"websiteDisplayGroup": DISPLAY_GROUP, "title": "ホビー", "rank": rank}
                ],
            }
        ]
    for dataset in ("classifications", "dimensions", "relationships", "vendorDetails"):
        if dataset in included:
            item[dataset] = []
    return item
