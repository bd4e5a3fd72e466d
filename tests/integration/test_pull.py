"""``ecsync pull`` against the simulator: one failing account does not stop the others, and
the report counts only what really changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from ecsync.store.schema import Account, Listing
from tests.conftest import CliResult
from tests.integration.conftest import Shop


def _pull(cli: Callable[..., CliResult], *args: str) -> tuple[int, dict[str, Any], str]:
    result = cli("pull", "--json", *args)
    return result.code, json.loads(result.out), result.err


def _counts(shop: Shop) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{shop.dir / 'ecsync.db'}")
    with Session(engine) as session:
        rows = session.execute(
            select(Account.name, func.count(Listing.id))
            .join(Listing, Listing.account_id == Account.id)
            .where(Listing.status == "listed")
            .group_by(Account.name)
        ).all()
    engine.dispose()
    return {name: count for name, count in rows}


def _truth_sizes(shop: Shop) -> dict[str, int]:
    stats = shop.stats()
    sizes = {a: len(shop.sim("GET", f"/_sim/base/{a}/items")["items"]) for a in stats["base"]}
    for account in stats["ebay"]:
        sizes[account] = len(shop.sim("GET", f"/_sim/ebay/{account}/offers")["offers"])
    return sizes


def test_pull_all_with_one_refused_account_imports_the_others_and_exits_1(
    make_shop: Callable[..., Shop],
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = make_shop(products=80, base_accounts=2, ebay_accounts=1, ebay_share=0.3)
    monkeypatch.setenv("ECSYNC_ACCOUNT__BASE_2__REFRESH_TOKEN", "revoked-by-the-seller")
    code, report, err = _pull(cli, "--all")
    assert code == 1
    assert set(report["failed"]) == {"base-2"}
    assert "pull failed for base-2" in err and "base-1, ebay-1 pulled and saved" in err
    truth = _truth_sizes(shop)
    assert _counts(shop) == {"base-1": truth["base-1"], "ebay-1": truth["ebay-1"]}
    assert {a["account"]: a["added"] for a in report["accounts"]} == {
        "base-1": truth["base-1"],
        "ebay-1": truth["ebay-1"],
    }


def test_pull_again_reports_only_the_items_that_changed(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=60, base_accounts=1, ebay_accounts=0)
    code, first, _ = _pull(cli, "--account", "base-1")
    assert code == 0
    items = shop.sim("GET", "/_sim/base/base-1/items")["items"]
    assert first["accounts"][0]["added"] == len(items)
    code, again, _ = _pull(cli, "--account", "base-1")
    assert (again["accounts"][0]["changed"], again["accounts"][0]["unchanged"]) == (0, len(items))
    edited = items[0]
    shop.sim(
        "PATCH",
        f"/_sim/base/base-1/items/{edited['item_id']}",
        json={"price": int(edited["price"]) + 500},
    )
    code, third, _ = _pull(cli, "--account", "base-1")
    row = third["accounts"][0]
    assert (row["added"], row["changed"], row["unchanged"]) == (0, 1, len(items) - 1)
    assert row["calls"] >= 1


def test_an_item_deleted_on_the_channel_is_retired_by_the_next_complete_read(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=40, base_accounts=1, ebay_accounts=0)
    assert _pull(cli, "--account", "base-1")[0] == 0
    items = shop.sim("GET", "/_sim/base/base-1/items")["items"]
    shop.sim("DELETE", f"/_sim/base/base-1/items/{items[0]['item_id']}")
    code, report, _ = _pull(cli, "--account", "base-1")
    assert code == 0
    row = report["accounts"][0]
    assert (row["gone"], row["unread"], row["unchanged"]) == (1, 0, len(items) - 1)
    assert _counts(shop) == {"base-1": len(items) - 1}
