"""Held changes in the seller's hands, from the command line against the simulator:
`ecsync changes` lists them, `release` sends them next cycle without the guard that held
them, `reject` keeps the channel as it is until the source moves; bad ids write nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ecsync.store.schema import Change
from tests.conftest import CliResult
from tests.integration.conftest import Shop
from tests.integration.test_cycle_e2e import _listings, _rows, _sync, _synced_shop


def _changes(cli: Callable[..., CliResult], *args: str) -> list[dict[str, Any]]:
    result = cli("changes", "--json", *args)
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = json.loads(result.out)
    return rows


def _base_items(shop: Shop) -> dict[str, dict[str, Any]]:
    """The simulator's BASE truth, by ASIN."""
    items = shop.sim("GET", "/_sim/base/base-1/items")["items"]
    return {item["identifier"]: item for item in items}


def _journal(shop: Shop) -> list[Any]:
    return _rows(shop, select(Change.id, Change.status, Change.decided_by).order_by(Change.id))


def test_a_mass_hide_held_then_released_is_hidden_by_the_next_sync(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = _synced_shop(make_shop, cli, products=100, base_accounts=1, ebay_accounts=0, drift=0.0)
    visible = [row[0] for row in _listings(shop) if row[0].confirmed_visible]
    dark = {listing.asin for listing in visible[: len(visible) // 2]}
    assert len(dark) >= 30
    for asin in dark:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})

    first = _sync(cli)
    assert first["mass_hide_tripped"] == ["base-1"]
    assert first["held_hides"] == len(dark)
    held = _changes(cli, "--status", "held")
    assert {row["asin"] for row in held} == dark
    assert all(row["kind"] == "hide" and row["account"] == "base-1" for row in held)
    assert all("mass-hide guard" in row["reason"] and row["age_s"] >= 0 for row in held)
    assert all(row["new"]["visible"] is False for row in held)
    preview = _sync(cli, "--dry-run")["changes"]  # the preview reads the same guard
    assert {row["asin"] for row in preview if row["kind"] == "hide"} == dark
    assert all(
        row["status"] == "held" and "mass-hide guard" in row["reason"]
        for row in preview
        if row["kind"] == "hide"
    )
    table = cli("changes", "--status", "held", "--account", "base-1")
    assert table.code == 0 and f"{len(dark)} changes" in table.out
    assert all(_base_items(shop)[asin]["visible"] for asin in dark)  # nothing hidden yet

    released = cli("changes", "release", "--all", "--account", "base-1")
    assert released.code == 0, released.err
    assert f"released {len(dark)} held changes" in released.out
    decided = _changes(cli, "--status", "released")
    assert {row["asin"] for row in decided} == dark
    assert {row["decided_by"] for row in decided} == {"cli"}
    assert all(row["decided_at"] for row in decided)

    second = _sync(cli)
    assert second["mass_hide_tripped"] == [] and second["changes_held"] == 0
    assert second["released"] == len(dark)
    truth = _base_items(shop)
    assert {asin for asin, item in truth.items() if not item["visible"]} >= dark
    assert all(truth[listing.asin]["visible"] for listing in visible if listing.asin not in dark)
    assert _changes(cli, "--status", "held") == []

    third = _sync(cli)  # the channel shows the target: the releases are done
    assert third["released"] == 0 and third["changes_planned"] == 0
    open_releases = select(Change.id).where(
        Change.status == "released", Change.finished_at.is_(None)
    )
    assert _rows(shop, open_releases) == []


def _scale_source(shop: Shop, asin: str, offers: list[dict[str, Any]], factor: float) -> None:
    moved = [
        {**offer, "price": max(1, int(offer["price"] * factor)), "shipping": 0} for offer in offers
    ]
    shop.sim("PUT", f"/_sim/amazon/{asin}", json={"offers": moved})


def test_a_rejected_cut_stays_unapplied_until_the_source_moves_then_a_release_sends_it(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = _synced_shop(make_shop, cli, products=60, base_accounts=1, ebay_accounts=0, drift=0.0)
    listing = next(row[0] for row in _listings(shop) if row[0].confirmed_visible)
    asin = listing.asin
    price_before = Decimal(_base_items(shop)[asin]["price"])
    offers = shop.sim("GET", f"/_sim/amazon/{asin}")["offers"]
    _scale_source(shop, asin, offers, 0.2)  # a 70 %+ cut: held by max_drop_pct

    assert _sync(cli)["changes_held"] == 1
    [held] = _changes(cli, "--status", "held", "--asin", asin)
    assert held["kind"] == "price_cut" and "max_drop_pct" in held["reason"]

    rejected = cli("changes", "reject", str(held["id"]), "--by", "hanako")
    assert rejected.code == 0, rejected.err
    kept = _sync(cli)
    assert kept["changes_planned"] == 0 and kept["changes_held"] == 0
    assert kept["rejected_kept"] == 1
    assert Decimal(_base_items(shop)[asin]["price"]) == price_before
    assert _changes(cli, "--asin", asin) == []  # nothing open for it
    history = json.loads(cli("history", asin, "--json").out)
    assert [(r["status"], r["decided_by"]) for r in history][-1] == ("rejected", "hanako")

    _scale_source(shop, asin, offers, 0.25)  # the source moves: planned again
    moved = _sync(cli)
    assert moved["changes_held"] == 1 and moved["rejected_kept"] == 0
    [again] = _changes(cli, "--status", "held", "--asin", asin)
    assert again["id"] != held["id"]
    assert Decimal(str(again["new"]["price"])) != Decimal(str(held["new"]["price"]))

    assert cli("changes", "release", str(again["id"])).code == 0
    sent = _sync(cli)
    assert sent["changes_applied"] == 1 and sent["changes_held"] == 0
    assert Decimal(_base_items(shop)[asin]["price"]) == Decimal(str(again["new"]["price"]))


def test_bad_ids_write_nothing_and_exit_2(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = _synced_shop(make_shop, cli, products=60, base_accounts=1, ebay_accounts=0, drift=0.0)
    listing, sold_out = [row[0] for row in _listings(shop) if row[0].confirmed_visible][:2]
    offers = shop.sim("GET", f"/_sim/amazon/{listing.asin}")["offers"]
    _scale_source(shop, listing.asin, offers, 0.2)
    shop.sim("PUT", f"/_sim/amazon/{sold_out.asin}", json={"out_of_stock": True})
    _sync(cli)
    [held] = _changes(cli, "--status", "held")
    applied = _rows(shop, select(Change.id).where(Change.status == "applied"))[0][0]
    before = _journal(shop)

    unknown = cli("changes", "release", str(held["id"]), "999999")
    assert unknown.code == 2 and "change 999999: no such change" in unknown.err
    not_held = cli("changes", "reject", str(applied))
    assert not_held.code == 2 and f"change {applied}: applied, not held" in not_held.err
    other = cli("changes", "release", str(held["id"]), "--account", "nope")
    assert other.code == 2 and "--account" in other.err
    assert cli("changes", "release").code == 2  # neither ids nor --all
    assert cli("changes", "--status", "bogus").code == 2
    assert _journal(shop) == before


def test_a_small_account_hiding_under_min_hides_is_not_a_mass_hide(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = _synced_shop(make_shop, cli, products=8, base_accounts=1, ebay_accounts=0, drift=0.0)
    visible = [row[0] for row in _listings(shop) if row[0].confirmed_visible]
    assert len(visible) >= 4
    dark = {listing.asin for listing in visible[:4]}  # 4 of 8: 50 %, but under min_hides 5
    for asin in dark:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})
    summary = _sync(cli)
    assert summary["mass_hide_tripped"] == [] and summary["changes_held"] == 0
    truth = _base_items(shop)
    assert not any(truth[asin]["visible"] for asin in dark)
