"""What every channel item should show, computed here from the simulator's true offers and
the account rules written out below as literal constants.

Deliberately independent of ecsync: nothing from ``ecsync.domain`` is imported, so a
pricing or parsing bug in ecsync cannot agree with itself. The rules are those of the
default config that ``ecsync sim --write-config`` writes (``markup`` for BASE, the
``ebay_formula`` for eBay, the default offer rules and restock quantity), with
``min_change = 0`` and the drop/mass-hide guards opened wide by :data:`PROOF_ACCOUNT_RULES`,
so a correct sync leaves every item exactly on the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

import httpx

# Offer rules (defaults): new only, shipping within 72 h, available now; landed = price+shipping.
MAX_HANDLING_HOURS = 72
# BASE "markup": price = cost x 1.3 on a 10-yen step (halves up), never below cost x 1.05.
BASE_RATIO = Decimal("1.3")
BASE_STEP = Decimal(10)
# eBay "ebay_formula": (cost + 4000 shipping + 500 packaging) / (1 - 0.17 - 0.15 - 0.20),
# in dollars at 150 yen, on a cent; never below cost x 1.05 in dollars.
EBAY_ADDED_YEN = Decimal(4500)
EBAY_KEEP = Decimal(1) - Decimal("0.17") - Decimal("0.15") - Decimal("0.20")
USD_JPY = Decimal(150)
CENT = Decimal("0.01")
MIN_MARGIN = Decimal("0.05")
RESTOCK_QUANTITY = 1

# Appended to every [[accounts]] table and to the config: every needed change goes out
# (window_hide_fraction: continuous mode's rolling mass-hide guard, opened as wide).
PROOF_GUARDS = "\n[guards]\nmax_drop_pct = 100\nmax_hide_fraction = 1\nwindow_hide_fraction = 1\n"


def _steps(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).quantize(Decimal(1), rounding=rounding) * step


def source_cost(offers: list[dict[str, Any]]) -> Decimal | None:
    """The cheapest landed price among the offers a reseller would buy from, or None."""
    eligible = [
        Decimal(o["price"]) + Decimal(o.get("shipping", 0))
        for o in offers
        if o.get("sub_condition", "new") == "new"
        and o.get("max_hours", 24) <= MAX_HANDLING_HOURS
        and o.get("availability", "NOW") == "NOW"
    ]
    return min(eligible) if eligible else None


def base_price(cost: Decimal) -> Decimal:
    floor = _steps(cost * (1 + MIN_MARGIN), Decimal(1), ROUND_CEILING)
    price = _steps(cost * BASE_RATIO, BASE_STEP, ROUND_HALF_UP)
    return price if price >= floor else _steps(floor, BASE_STEP, ROUND_CEILING)


def ebay_price(cost: Decimal) -> Decimal:
    floor = _steps(cost * (1 + MIN_MARGIN) / USD_JPY, CENT, ROUND_CEILING)
    price = _steps((cost + EBAY_ADDED_YEN) / EBAY_KEEP / USD_JPY, CENT, ROUND_HALF_UP)
    return price if price >= floor else floor


@dataclass(frozen=True)
class Item:
    """One channel item as the comparison needs it (BASE: visible flag; eBay: quantity)."""

    price: Decimal
    on_sale: bool
    quantity: int


def channel_truth(http: httpx.Client) -> dict[tuple[str, str], tuple[str, Item]]:
    """(account, ASIN) -> (platform, item) as the simulator's channels hold them now."""
    stats = http.get("/_sim/stats").json()
    out: dict[tuple[str, str], tuple[str, Item]] = {}
    for account in stats["base"]:
        for raw in http.get(f"/_sim/base/{account}/items").json()["items"]:
            item = Item(Decimal(raw["price"]), bool(raw["visible"]), int(raw["stock"]))
            out[(account, raw["identifier"])] = ("base", item)
    for account in stats["ebay"]:
        for raw in http.get(f"/_sim/ebay/{account}/offers").json()["offers"]:
            quantity = int(raw["availableQuantity"])
            price = Decimal(raw["pricingSummary"]["price"]["value"])
            out[(account, raw["sku"])] = ("ebay", Item(price, quantity > 0, quantity))
    return out


def true_costs(http: httpx.Client, asins: set[str]) -> dict[str, Decimal | None]:
    """ASIN -> the source cost by the simulator's true offers (None: nothing to buy)."""
    return {asin: source_cost(http.get(f"/_sim/amazon/{asin}").json()["offers"]) for asin in asins}


def expected(platform: str, before: Item, cost: Decimal | None) -> Item:
    """The item a correct sync leaves, from the item as it was before any sync."""
    if platform == "base":
        if cost is None:
            return Item(before.price, False, before.quantity)
        return Item(base_price(cost), True, max(before.quantity, RESTOCK_QUANTITY))
    if cost is None:
        return Item(before.price, False, 0)
    return Item(ebay_price(cost), True, RESTOCK_QUANTITY)


def oracle(
    http: httpx.Client, before: dict[tuple[str, str], tuple[str, Item]]
) -> dict[tuple[str, str], Item]:
    """(account, ASIN) -> the expected item, for every item in ``before``."""
    costs = true_costs(http, {asin for _account, asin in before})
    return {
        key: expected(platform, item, costs[key[1]]) for key, (platform, item) in before.items()
    }


def mismatches(
    http: httpx.Client, want: dict[tuple[str, str], Item], *, hidden_exact: bool = True
) -> list[str]:
    """Every item whose channel truth differs from ``want``, described for an assert.

    ``hidden_exact=False`` checks only that an item the oracle hides is off sale: its price
    and (BASE) stock are whatever an earlier correct cycle left, which a test that moved the
    market several times does not track."""
    now = channel_truth(http)
    out = []
    for key, item in sorted(want.items()):
        _platform, have = now[key]
        same = have == item if item.on_sale or hidden_exact else not have.on_sale
        if not same:
            out.append(f"{key}: channel {have}, oracle {item}")
    return out
