"""The channel kinds ecsync knows, each described once: BASE and eBay, and any a test adds.

A kind is everything outside the adapter that depends on the channel: its name and label,
the currency it lists in and how it takes a listing off sale (both handed to the domain's
traits table), how to open an adapter and which call windows meter it, the defaults of an
account on it, and how a listing's ids address a change and match an item of a bulk read
(handed to ``ecsync.ports`` for the store and the engine). Nothing outside ``channels/`` and
``config.py`` compares platform names: adding a channel is registering a kind here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from ecsync.domain.model import HidesWith, register_platform, unregister_platform
from ecsync.ports import (
    ChannelItem,
    ChannelRead,
    ListingIds,
    register_addressing,
    unregister_addressing,
)

if TYPE_CHECKING:
    from ecsync.channels.budget import Window
    from ecsync.channels.http import HttpOptions
    from ecsync.channels.protocol import ChannelAdapter
    from ecsync.clock import Clock, Stop
    from ecsync.config import AccountSettings
    from ecsync.store.runner import DbRunner

AdapterFactory = Callable[
    ["AccountSettings", "DbRunner", "Stop", "Clock | None", "HttpOptions | None"],
    "ChannelAdapter",
]
WindowsOf = Callable[["AccountSettings", float], "list[Window]"]


@dataclass(frozen=True, slots=True)
class ItemIdAddressing:
    """Items are addressed and matched by the channel's item id (BASE).

    A listing whose item id the read lacks is absent: it is never matched by its ASIN, which
    another item of the shop may carry as its identifier.
    """

    name: str

    def change_item_id(self, ids: ListingIds) -> str:
        return ids.item_id

    def match(
        self,
        ids: ListingIds,
        by_item: Mapping[str, ChannelItem],
        by_sku: Mapping[str, ChannelItem],
    ) -> ChannelItem | None:
        return by_item.get(ids.item_id)

    def positively_gone(self, ids: ListingIds, read: ChannelRead) -> bool:
        return ids.item_id in read.gone

    def listing_ids(self, item: ChannelItem) -> ListingIds:
        return ListingIds(item_id=item.item_id, sku="", offer_id=None)


@dataclass(frozen=True, slots=True)
class OfferAddressing:
    """Changes go to the offer id, and an offer not known yet is found by SKU (eBay).

    The listing keeps the offer id it was pulled or pushed with; a listing imported without
    one (or whose offer was replaced) is matched by its SKU.
    """

    name: str

    def change_item_id(self, ids: ListingIds) -> str:
        return ids.offer_id or ""

    def match(
        self,
        ids: ListingIds,
        by_item: Mapping[str, ChannelItem],
        by_sku: Mapping[str, ChannelItem],
    ) -> ChannelItem | None:
        item = by_item.get(ids.offer_id) if ids.offer_id else None
        return item if item is not None else by_sku.get(ids.sku)

    def positively_gone(self, ids: ListingIds, read: ChannelRead) -> bool:
        return ids.sku in read.gone_skus or (bool(ids.offer_id) and ids.offer_id in read.gone)

    def listing_ids(self, item: ChannelItem) -> ListingIds:
        # Items of eBay's inventory report carry no offer id (""): the listing is keyed by
        # its SKU until a push finds the offer.
        return ListingIds(
            item_id=item.item_id or item.sku, sku=item.sku, offer_id=item.item_id or None
        )


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """One kind of sales channel, as the rest of ecsync needs to know it."""

    name: str  # the ``platform`` value in the config and the database
    label: str  # for people: "BASE", "eBay"
    currency: str
    hides_with: HidesWith
    open: AdapterFactory
    windows: WindowsOf
    default_endpoint: str
    default_pricing: str
    min_change: Decimal  # in ``currency``
    addressing: ItemIdAddressing | OfferAddressing
    requires_sku: bool = False  # a CSV row must name the SKU (the channel finds offers by it)


_KINDS: dict[str, ChannelKind] = {}


def register_kind(kind: ChannelKind) -> ChannelKind:
    """Make a channel kind known everywhere: config, domain traits, store addressing."""
    register_platform(kind.name, currency=kind.currency, hides_with=kind.hides_with)
    register_addressing(kind.addressing)
    _KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Forget a kind (tests that registered one clean up with this)."""
    _KINDS.pop(name, None)
    unregister_platform(name)
    unregister_addressing(name)


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)


def channel_kind(name: str) -> ChannelKind:
    """The registered kind ``name``; ValueError names the known ones."""
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(_KINDS) or "none registered"
        raise ValueError(f"unknown platform {name!r} (known: {known})") from None


def _open_base(
    account: AccountSettings,
    db: DbRunner,
    stop: Stop,
    clock: Clock | None,
    options: HttpOptions | None,
) -> ChannelAdapter:
    from ecsync.channels.thebase import BaseAdapter

    return BaseAdapter(account, db, stop, clock, options=options)


def _base_windows(account: AccountSettings, time_scale: float) -> list[Window]:
    from ecsync.channels.thebase import base_windows

    return base_windows(account, time_scale)


def _open_ebay(
    account: AccountSettings,
    db: DbRunner,
    stop: Stop,
    clock: Clock | None,
    options: HttpOptions | None,
) -> ChannelAdapter:
    from ecsync.channels.ebay import EbayAdapter

    return EbayAdapter(account, db, stop, clock, options=options)


def _ebay_windows(account: AccountSettings, time_scale: float) -> list[Window]:
    from ecsync.channels.ebay import ebay_windows

    return ebay_windows(account, time_scale)


BASE = register_kind(
    ChannelKind(
        name="base",
        label="BASE",
        currency="JPY",
        hides_with="visible",
        open=_open_base,
        windows=_base_windows,
        default_endpoint="https://api.thebase.in",
        default_pricing="markup",
        min_change=Decimal(10),
        addressing=ItemIdAddressing("base"),
    )
)
EBAY = register_kind(
    ChannelKind(
        name="ebay",
        label="eBay",
        currency="USD",
        hides_with="quantity",
        open=_open_ebay,
        windows=_ebay_windows,
        default_endpoint="https://api.ebay.com",
        default_pricing="ebay_formula",
        min_change=Decimal("0.10"),
        addressing=OfferAddressing("ebay"),
        requires_sku=True,
    )
)
