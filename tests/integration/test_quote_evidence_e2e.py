"""From the command line against the simulator: an ASIN Amazon rejects is hidden while its
batch neighbours are priced; a listing that never gets a good quote falls under on_stale;
a small price move leaves one ``skipped`` line in ``history``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from ecsync.store.schema import Change, Listing, Product
from tests.conftest import CliResult
from tests.integration.conftest import Shop

BATCH = 20  # getItemOffersBatch holds 20 ASINs


def _sync(cli: Callable[..., CliResult], *args: str) -> dict[str, Any]:
    result = cli("sync", "--json", *args)
    assert result.code == 0, result.err
    summary: dict[str, Any] = json.loads(result.out)
    return summary


def _db(shop: Shop) -> Session:
    return Session(create_engine(f"sqlite:///{shop.dir / 'ecsync.db'}"))


def _items(shop: Shop) -> dict[str, dict[str, Any]]:
    """The simulator's BASE items of base-1, by ASIN (the item's identifier)."""
    items = shop.sim("GET", "/_sim/base/base-1/items")["items"]
    return {item["identifier"]: item for item in items}


def _show(shop: Shop, item: dict[str, Any]) -> None:
    """Put an item on sale by hand on BASE (before the pull reads it)."""
    if not item["visible"] or not item["stock"]:
        shop.sim(
            "PATCH", f"/_sim/base/base-1/items/{item['item_id']}", json={"visible": 1, "stock": 1}
        )


def _markup_oracle(cost: int) -> Decimal:
    """BASE's default strategy, written out: cost x 1.3 to the nearest 10 yen (halves up),
    never under cost x 1.05 (not reached at x 1.3)."""
    return (Decimal(cost) * Decimal("1.3") / 10).quantize(Decimal(1), ROUND_HALF_UP) * 10


def _history(cli: Callable[..., CliResult], asin: str) -> list[dict[str, Any]]:
    result = cli("history", asin, "--json")
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = json.loads(result.out)
    return rows


def test_an_asin_amazon_rejects_is_hidden_while_its_batch_neighbours_are_priced(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    # One batch: every ASIN of the shop is answered in the same getItemOffersBatch.
    shop = make_shop(products=BATCH, base_accounts=1, ebay_accounts=0, drift=0.0)
    items = _items(shop)
    rejected, neighbour = sorted(items)[3], sorted(items)[7]
    _show(shop, items[rejected])
    _show(shop, items[neighbour])
    assert cli("pull", "--all").code == 0
    _sync(cli)
    before = _items(shop)
    assert before[rejected]["visible"] and before[neighbour]["visible"]

    shop.sim("PUT", f"/_sim/amazon/{rejected}", json={"unknown": True})
    # The neighbour's source rises so that its BASE price should go up about 25 %.
    cost = int(Decimal(before[neighbour]["price"]) * Decimal("1.25") / Decimal("1.3"))
    offer = {"price": cost, "shipping": 0, "fba": True, "prime": True, "max_hours": 24}
    shop.sim("PUT", f"/_sim/amazon/{neighbour}", json={"offers": [offer]})
    summary = _sync(cli)
    assert summary["mass_hide_tripped"] == []

    after = _items(shop)
    assert not after[rejected]["visible"]  # hidden on BASE itself
    assert after[neighbour]["visible"]
    assert Decimal(after[neighbour]["price"]) == _markup_oracle(cost)
    for asin, item in after.items():  # nothing else moved (drift 0: the market is unchanged)
        if asin not in (rejected, neighbour):
            assert (item["visible"], item["price"]) == (
                before[asin]["visible"],
                before[asin]["price"],
            )

    with _db(shop) as session:
        product = session.get(Product, rejected)
        assert product is not None and product.quote_status == "unknown_asin"
    (hide,) = [row for row in _history(cli, rejected) if row["kind"] == "hide"]
    assert hide["status"] == "applied" and "unknown to Amazon" in hide["reason"]

    # Amazon knows the ASIN again: the listing comes back on the next cycle.
    shop.sim("PUT", f"/_sim/amazon/{rejected}", json={"unknown": False})
    _sync(cli)
    assert _items(shop)[rejected]["visible"]


def test_a_listing_never_quoted_longer_than_stale_after_is_hidden(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    # 21 ASINs, all never fetched: the cycle sends them sorted, so the last one is alone in
    # the second batch. Made unknown, it is refused with nothing else answered beside it: an
    # error (not evidence), and it never gets a good quote.
    shop = make_shop(products=BATCH + 1, base_accounts=1, ebay_accounts=0, drift=0.0)
    items = _items(shop)
    assert len(items) == BATCH + 1
    alone = max(items)
    _show(shop, items[alone])
    assert cli("pull", "--all").code == 0
    shop.sim("PUT", f"/_sim/amazon/{alone}", json={"unknown": True})
    with _db(shop) as session, session.begin():  # the shop was imported a day ago
        session.execute(update(Listing).values(created_at=datetime.now(UTC) - timedelta(days=1)))
    before = _items(shop)

    summary = _sync(cli)
    assert summary["quotes_error"] == 1 and summary["quotes_ok"] >= 1

    after = _items(shop)
    assert not after[alone]["visible"]
    (hide,) = [row for row in _history(cli, alone) if row["kind"] == "hide"]
    assert hide["status"] == "applied"
    assert "no good quote in the" in hide["reason"] and "since listed" in hide["reason"]
    assert "unknown to Amazon" not in hide["reason"]
    # Its neighbours were quoted a moment ago: the listing's age does not make them stale.
    with _db(shop) as session:
        stale = session.scalars(
            select(Change.reason).where(Change.reason.contains("since listed"))
        ).all()
        product = session.get(Product, alone)
        assert product is not None and product.quote_status is None
        assert product.last_error is not None and "not taken as evidence" in product.last_error
    assert len(stale) == 1
    for asin, item in after.items():
        if asin != alone and before[asin]["visible"]:
            assert item["visible"], asin

    # `status` says it was fetched and failed, not "never fetched".
    status = cli("status", "--json")
    assert status.code == 0, status.err
    quotes = json.loads(status.out)["quotes"]
    assert quotes["by_status"].get("no_good_quote") == 1
    assert "never_fetched" not in quotes["by_status"]
    (example,) = quotes["no_good_quote_examples"]
    assert example["asin"] == alone and "InvalidInput" in example["last_error"]
    text = cli("status")
    assert "fetched but no good quote yet" in text.out and alone in text.out


def test_a_small_move_is_skipped_once_and_shown_in_history(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=BATCH, base_accounts=1, ebay_accounts=0, drift=0.0)
    items = _items(shop)
    asin = sorted(items)[5]
    _show(shop, items[asin])
    assert cli("pull", "--all").code == 0
    # A known source: 10,000 yen -> 13,000 on BASE.
    offer = {"price": 10_000, "shipping": 0, "fba": True, "prime": True, "max_hours": 24}
    shop.sim("PUT", f"/_sim/amazon/{asin}", json={"offers": [offer]})
    _sync(cli)
    assert Decimal(_items(shop)[asin]["price"]) == 13_000
    # The source moves by 50 yen: 13,070 on BASE, 70 yen under 1 % of 13,000 (130): skipped.
    shop.sim("PUT", f"/_sim/amazon/{asin}", json={"offers": [{**offer, "price": 10_050}]})
    for _ in range(3):
        summary = _sync(cli)
        assert summary["changes_planned"] == 0 and summary["changes_applied"] == 0
    assert Decimal(_items(shop)[asin]["price"]) == 13_000
    skipped = [row for row in _history(cli, asin) if row["status"] == "skipped"]
    assert len(skipped) == 1  # once per listing and target, not once per cycle
    assert Decimal(skipped[0]["old_price"]) == 13_000 and Decimal(skipped[0]["new_price"]) == 13_070
    assert "under 130 skipped" in skipped[0]["reason"]
    # A move past the threshold is sent.
    shop.sim("PUT", f"/_sim/amazon/{asin}", json={"offers": [{**offer, "price": 10_200}]})
    assert _sync(cli)["changes_applied"] == 1
    assert Decimal(_items(shop)[asin]["price"]) == _markup_oracle(10_200)
