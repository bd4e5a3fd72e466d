"""Product Pricing 2022-05-01 ``getCompetitiveSummary`` bodies, built from the market model.

Kept apart from ``payloads.py`` (the v0 shapes) because this API spells everything
differently (``listingPrice{amount, currencyCode}``, ``fulfillmentType`` AFN/MFN, enums like
``VeryGood``) and the conformance tests validate it against its own model,
``productPricing_2022-05-01.json``.

What the simulator puts in a ``CompetitiveSummaryResponseBody`` (only the requested
``includedData``):

- ``featuredBuyingOptions``: one ``New`` option whose single segmented featured offer is the
  Buy Box of :func:`ecsync.sim.payloads.buy_box_index` (cheapest featured new offer available
  now, *any handling time*), featured for everyone (one ``DEFAULT`` segment, 100 % of the
  glance views: the simulator does not segment customers). No Buy Box: an empty list (the
  model requires at least one offer in an option, so the option itself is left out).
- ``lowestPricedOffers``: per requested ``lowestPricedOffersInputs`` entry (default
  ``New``/``Consumer``), up to 20 offers of that condition, cheapest (price + shipping)
  first, every listed offer whatever its availability or handling time (as getItemOffers
  lists them); an input that matches no offer is left out (the model requires at least one
  offer per entry). ``Used`` matches every non-new sub-condition; ``Collectible``,
  ``Refurbished`` and ``Club`` match nothing (the market holds none).
- ``referencePrices``: ``CompetitivePrice`` = the New Buy Box's listing price + shipping (when
  there is a box) and ``WasPrice`` = the product's list price (the simulator keeps no price
  history to take a median from).
- ``similarItems``: an empty list (the simulator relates no products).

None of it carries shipping times: like getCompetitivePricing, this is a change detector; a
client learns whether it may buy from an offer only from getItemOffers(Batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecsync.sim.market import JAPAN_MARKETPLACE_ID, Offer
from ecsync.sim.payloads import CURRENCY, buy_box_index

INCLUDED_DATA = frozenset(
    {"featuredBuyingOptions", "referencePrices", "lowestPricedOffers", "similarItems"}
)
CONDITIONS = ("New", "Used", "Collectible", "Refurbished", "Club")
OFFER_TYPES = ("Consumer",)
MAX_LOWEST_OFFERS = 20
# Offer.sub_condition -> the model's subCondition enum.
_SUB_CONDITION = {
    "new": "New",
    "mint": "Mint",
    "very_good": "VeryGood",
    "good": "Good",
    "acceptable": "Acceptable",
}
# The model's Condition -> the market's condition group (Offer.condition); None: no offers.
_GROUP = {"New": "new", "Used": "used"}
SAMPLE_POSTAL_CODE = {"countryCode": "JP", "value": "100-0001"}  # Tokyo, Chiyoda


def money(amount: int) -> dict[str, Any]:
    return {"amount": float(amount), "currencyCode": CURRENCY}


def offer_body(offer: Offer) -> dict[str, Any]:
    """An ``Offer`` of the 2022-05-01 model."""
    body: dict[str, Any] = {
        "sellerId": offer.seller_id,
        "condition": "New" if offer.condition == "new" else "Used",
        "subCondition": _SUB_CONDITION[offer.sub_condition],
        "fulfillmentType": "AFN" if offer.fba else "MFN",
        "listingPrice": money(offer.price),
        "shippingOptions": [{"shippingOptionType": "DEFAULT", "price": money(offer.shipping)}],
        "primeDetails": {"eligibility": "NATIONAL" if offer.prime else "NONE"},
    }
    if offer.points:
        body["points"] = {"pointsNumber": offer.points, "pointsMonetaryValue": money(offer.points)}
    return body


def featured_buying_options(offers: Sequence[Offer]) -> list[dict[str, Any]]:
    winner = buy_box_index(offers)
    if winner < 0:
        return []
    featured = offer_body(offers[winner])
    featured["featuredOfferSegments"] = [
        {
            "customerMembership": "DEFAULT",
            "segmentDetails": {
                "glanceViewWeightPercentage": 100.0,
                "sampleLocation": {"postalCode": dict(SAMPLE_POSTAL_CODE)},
            },
        }
    ]
    return [{"buyingOptionType": "New", "segmentedFeaturedOffers": [featured]}]


def lowest_priced_offers(
    offers: Sequence[Offer], inputs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """One ``LowestPricedOffer`` per (itemCondition, offerType) input that matches an offer."""
    out = []
    for condition, offer_type in inputs:
        group = _GROUP.get(condition)
        matching = [offer for offer in offers if offer.condition == group]
        if not matching:
            continue
        out.append(
            {
                "lowestPricedOffersInput": {"itemCondition": condition, "offerType": offer_type},
                "offers": [offer_body(offer) for offer in matching[:MAX_LOWEST_OFFERS]],
            }
        )
    return out


def reference_prices(offers: Sequence[Offer], list_price: int) -> list[dict[str, Any]]:
    prices = []
    winner = buy_box_index(offers)
    if winner >= 0:
        prices.append({"name": "CompetitivePrice", "price": money(offers[winner].landed)})
    prices.append({"name": "WasPrice", "price": money(list_price)})
    return prices


def summary_body(
    asin: str,
    offers: Sequence[Offer],
    *,
    list_price: int,
    included: frozenset[str],
    inputs: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """A ``CompetitiveSummaryResponseBody`` with the requested datasets."""
    body: dict[str, Any] = {"asin": asin, "marketplaceId": JAPAN_MARKETPLACE_ID}
    if "featuredBuyingOptions" in included:
        body["featuredBuyingOptions"] = featured_buying_options(offers)
    if "referencePrices" in included:
        body["referencePrices"] = reference_prices(offers, list_price)
    if "lowestPricedOffers" in included:
        body["lowestPricedOffers"] = lowest_priced_offers(offers, inputs)
    if "similarItems" in included:
        body["similarItems"] = []
    return body


def error_body(asin: str, code: str, message: str) -> dict[str, Any]:
    """The body of a failed item: the ASIN and marketplace echoed, with ``errors``."""
    return {
        "asin": asin,
        "marketplaceId": JAPAN_MARKETPLACE_ID,
        "errors": [{"code": code, "message": message}],
    }
