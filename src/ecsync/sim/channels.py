"""The sales channels' truth: BASE shops and eBay seller accounts with their listings.

The routes in ``thebase.py`` and ``ebay.py`` change this state the way the real services
would; the control API reads it (``/_sim/base/{account}/items``) so a test can check what
a client really wrote. Items use ``__slots__`` because a shop may hold 100,000 of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ecsync.sim.ratelimit import FixedWindow, WindowCounters

HOUR = 3600.0
DAY = 86400.0
JST_OFFSET = 9 * HOUR  # BASE is a Japanese service: its day starts at midnight JST
BASE_HOURLY_LIMIT = 5_000
BASE_DAILY_LIMIT = 100_000
EBAY_DAILY_CALL_LIMIT = 1_000_000  # unconfirmed for the Inventory API: settable per account
EBAY_DAILY_REVISIONS = 250
EBAY_FEED_DAILY_CALLS = 100_000  # the Sell Feed API's documented daily call limit
EBAY_DAILY_REPORTS = 25  # LMS_ACTIVE_INVENTORY_REPORT tasks per 24 h per seller
CENT = Decimal("0.01")


class BaseVariation:
    """One variation of a BASE item: on BASE the stock lives here, and the item's ``stock``
    is the sum of its variations' (BASE keeps it so by itself)."""

    __slots__ = ("identifier", "name", "stock", "variation_id")

    def __init__(self, variation_id: int, name: str, stock: int, identifier: str | None) -> None:
        self.variation_id = variation_id
        self.name = name
        self.stock = stock
        self.identifier = identifier

    def to_json(self) -> dict[str, Any]:
        return {
            "variation_id": self.variation_id,
            "variation": self.name,
            "variation_stock": self.stock,
            "variation_identifier": self.identifier,
        }


# Why BASE refuses to edit an item through the API (``invalid_request`` on /1/items/edit).
UNEDITABLE = {
    "digital": "デジタルコンテンツの商品は編集できません。",
    "clubt": "ClubTの商品は編集できません。",
}


class BaseItem:
    __slots__ = (
        "created",
        "detail",
        "identifier",
        "item_id",
        "list_order",
        "modified",
        "price",
        "stock",
        "title",
        "uneditable",
        "variations",
        "visible",
    )

    def __init__(
        self,
        item_id: int,
        *,
        title: str,
        price: int,
        stock: int,
        visible: int,
        identifier: str,
        now: int,
        list_order: int,
    ) -> None:
        self.item_id = item_id
        self.title = title
        self.detail = ""
        self.price = price
        self.stock = stock
        self.visible = visible
        self.identifier = identifier
        self.created = now
        self.modified = now
        self.list_order = list_order
        self.variations: list[BaseVariation] = []
        self.uneditable = ""  # a key of UNEDITABLE when BASE refuses API edits of this item

    def set_variations(self, variations: list[BaseVariation]) -> None:
        """Replace the variations; the item's stock becomes their sum, as on BASE."""
        self.variations = variations
        if variations:
            self.stock = sum(variation.stock for variation in variations)

    def variation(self, variation_id: int) -> BaseVariation | None:
        for variation in self.variations:
            if variation.variation_id == variation_id:
                return variation
        return None

    def next_variation_id(self) -> int:
        """Variation ids are unique per shop: the item id times 100 plus a counter."""
        used = [v.variation_id for v in self.variations]
        return max(used, default=self.item_id * 100) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "detail": self.detail,
            "price": self.price,
            "proper_price": None,
            "item_tax_type": 1,
            "stock": self.stock,
            "visible": self.visible,
            "list_order": self.list_order,
            "identifier": self.identifier,
            "img1_origin": None,
            "modified": self.modified,
            "variations": [variation.to_json() for variation in self.variations],
        }


class BaseAccount:
    """One BASE shop: its OAuth client, its items and its API call windows.

    ``items`` keeps list order (seeding adds items in ``list_order``, and nothing changes
    it), ``_by_modified`` keeps the order of last modification (an edit moves an item to
    the end: its ``modified`` is the newest), so listing a page never sorts 100,000 items.
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"base-{index}"
        self.client_id = f"sim-base-client-{index}"
        self.client_secret = f"sim-base-secret-{index}"
        self.refresh_token = f"sim-base-refresh-{index}"
        self.redirect_uri = "http://127.0.0.1/callback"
        # Set through the control API: BASE has suspended the app (``unauthorized_client``);
        # the seller refuses the authorisation (``error=access_denied`` on the callback).
        self.suspended = False
        self.deny_authorization = False
        self.items: dict[int, BaseItem] = {}
        # Told (account, item id, simulated time) of every add, edit and delete made with a
        # time: the exposure meter listens here. None while seeding, which passes no time.
        self.listener: Callable[[str, int, float], None] | None = None
        self._by_modified: dict[int, BaseItem] = {}
        self._ordered: dict[str, list[BaseItem]] = {}
        self.hour = FixedWindow(HOUR, BASE_HOURLY_LIMIT)
        self.day = FixedWindow(DAY, BASE_DAILY_LIMIT, offset=JST_OFFSET)

    def add(self, item: BaseItem, at: float | None = None) -> None:
        """Add an item; ``at`` (simulated time) tells the listener, seeding passes none."""
        self.items[item.item_id] = item
        self._by_modified[item.item_id] = item
        self._ordered.clear()
        self._tell(item.item_id, at)

    def touch(self, item: BaseItem, now: float) -> None:
        """Record an edit: ``modified`` moves on and the item becomes the latest modified.

        Every edit (API or by hand) ends here, so this is where the listener hears of it."""
        item.modified = int(now)
        self._by_modified.pop(item.item_id, None)
        self._by_modified[item.item_id] = item
        self._ordered.pop("modified", None)
        self._ordered.pop("modified:desc", None)
        self._tell(item.item_id, now)

    def delete(self, item_id: int, at: float | None = None) -> None:
        del self.items[item_id]
        del self._by_modified[item_id]
        self._ordered.clear()
        self._tell(item_id, at)

    def _tell(self, item_id: int, at: float | None) -> None:
        if at is not None and self.listener is not None:
            self.listener(self.name, item_id, at)

    def ordered(self, order: str, descending: bool) -> list[BaseItem]:
        """Items by ``list_order``, ``created`` (both: list order; ties by item id) or
        ``modified``; a cached list, rebuilt only after a change that affects it."""
        base = "modified" if order == "modified" else "list_order"
        key = base + (":desc" if descending else "")
        items = self._ordered.get(key)
        if items is None:
            source = self._by_modified if base == "modified" else self.items
            items = list(source.values())
            if descending:
                items.reverse()
            self._ordered[key] = items
        return items

    def settings(self) -> dict[str, Any]:
        return {
            "hourly_limit": self.hour.limit,
            "daily_limit": self.day.limit,
            "suspended": self.suspended,
            "deny_authorization": self.deny_authorization,
        }


class EbayOffer:
    __slots__ = (
        "listing_id",
        "offer_id",
        "price_cents",
        "quantity",
        "ship_quantity",
        "sku",
        "status",
        "title",
    )

    def __init__(
        self, offer_id: str, sku: str, title: str, price_cents: int, quantity: int
    ) -> None:
        self.offer_id = offer_id
        self.sku = sku
        self.title = title
        self.price_cents = price_cents
        self.quantity = quantity
        self.ship_quantity = quantity
        self.status = "PUBLISHED"
        self.listing_id = str(110_000_000_000 + int(offer_id) % 10**9)

    @property
    def price(self) -> str:
        """eBay's decimal string, e.g. ``"24.99"``."""
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"

    def to_json(self, marketplace: str = "EBAY_US") -> dict[str, Any]:
        listing: dict[str, Any] = {"listingId": self.listing_id}
        listing["listingStatus"] = "ACTIVE" if self.status == "PUBLISHED" else "ENDED"
        return {
            "offerId": self.offer_id,
            "sku": self.sku,
            "marketplaceId": marketplace,
            "format": "FIXED_PRICE",
            "availableQuantity": self.quantity,
            "categoryId": "261068",
            "listingDescription": self.title,
            "pricingSummary": {"price": {"value": self.price, "currency": "USD"}},
            "listing": listing,
            "status": self.status,
            "listingDuration": "GTC",
        }

    def inventory_item(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "locale": "en_US",
            "product": {"title": self.title, "aspects": {}, "imageUrls": []},
            "condition": "NEW",
            "availability": {"shipToLocationAvailability": {"quantity": self.ship_quantity}},
        }


def price_to_cents(value: Decimal) -> int:
    return int((value.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())


class EbayAccount:
    """One eBay seller: its OAuth client, offers by SKU and offer id, and its limits."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"ebay-{index}"
        self.client_id = f"sim-ebay-client-{index}"
        self.client_secret = f"sim-ebay-secret-{index}"
        self.refresh_token = f"sim-ebay-refresh-{index}"
        self.by_sku: dict[str, EbayOffer] = {}
        self.by_offer_id: dict[str, EbayOffer] = {}
        # Told (account, SKU, simulated time) of every add, revision, publish, withdraw and
        # removal made with a time: the exposure meter listens here (None while seeding).
        self.listener: Callable[[str, str, float], None] | None = None
        self.calls = FixedWindow(DAY, EBAY_DAILY_CALL_LIMIT)
        self.feed_calls = FixedWindow(DAY, EBAY_FEED_DAILY_CALLS)
        self.revisions = WindowCounters(DAY, EBAY_DAILY_REVISIONS)
        # Out-of-stock control on: quantity 0 keeps the listing alive instead of failing.
        self.out_of_stock_control = True
        self.tasks: dict[str, FeedTask] = {}
        self.tasks_created = 0
        self.report_limit = EBAY_DAILY_REPORTS
        self._reports: deque[float] = deque()  # creation times of the last 24 h's reports

    def add(self, offer: EbayOffer, at: float | None = None) -> None:
        """Add an offer; ``at`` (simulated time) tells the listener, seeding passes none."""
        self.by_sku[offer.sku] = offer
        self.by_offer_id[offer.offer_id] = offer
        self._tell(offer.sku, at)

    def touch(self, offer: EbayOffer, now: float) -> None:
        """Record a change of the offer's price, quantity or status (API or by hand): the
        one place the listener hears of edits, so no route can forget to tell it."""
        self._tell(offer.sku, now)

    def remove(self, offer: EbayOffer, at: float | None = None) -> None:
        """The seller deleted the offer: eBay answers 404 / 25713 for it from now on."""
        del self.by_sku[offer.sku]
        del self.by_offer_id[offer.offer_id]
        self._tell(offer.sku, at)

    def _tell(self, sku: str, at: float | None) -> None:
        if at is not None and self.listener is not None:
            self.listener(self.name, sku, at)

    def take_report(self, now: float) -> bool:
        """Count one report task in the rolling 24 h; False when the limit is reached."""
        while self._reports and self._reports[0] <= now - DAY:
            self._reports.popleft()
        if len(self._reports) >= self.report_limit:
            return False
        self._reports.append(now)
        return True

    def settings(self) -> dict[str, Any]:
        return {
            "daily_call_limit": self.calls.limit,
            "daily_revision_limit": self.revisions.limit,
            "daily_report_limit": self.report_limit,
            "out_of_stock_control": self.out_of_stock_control,
        }


class FeedTask:
    """One Sell Feed API inventory task: its timeline is fixed when it is created.

    ``outcome`` is the status it ends in (``COMPLETED``, or under a fault ``FAILED`` /
    ``COMPLETED_WITH_ERROR``); ``report`` holds the zipped result once first downloaded, so
    every download of one task gives the same file.
    """

    __slots__ = ("created", "feed_type", "finishes", "outcome", "report", "starts", "task_id")

    def __init__(
        self, task_id: str, feed_type: str, created: float, starts: float, finishes: float
    ) -> None:
        self.task_id = task_id
        self.feed_type = feed_type
        self.created = created
        self.starts = starts
        self.finishes = finishes
        self.outcome = "COMPLETED"
        self.report: bytes | None = None

    def status(self, now: float) -> str:
        if now < self.starts:
            return "CREATED"
        if now < self.finishes:
            return "IN_PROCESS"
        return self.outcome
