"""An eBay listings CSV without offer ids: imported, then synced against the simulator."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ecsync.listings_csv import parse_listings_csv
from ecsync.store.schema import Listing
from tests.conftest import CliResult
from tests.integration.conftest import Shop


def test_ebay_rows_without_item_id_are_found_by_sku_on_first_push(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=80, base_accounts=1, ebay_accounts=1, ebay_share=0.5, drift=0.6)
    offers = {o["sku"]: o for o in shop.sim("GET", "/_sim/ebay/ebay-1/offers")["offers"]}
    path = shop.dir / "ebay.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["platform", "account", "asin", "item_id", "sku"])
        writer.writerows(("ebay", "ebay-1", sku, "", sku) for sku in sorted(offers))
    imported = cli("import", str(path))
    assert imported.code == 0, imported.err

    shop.sim("POST", "/_sim/stats/reset")
    result = cli("sync", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["changes_applied"] > 0
    assert shop.stats()["ebay"]["ebay-1"]["writes"] == summary["changes_applied"]

    engine = create_engine(f"sqlite:///{shop.dir / 'ecsync.db'}")
    with Session(engine) as session:
        listings = list(session.scalars(select(Listing)))
    engine.dispose()
    assert len(listings) == len(offers)
    truth = {o["sku"]: o for o in shop.sim("GET", "/_sim/ebay/ebay-1/offers")["offers"]}
    for listing in listings:
        assert listing.item_id == listing.sku  # keyed by SKU until told otherwise
        assert listing.status == "listed"
        offer = truth[listing.sku]
        # Found by SKU (by the reconcile read or on the first push), never guessed.
        assert listing.offer_id in (None, offer["offerId"])
        if listing.desired_quantity is not None:
            assert offer["availableQuantity"] == listing.desired_quantity, listing.sku
    assert sum(1 for listing in listings if listing.offer_id) >= summary["changes_applied"]


def test_only_ebay_rows_may_leave_item_id_empty(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        "platform,account,asin,item_id,sku\n"
        "ebay,ebay-1,B000000001,,B000000001\n"
        "ebay,ebay-1,B000000002,7100000002,B000000002\n"
        "base,base-1,B000000003,,\n"
        "ebay,ebay-1,B000000004,,\n",
        encoding="utf-8",
    )
    parsed = parse_listings_csv(path, {"ebay-1": "ebay", "base-1": "base"})
    assert [(row.asin, row.item_id) for row in parsed.rows] == [
        ("B000000001", "B000000001"),
        ("B000000002", "7100000002"),
    ]
    assert parsed.problems == [
        "line 4: empty required field 'item_id'",
        "line 5: empty required field 'sku' (eBay offers are found by SKU)",
    ]
