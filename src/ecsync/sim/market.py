"""Amazon Japan's catalog and its offers: generated from ``--seed``, moved by :meth:`Market.step`.

The model has to hold 100,000 products with up to 20 offers each in well under 500 MB,
so a product keeps its offers packed into one ``bytes`` value (26 bytes an offer, seller
ids interned in a shared pool) and is unpacked into :class:`Offer` objects only while a
request is being answered. Everything random comes from ``random.Random`` seeded with
the simulator's seed (or the step's seed), so two simulators with the same options hold
exactly the same market.

Roughly 6% of products have no offer at all, 8% have only offers a reseller must not buy
from (slow handling, future availability or used), and a third of the rest carry one
such offer priced below the good ones, so a naive "take the cheapest" client is caught.
"""

from __future__ import annotations

import math
import random
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

__all__ = [
    "AMAZON_SELLER_ID",
    "AVAILABILITY_TYPES",
    "JAPAN_MARKETPLACE_ID",
    "SUB_CONDITIONS",
    "Market",
    "Offer",
    "Product",
]

JAPAN_MARKETPLACE_ID = "A1VC38T7YXB528"  # Amazon.co.jp (the sim imports no client code)
AMAZON_SELLER_ID = "AN1VRQENFRJN5"  # Amazon.co.jp itself
SUB_CONDITIONS = ("new", "mint", "very_good", "good", "acceptable")
AVAILABILITY_TYPES = ("NOW", "FUTURE_WITHOUT_DATE", "FUTURE_WITH_DATE")
MAX_OFFERS = 20
SELLER_POOL = 4000

_EPOCH = date(1970, 1, 1).toordinal()
_ASIN_SPACE = 36**8
_ASIN_MULTIPLIER = 2_654_435_761  # odd and not a multiple of 3: a bijection mod 36**8
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SHIPPING = (0, 0, 0, 350, 400, 500, 600, 800)
_HANDLING = (24, 24, 48, 72)
_SLOW_HANDLING = (96, 120, 168, 336)
_STEP_HANDLING = (24, 48, 72, 96, 168)

# seller index, price, shipping, points, min hours, max hours, availability, day, flags
_PACKED = struct.Struct("<IIIIHHBHB")
_LANDED = struct.Struct("<4xII")  # price and shipping, the sort key
_FBA, _PRIME, _FEATURED = 1, 2, 4
_SUB_SHIFT = 3


@dataclass(frozen=True, slots=True)
class Offer:
    """One seller's offer, in yen. ``available_date`` (YYYY-MM-DD) only for FUTURE_WITH_DATE."""

    seller_id: str
    price: int
    shipping: int = 0
    points: int = 0
    min_hours: int = 0
    max_hours: int = 24
    availability: str = "NOW"
    available_date: str = ""
    fba: bool = False
    prime: bool = False
    sub_condition: str = "new"
    featured: bool = True

    @property
    def landed(self) -> int:
        return self.price + self.shipping

    @property
    def condition(self) -> str:
        """The Summary condition group: ``new`` or ``used``."""
        return "new" if self.sub_condition == "new" else "used"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.available_date:
            del data["available_date"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Offer:
        """Accept the control API's simple shape or an SP-API ``OfferDetail``."""
        if not isinstance(data, Mapping):
            raise ValueError("each offer must be a JSON object")
        if "ListingPrice" in data:
            return cls._from_offer_detail(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown offer fields: {', '.join(sorted(unknown))}")
        if "price" not in data:
            raise ValueError("an offer needs a price")
        return cls._checked(
            seller_id=str(data.get("seller_id") or "A1SIMSELLER0001"),
            price=_yen(data["price"], "price"),
            shipping=_yen(data.get("shipping", 0), "shipping"),
            points=_yen(data.get("points", 0), "points"),
            min_hours=_int(data.get("min_hours", 0), "min_hours"),
            max_hours=_int(data.get("max_hours", 24), "max_hours"),
            availability=str(data.get("availability", "NOW")),
            available_date=str(data.get("available_date", "")),
            fba=bool(data.get("fba", False)),
            prime=bool(data.get("prime", False)),
            sub_condition=str(data.get("sub_condition", "new")),
            featured=bool(data.get("featured", True)),
        )

    @classmethod
    def _from_offer_detail(cls, data: Mapping[str, Any]) -> Offer:
        shipping_time = data.get("ShippingTime") or {}
        points = data.get("Points") or {}
        prime = data.get("PrimeInformation") or {}
        available = str(shipping_time.get("availableDate") or "")[:10]
        return cls._checked(
            seller_id=str(data.get("SellerId") or "A1SIMSELLER0001"),
            price=_yen((data.get("ListingPrice") or {}).get("Amount"), "ListingPrice"),
            shipping=_yen((data.get("Shipping") or {}).get("Amount", 0), "Shipping"),
            points=_yen(points.get("PointsNumber", 0), "Points"),
            min_hours=_int(shipping_time.get("minimumHours", 0), "minimumHours"),
            max_hours=_int(shipping_time.get("maximumHours", 24), "maximumHours"),
            availability=str(shipping_time.get("availabilityType", "NOW")),
            available_date=available,
            fba=bool(data.get("IsFulfilledByAmazon", False)),
            prime=bool(prime.get("IsPrime", False)),
            sub_condition=str(data.get("SubCondition", "new")).lower().replace(" ", "_"),
            featured=bool(data.get("IsFeaturedMerchant", True)),
        )

    @classmethod
    def _checked(cls, **fields: Any) -> Offer:
        offer = cls(**fields)
        if offer.price <= 0:
            raise ValueError("price must be a positive number of yen")
        if offer.availability not in AVAILABILITY_TYPES:
            raise ValueError(f"availability must be one of {', '.join(AVAILABILITY_TYPES)}")
        if offer.sub_condition not in SUB_CONDITIONS:
            raise ValueError(f"sub_condition must be one of {', '.join(SUB_CONDITIONS)}")
        if offer.min_hours > offer.max_hours:
            raise ValueError("min_hours must not exceed max_hours")
        if offer.available_date:
            date.fromisoformat(offer.available_date)
        elif offer.availability == "FUTURE_WITH_DATE":
            raise ValueError("FUTURE_WITH_DATE needs an available_date")
        return offer


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return round(value)


def _round10(value: float) -> int:
    """Yen rounded to 10, as shops price."""
    return round(value / 10) * 10


def _yen(value: Any, name: str) -> int:
    return _int(value, name)


class Product:
    """One ASIN. ``offers`` is packed (see module doc); ``version`` bumps on every change."""

    __slots__ = ("asin", "index", "list_price", "offers", "rank", "version")

    def __init__(self, asin: str, index: int, list_price: int, rank: int, offers: bytes) -> None:
        self.asin = asin
        self.index = index
        self.list_price = list_price
        self.rank = rank
        self.offers = offers
        self.version = 0

    @property
    def offer_count(self) -> int:
        return len(self.offers) // _PACKED.size

    @property
    def base_price(self) -> int:
        """The street price the generator centres offers on (list price is 20% above)."""
        return max(1, round(self.list_price / 1.2))


def _asin_offset(seed: int) -> int:
    return random.Random(f"asin:{seed}").randrange(_ASIN_SPACE)


def _encode_asin(index: int, offset: int) -> str:
    """``B0`` + 8 base-36 characters; the affine map makes it unique per index."""
    value = (index * _ASIN_MULTIPLIER + offset) % _ASIN_SPACE
    chars = []
    for _ in range(8):
        value, digit = divmod(value, 36)
        chars.append(_BASE36[digit])
    return "B0" + "".join(reversed(chars))


def asin_for(seed: int, index: int) -> str:
    """The ASIN of the ``index``-th generated product for ``seed``."""
    return _encode_asin(index, _asin_offset(seed))


class Market:
    """The catalog, its offers, and the seeded moves that change them."""

    def __init__(self, seed: int, today: date) -> None:
        self.seed = seed
        self.today = today
        # Told of every change to a product's offers, with the simulated time it happened
        # (the exposure meter listens here); None while seeding.
        self.listener: Callable[[Product, float], None] | None = None
        self.products: list[Product] = []
        self.by_asin: dict[str, Product] = {}
        self._sellers: list[str] = [AMAZON_SELLER_ID]
        self._seller_index: dict[str, int] = {AMAZON_SELLER_ID: 0}
        rng = random.Random(f"sellers:{seed}")
        while len(self._sellers) < SELLER_POOL:
            value = rng.getrandbits(64)
            chars = []
            for _ in range(12 + (value & 1)):  # seller ids are 13 or 14 characters
                value, digit = divmod(value, 36)
                chars.append(_BASE36[digit])
            self._intern("A" + "".join(chars))

    # --- building ---------------------------------------------------------------------

    @classmethod
    def generate(cls, seed: int, count: int, today: date) -> Market:
        market = cls(seed, today)
        offset = _asin_offset(seed)
        rng = random.Random(seed)
        low, high = math.log(300), math.log(50_000)
        for index in range(count):
            asin = _encode_asin(index, offset)
            base = max(100, _round10(math.exp(rng.uniform(low, high))))
            rank = 1 + rng.randrange(500_000)
            offers = market._fresh_offers(rng, base)
            product = Product(asin, index, _round10(base * 1.2), rank, offers)
            market.products.append(product)
            market.by_asin[asin] = product
        return market

    def _intern(self, seller_id: str) -> int:
        index = self._seller_index.get(seller_id)
        if index is None:
            index = self._seller_index[seller_id] = len(self._sellers)
            self._sellers.append(seller_id)
        return index

    def _fresh_offers(self, rng: random.Random, base: int) -> bytes:
        """A product's offers as the generator (and a restock) makes them."""
        roll = rng.random()
        if roll < 0.06:
            return b""
        if roll < 0.14:
            kind = rng.randrange(3)
            packed = [self._bad_offer(rng, base, kind) for _ in range(1 + rng.randrange(4))]
            return self._sorted(packed)
        count = 1 + min(MAX_OFFERS - 1, int(rng.expovariate(0.2)))
        packed = [self._good_offer(rng, base) for _ in range(count)]
        if rng.random() < 0.33:
            cheapest = min(_PACKED.unpack(p)[1] + _PACKED.unpack(p)[2] for p in packed)
            bad = self._bad_offer(rng, max(1, round(cheapest * 0.9)), rng.randrange(3))
            packed = [*packed[: MAX_OFFERS - 1], bad]
        return self._sorted(packed)

    def _good_offer(self, rng: random.Random, base: int) -> bytes:
        bits = rng.getrandbits(64)
        price = max(1, round(base * (0.95 + (bits & 0xFF) / 255 * 0.35)))
        fba = ((bits >> 8) & 0xF) < 7
        amazon = fba and ((bits >> 12) & 0x7) == 0
        prime = fba or ((bits >> 15) & 0xF) == 0
        shipping = 0 if (fba or prime) else _SHIPPING[(bits >> 19) & 0x7]
        points = price * (((bits >> 22) & 0x7) + 1) // 100 if ((bits >> 25) & 0x7) == 0 else 0
        max_hours = 24 if fba else _HANDLING[(bits >> 28) & 0x3]
        min_hours = 0 if max_hours == 24 else max_hours - 24
        seller = 0 if amazon else 1 + (bits >> 32) % (SELLER_POOL - 1)
        featured = ((bits >> 62) & 0x3) != 0
        flags = (_FBA if fba else 0) | (_PRIME if prime else 0) | (_FEATURED if featured else 0)
        return _PACKED.pack(seller, price, shipping, points, min_hours, max_hours, 0, 0, flags)

    def _bad_offer(self, rng: random.Random, base: int, kind: int) -> bytes:
        """An offer a reseller must skip: 0 slow handling, 1 future availability, 2 used."""
        seller = 1 + rng.randrange(SELLER_POOL - 1)
        price = max(1, round(base * rng.uniform(0.85, 1.1)))
        shipping = rng.choice((0, 350, 500))
        min_hours, max_hours, availability, day, sub = 0, 24, 0, 0, 0
        if kind == 0:
            max_hours = rng.choice(_SLOW_HANDLING)
            min_hours = max_hours - 24
        elif kind == 1:
            availability = rng.choice((1, 2))
            if availability == 2:
                day = self.today.toordinal() - _EPOCH + rng.randrange(7, 60)
        else:
            sub = 1 + rng.randrange(len(SUB_CONDITIONS) - 1)
            price = max(1, round(base * rng.uniform(0.55, 0.9)))
        flags = _FEATURED | (sub << _SUB_SHIFT)
        return _PACKED.pack(
            seller, price, shipping, 0, min_hours, max_hours, availability, day, flags
        )

    @staticmethod
    def _sorted(packed: Iterable[bytes]) -> bytes:
        """Offers ordered by landed price, cheapest first, as Amazon lists them."""
        items = list(packed)[:MAX_OFFERS]
        items.sort(key=lambda p: (sum(_LANDED.unpack_from(p)), p))
        return b"".join(items)

    # --- reading ----------------------------------------------------------------------

    def get(self, asin: str) -> Product | None:
        return self.by_asin.get(asin)

    def offers(self, product: Product) -> list[Offer]:
        return self.unpack(product.offers)

    def unpack(self, packed: bytes) -> list[Offer]:
        """Offers packed as a product holds them, as :class:`Offer` objects, in order."""
        sellers = self._sellers
        out = []
        for seller, price, ship, points, low, high, avail, day, flags in _PACKED.iter_unpack(
            packed
        ):
            out.append(
                Offer(  # positional, in field order: a third cheaper than keywords
                    sellers[seller],
                    price,
                    ship,
                    points,
                    low,
                    high,
                    AVAILABILITY_TYPES[avail],
                    date.fromordinal(_EPOCH + day).isoformat() if day else "",
                    bool(flags & _FBA),
                    bool(flags & _PRIME),
                    SUB_CONDITIONS[flags >> _SUB_SHIFT],
                    bool(flags & _FEATURED),
                )
            )
        return out

    def _pack(self, offer: Offer) -> bytes:
        day = 0
        if offer.available_date:
            day = date.fromisoformat(offer.available_date).toordinal() - _EPOCH
        flags = (
            (_FBA if offer.fba else 0)
            | (_PRIME if offer.prime else 0)
            | (_FEATURED if offer.featured else 0)
            | (SUB_CONDITIONS.index(offer.sub_condition) << _SUB_SHIFT)
        )
        return _PACKED.pack(
            self._intern(offer.seller_id),
            offer.price,
            offer.shipping,
            offer.points,
            offer.min_hours,
            offer.max_hours,
            AVAILABILITY_TYPES.index(offer.availability),
            day,
            flags,
        )

    # --- writing ----------------------------------------------------------------------

    def changed(self, product: Product, at: float | None) -> None:
        """Tell the listener that ``product``'s offers changed at simulated time ``at``."""
        if at is not None and self.listener is not None:
            self.listener(product, at)

    # Small writing blocks for the market events (sim/events.py), which must change one
    # product at a time without unpacking more than they need.

    @staticmethod
    def split(packed: bytes) -> list[bytes]:
        """Packed offers one by one, in the order :meth:`unpack` lists them."""
        size = _PACKED.size
        return [packed[i : i + size] for i in range(0, len(packed), size)]

    @staticmethod
    def scaled(packed: bytes, factor: float) -> bytes:
        """One packed offer with its price and points scaled (shipping stays), as a step
        moves prices."""
        seller, price, ship, points, *rest = _PACKED.unpack(packed)
        return _PACKED.pack(
            seller, max(1, round(price * factor)), ship, round(points * factor), *rest
        )

    def eligible_offer(self, rng: random.Random, landed: int, featured: bool) -> bytes:
        """A new offer, available now, shipping within 24-72 h, landed at ``landed`` yen
        (price + shipping): one a reseller could buy from."""
        seller = 1 + rng.randrange(SELLER_POOL - 1)
        shipping = rng.choice(_SHIPPING)
        if shipping >= landed:
            shipping = 0
        max_hours = rng.choice(_HANDLING)
        min_hours = 0 if max_hours == 24 else max_hours - 24
        flags = _FEATURED if featured else 0
        return _PACKED.pack(
            seller, landed - shipping, shipping, 0, min_hours, max_hours, 0, 0, flags
        )

    def fresh_offers(self, rng: random.Random, base: int) -> bytes:
        """A product's offers as the generator makes them (a restock starts afresh)."""
        return self._fresh_offers(rng, base)

    def put_offers(self, product: Product, packed: Iterable[bytes], at: float | None) -> None:
        """Replace ``product``'s offers with ``packed`` (sorted here), bump its version and
        tell the listener."""
        product.offers = self._sorted(packed)
        product.version += 1
        self.changed(product, at)

    def set_offers(self, asin: str, offers: list[Offer], at: float | None = None) -> Product:
        """Replace an ASIN's offers; an unknown ASIN joins the catalog (for test vectors).
        ``at``: the simulated time of the change, for the listener."""
        if len(offers) > MAX_OFFERS:
            raise ValueError(f"at most {MAX_OFFERS} offers per product")
        product = self.by_asin.get(asin)
        packed = self._sorted(self._pack(offer) for offer in offers)
        if product is None:
            base = min((o.price for o in offers), default=1000)
            product = Product(asin, len(self.products), _round10(base * 1.2), 100_000, packed)
            self.products.append(product)
            self.by_asin[asin] = product
        else:
            product.offers = packed
            product.version += 1
        self.changed(product, at)
        return product

    def step(
        self, fraction: float, seed: int, today: date | None = None, at: float | None = None
    ) -> dict[str, int]:
        """Move ``fraction`` of the products: price moves of 5-30% either way (60%),
        sell-outs (15%), new sellers arriving (10%), handling-time changes (15%); a product
        without offers is restocked instead. Deterministic for a given seed and market."""
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        if today is not None:
            self.today = today
        rng = random.Random(seed)
        count = round(len(self.products) * fraction)
        counts = {"moved": 0, "price_changes": 0, "sold_out": 0, "restocked": 0}
        counts |= {"new_offers": 0, "handling_changes": 0}
        for index in sorted(rng.sample(range(len(self.products)), count)):
            product = self.products[index]
            counts["moved"] += 1
            counts[self._move(product, rng)] += 1
            product.version += 1
            self.changed(product, at)
        return counts

    def _move(self, product: Product, rng: random.Random) -> str:
        if not product.offers:
            packed = b""
            while not packed:
                packed = self._fresh_offers(rng, product.base_price)
            product.offers = packed
            return "restocked"
        roll = rng.random()
        rows = list(_PACKED.iter_unpack(product.offers))
        if roll < 0.60:
            factor = 1 + rng.choice((-1, 1)) * rng.uniform(0.05, 0.30)
            rows = [
                (r[0], max(1, round(r[1] * factor)), r[2], round(r[3] * factor), *r[4:])
                for r in rows
            ]
            product.offers = self._sorted(_PACKED.pack(*r) for r in rows)
            return "price_changes"
        if roll < 0.75:
            product.offers = b""
            return "sold_out"
        if roll < 0.85:
            extra = [self._good_offer(rng, product.base_price) for _ in range(1 + rng.randrange(3))]
            kept = [_PACKED.pack(*r) for r in rows]
            product.offers = self._sorted(kept + extra)
            return "new_offers"
        changed = []
        for row in rows:
            seller, price, ship, points, low, high, avail, day, flags = row
            if rng.random() < 0.5:
                if flags & _FBA:
                    avail, day = (1, 0) if avail == 0 and rng.random() < 0.3 else (0, 0)
                else:
                    high = rng.choice(_STEP_HANDLING)
                    low = 0 if high == 24 else high - 24
            changed.append(_PACKED.pack(seller, price, ship, points, low, high, avail, day, flags))
        product.offers = self._sorted(changed)
        return "handling_changes"

    # --- descriptive data for the catalog API -----------------------------------------

    def _name_hash(self, product: Product) -> int:
        return zlib.crc32(f"{self.seed}:{product.asin}".encode())

    def title(self, product: Product) -> str:
        h = self._name_hash(product)
        return f"{_BRANDS[h % 8]} {_ADJECTIVES[(h >> 3) % 8]} {_NOUNS[(h >> 6) % 8]}"

    def brand(self, product: Product) -> str:
        return _BRANDS[self._name_hash(product) % 8]

    def memory_estimate(self) -> int:
        """Bytes held by products and their packed offers (an estimate, for reports)."""
        total = sys.getsizeof(self.products) + sys.getsizeof(self.by_asin)
        for product in self.products:
            total += sys.getsizeof(product) + sys.getsizeof(product.asin)
            total += sys.getsizeof(product.offers) + 2 * 28
        return total


_BRANDS = ("Sakura", "Nippon Craft", "Kaze", "Tsubasa", "Hikari", "Yamato", "Mirai", "Kumo")
_ADJECTIVES = ("Deluxe", "Compact", "Classic", "Limited", "Pro", "Mini", "Premium", "Eco")
_NOUNS = (
    "Figure",
    "Tea Set",
    "Rice Cooker",
    "Fountain Pen",
    "Model Kit",
    "Card Game",
    "Knife",
    "Lamp",
)
