"""A third channel kind, registered by this test alone, runs a real cycle.

The proof that a channel is sealed behind its port: an in-memory "shelf" channel (it hides a
listing with quantity 0 and lists in yen) is registered through ``register_kind`` and nothing
else; ``ecsync import`` and ``ecsync sync`` then run against the simulator's Amazon and push
to the shelf without any change to the engine, the store or the domain.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ecsync.app import open_app
from ecsync.channels.http import HttpOptions
from ecsync.channels.kinds import ChannelKind, ItemIdAddressing, register_kind, unregister_kind
from ecsync.clock import Clock, Stop
from ecsync.config import AccountSettings, load_settings
from ecsync.engine.collect import Scope
from ecsync.engine.cycle import CycleOptions, CycleRunner, CycleSummary
from ecsync.engine.runtime import run_with_stop
from ecsync.ports import (
    Budget,
    ChangeResult,
    ChannelChange,
    ChannelItem,
    ChannelRead,
    Outcome,
    ReadProblem,
)
from ecsync.store.runner import DbRunner
from ecsync.store.schema import Account, Listing
from tests.conftest import CliResult
from tests.integration.conftest import Shop

IN_STOCK = {"B0SHELF001": 1000, "B0SHELF003": 2000}  # landed yen of one eligible offer
SOLD_OUT = "B0SHELF002"


@dataclass
class ShelfItem:
    sku: str
    price: Decimal
    quantity: int


@dataclass
class Shelf:
    """The channel's truth, with a count of the writes it took."""

    items: dict[str, ShelfItem] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)  # items a read fails on


class ShelfAdapter:
    platform = "shelf"

    def __init__(self, account: AccountSettings, shelf: Shelf) -> None:
        self.account = account.name
        self._shelf = shelf
        self._calls = 0

    def _item(self, item_id: str) -> ChannelItem:
        item = self._shelf.items[item_id]
        return ChannelItem(item_id, item.sku, item.price, None, item.quantity)

    async def read_items(self) -> AsyncIterator[ChannelItem]:
        self._calls += 1
        for item_id in list(self._shelf.items):
            yield self._item(item_id)

    async def read(self, expected_skus: Iterable[str] = ()) -> ChannelRead:
        items = [item async for item in self.read_items()]
        problems = [ReadProblem(f"item {i.item_id}", "503 busy") for i in items]
        problems = [p for p in problems if p.where[5:] in self._shelf.unreadable]
        readable = [item for item in items if item.item_id not in self._shelf.unreadable]
        return ChannelRead(readable, problems=problems, calls=1)

    async def apply(self, changes: Sequence[ChannelChange]) -> list[ChangeResult]:
        self._calls += 1
        results = []
        for change in changes:
            item = self._shelf.items.get(change.item_id)
            if item is None:
                results.append(ChangeResult(change.change_id, Outcome.GONE, "no such item"))
                continue
            if change.price is not None:
                item.price = change.price
            if change.quantity is not None:
                item.quantity = change.quantity
            self._shelf.writes.append(change.item_id)
            results.append(
                ChangeResult(
                    change.change_id, Outcome.APPLIED, confirmed=self._item(change.item_id)
                )
            )
        return results

    async def budgets(self) -> list[Budget]:
        return []

    @property
    def calls(self) -> int:
        return self._calls

    async def aclose(self) -> None:
        return None


@pytest.fixture
def shelf() -> Iterator[Shelf]:
    truth = Shelf()

    def open_shelf(
        account: AccountSettings,
        db: DbRunner,
        stop: Stop,
        clock: Clock | None,
        options: HttpOptions | None,
    ) -> ShelfAdapter:
        return ShelfAdapter(account, truth)

    register_kind(
        ChannelKind(
            name="shelf",
            label="Shelf",
            currency="JPY",
            hides_with="quantity",
            open=open_shelf,
            windows=lambda account, scale: [],
            default_endpoint="memory://shelf",
            default_pricing="markup",
            min_change=Decimal(10),
            addressing=ItemIdAddressing("shelf"),
        )
    )
    yield truth
    unregister_kind("shelf")


def _shelf_shop(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult], shelf: Shelf
) -> Shop:
    """A simulator shop with a ``shelf-1`` account of three items imported by CSV."""
    shop = make_shop(products=20, base_accounts=1, ebay_accounts=0)
    for asin, price in IN_STOCK.items():
        offer = {"price": price, "fba": True, "prime": True}
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"offers": [offer]})
    shop.sim("PUT", f"/_sim/amazon/{SOLD_OUT}", json={"out_of_stock": True})
    with shop.config.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[[accounts]]\nname = "shelf-1"\nplatform = "shelf"\n'
            "client_id = 'x'\nclient_secret = 'x'\nrefresh_token = 'x'\n"
        )
    text = shop.config.read_text(encoding="utf-8")
    if "[guards]" not in text:  # 1 hide of 2 listed is no mass hide for this test
        shop.config.write_text(text + "\n[guards]\nmax_hide_fraction = 1\n", encoding="utf-8")
    shelf.items = {
        "s1": ShelfItem("B0SHELF001", Decimal(100), 0),  # hidden, far too cheap
        "s2": ShelfItem(SOLD_OUT, Decimal(500), 3),  # on sale, source sold out
        "s3": ShelfItem("B0SHELF003", Decimal(2600), 1),  # already right: 2000 x 1.3
    }
    csv = shop.dir / "shelf.csv"
    csv.write_text(
        "platform,account,asin,item_id,sku\n"
        + "".join(f"shelf,shelf-1,{item.sku},{key},\n" for key, item in shelf.items.items()),
        encoding="utf-8",
    )
    imported = cli("import", str(csv))
    assert imported.code == 0, imported.err
    return shop


def _statuses(shop: Shop) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{shop.dir / 'ecsync.db'}")
    with Session(engine) as session:
        rows = session.execute(
            select(Listing.item_id, Listing.status)
            .join(Account, Account.id == Listing.account_id)
            .where(Account.name == "shelf-1")
        ).all()
    engine.dispose()
    return {item_id: status for item_id, status in rows}


def test_a_registered_third_kind_runs_a_whole_cycle(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult], shelf: Shelf
) -> None:
    _shelf_shop(make_shop, cli, shelf)
    result = cli("sync", "--json", "--accounts", "shelf-1")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["status"] == "ok", summary
    assert summary["reconciled"]["shelf-1"] == {"items": 3, "drifted": 3, "gone": 0}

    # The account's own rules, written here: markup 1.3 on the landed yen, 10-yen steps;
    # restock quantity 1; a sold-out source takes the listing off sale with quantity 0.
    assert (shelf.items["s1"].price, shelf.items["s1"].quantity) == (Decimal(1300), 1)
    assert (shelf.items["s2"].price, shelf.items["s2"].quantity) == (Decimal(500), 0)
    assert (shelf.items["s3"].price, shelf.items["s3"].quantity) == (Decimal(2600), 1)
    assert sorted(shelf.writes) == ["s1", "s2"]  # only what had to change

    status = cli("status", "--json")
    assert status.code == 0, status.err
    assert "shelf-1" in status.out


def _cycle(shop: Shop) -> CycleSummary:
    """One cycle of the shelf account with a reconcile forced, as the daemon runs it."""
    app = open_app(load_settings(shop.config))
    try:
        options = CycleOptions(scope=Scope(accounts=("shelf-1",)), reconcile=True)
        return run_with_stop(lambda stop: CycleRunner(app, stop).run(options))
    finally:
        app.close()


def test_a_partial_read_retires_nothing_and_a_complete_one_does(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult], shelf: Shelf
) -> None:
    shop = _shelf_shop(make_shop, cli, shelf)
    first = cli("sync", "--json", "--accounts", "shelf-1")
    assert first.code == 0 and json.loads(first.out)["status"] == "ok", first.err
    writes = len(shelf.writes)

    del shelf.items["s3"]  # deleted on the channel (and needs no push: it was right)...
    shelf.unreadable = {"s1"}  # ...while the read of s1 fails
    partial = _cycle(shop)
    assert partial.extra["reconcile_partial"] == {"shelf-1": 1}
    assert partial.extra["reconciled"]["shelf-1"]["gone"] == 0
    assert _statuses(shop) == {"s1": "listed", "s2": "listed", "s3": "listed"}
    assert len(shelf.writes) == writes  # nothing re-sent on account of the failed read

    shelf.unreadable = set()
    complete = _cycle(shop)
    assert "reconcile_partial" not in complete.extra
    assert complete.extra["reconciled"]["shelf-1"]["gone"] == 1
    assert _statuses(shop) == {"s1": "listed", "s2": "listed", "s3": "gone"}
