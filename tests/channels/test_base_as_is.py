"""The BASE adapter against BASE as it really is (simulated over real sockets): items with
variations, items the API cannot edit, the token endpoint's codes, and partial reads."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ecsync.channels import BaseAdapter, ChannelAuthError, ChannelChange, Outcome
from ecsync.channels.errors import ChannelBudgetExhausted, ChannelUnavailable
from ecsync.channels.thebase import MAX_REREADS
from tests.channels.conftest import FAST, Sim

OpenBase = Callable[..., BaseAdapter]


def _items(sim: Sim) -> list[dict[str, Any]]:
    return sorted(sim.base_items().values(), key=lambda item: item["item_id"])


def _variations(sim: Sim, item: dict[str, Any], *rows: tuple[int, str | None]) -> dict[str, Any]:
    """Give the item variations: (stock, variation_identifier) each."""
    body = {
        "variations": [
            {"variation": f"色{n}", "variation_stock": stock, "variation_identifier": code}
            for n, (stock, code) in enumerate(rows)
        ]
    }
    return sim.send("PATCH", f"/_sim/base/base-1/items/{item['item_id']}", body)["item"]  # type: ignore[no-any-return]


def _stock(
    item_id: str, asin: str, quantity: int, change_id: int = 1, **fields: Any
) -> ChannelChange:
    return ChannelChange(change_id, item_id, asin, quantity=quantity, **fields)


# --- variations -------------------------------------------------------------------------


async def test_stock_goes_to_the_variation_that_carries_the_asin_and_converges(
    sim: Sim, open_base: OpenBase
) -> None:
    item = _items(sim)[5]
    asin, item_id = item["identifier"], str(item["item_id"])
    _variations(sim, item, (2, f"{asin}-L"), (0, asin), (3, None))
    adapter = open_base()
    read = await adapter.read()
    seen = {i.item_id: i for i in read.items}[item_id]
    assert (seen.sku, seen.quantity) == (asin, 0)  # the ASIN's variation, not the sum (5)
    calls = adapter.calls

    [result] = await adapter.apply([_stock(item_id, asin, 1, visible=True)])
    assert result.outcome is Outcome.APPLIED, result
    assert adapter.calls == calls + 1  # the read told where the stock lives: one edit
    truth = sim.base_items()[item_id]
    assert [v["variation_stock"] for v in truth["variations"]] == [2, 1, 3]
    assert truth["stock"] == 6 and truth["visible"] == 1
    assert result.confirmed is not None and result.confirmed.quantity == 1
    # What the next read says is what was confirmed: nothing left to re-plan.
    again = {i.item_id: i for i in (await open_base().read()).items}[item_id]
    assert again.quantity == result.confirmed.quantity == 1


async def test_the_only_variation_carries_the_stock_even_without_a_code(
    sim: Sim, open_base: OpenBase
) -> None:
    item = _items(sim)[1]
    item_id = str(item["item_id"])
    _variations(sim, item, (0, None))
    adapter = open_base()  # no read first: the adapter reads the item alone before the edit
    [result] = await adapter.apply([_stock(item_id, item["identifier"], 2)])
    assert result.outcome is Outcome.APPLIED, result
    assert adapter.calls == 2
    truth = sim.base_items()[item_id]
    assert truth["variations"][0]["variation_stock"] == 2 and truth["stock"] == 2
    assert result.confirmed is not None and result.confirmed.quantity == 2


async def test_an_item_whose_variations_do_not_name_the_asin_never_gets_a_stock(
    sim: Sim, open_base: OpenBase, caplog: pytest.LogCaptureFixture
) -> None:
    item = _items(sim)[2]
    asin, item_id = item["identifier"], str(item["item_id"])
    before = _variations(sim, item, (0, None), (0, "OTHER-CODE"))
    adapter = open_base()
    seen = {i.item_id: i for i in (await adapter.read()).items}[item_id]
    assert seen.quantity == 0  # the item's total: sold out is still seen as sold out
    assert f"first: item {item_id}" in caplog.text  # said at the read, before any change
    writes = sim.stats()["base"]["base-1"]["writes"]
    [refused] = await adapter.apply([_stock(item_id, asin, 1, visible=True)])
    assert refused.outcome is Outcome.FAILED
    assert "variations" in (refused.error or "") and asin in (refused.error or "")
    assert sim.stats()["base"]["base-1"]["writes"] == writes  # nothing sent
    assert sim.base_items()[item_id]["variations"] == before["variations"]
    # Price and visibility are the item's own: they are still set.
    [priced] = await adapter.apply([ChannelChange(2, item_id, asin, price=Decimal(4321))])
    assert priced.outcome is Outcome.APPLIED
    assert sim.base_items()[item_id]["price"] == 4321


# --- uneditable items -------------------------------------------------------------------


async def test_an_uneditable_item_fails_with_bases_reason_without_a_token_refresh(
    sim: Sim, open_base: OpenBase
) -> None:
    item = _items(sim)[0]
    sim.send("PATCH", f"/_sim/base/base-1/items/{item['item_id']}", {"uneditable": "digital"})
    adapter = open_base()
    change = ChannelChange(1, str(item["item_id"]), item["identifier"], price=Decimal(999))
    [result] = await adapter.apply([change])
    assert result.outcome is Outcome.FAILED
    assert result.error == "invalid_request: デジタルコンテンツの商品は編集できません。"
    assert adapter.calls == 1  # not retried
    assert sim.stats()["auth"]["base"] == 1  # the first token only: no refresh, no rotation
    assert sim.base_items()[str(item["item_id"])]["price"] == item["price"]


# --- the token endpoint -----------------------------------------------------------------


async def test_an_unauthorized_client_is_bad_credentials_not_a_refused_refresh_token(
    sim: Sim, open_base: OpenBase
) -> None:
    sim.send("PATCH", "/_sim/base/base-1", {"suspended": True})
    adapter = open_base()
    with pytest.raises(ChannelAuthError) as caught:
        await adapter.read()
    message = str(caught.value)
    assert "unauthorized_client" in message and "client_secret" in message
    assert "base-1" in message and "rotates" not in message
    assert sim.stats()["auth"]["base"] == 1  # no other refresh token tried


async def test_a_refused_refresh_token_says_base_rotates_them(
    sim: Sim, open_base: OpenBase
) -> None:
    adapter = open_base(sim.account("base-1", refresh_token=SecretStr("from-an-old-backup")))
    with pytest.raises(ChannelAuthError) as caught:
        await adapter.read()
    message = str(caught.value)
    assert "'base-1'" in message and "不正なリフレッシュトークンです" in message
    assert "rotates" in message and "PostgreSQL" in message and "re-authorise" in message


# --- partial reads ----------------------------------------------------------------------


async def test_a_read_under_item_malformed_reports_problems_never_gone(
    sim: Sim, open_base: OpenBase
) -> None:
    truth = sim.base_items()
    sim.faults({"base": {"item_malformed": 0.05}})
    adapter = open_base()
    read = await adapter.read()
    assert not read.complete
    assert read.gone == frozenset()
    unread = set(truth) - {item.item_id for item in read.items}
    assert 3 <= len(unread) <= 40  # 5 % of 300, loosely
    assert {p.where for p in read.problems} == {f"item {item_id}" for item_id in unread}
    retries = FAST.max_retries
    assert read.calls == 4 + min(len(unread), MAX_REREADS) * (1 + retries)
    with pytest.raises(ChannelUnavailable, match="item"):
        [item async for item in open_base().read_items()]

    sim.faults({})
    clean = await open_base().read()
    assert clean.complete and {item.item_id for item in clean.items} == set(truth)


async def test_an_item_deleted_while_unreadable_is_positively_gone(
    sim: Sim, open_base: OpenBase
) -> None:
    sim.faults({"base": {"item_malformed": 0.05}})
    adapter = open_base()
    deleted: list[str] = []

    async def delete_one_garbled(response: httpx.Response) -> None:
        if response.request.url.path == "/1/items" and not deleted:
            await response.aread()
            garbled = [i for i in response.json()["items"] if not isinstance(i["price"], int)]
            deleted.append(str(garbled[0]["item_id"]))
            sim.send("DELETE", f"/_sim/base/base-1/items/{deleted[0]}")

    adapter._http.event_hooks["response"].append(delete_one_garbled)
    read = await adapter.read()
    assert read.gone == frozenset(deleted)
    assert f"item {deleted[0]}" not in {p.where for p in read.problems}
    assert not read.complete  # the other garbled items are still problems


async def test_a_page_refused_midway_makes_the_read_partial(sim: Sim, open_base: OpenBase) -> None:
    sim.send("PATCH", "/_sim/base/base-1", {"hourly_limit": 2})
    read = await open_base().read()
    assert len(read.items) == 200
    assert [p.where for p in read.problems] == ["page offset=200"]
    assert "hour_api_limit" in read.problems[0].error
    with pytest.raises(ChannelBudgetExhausted):
        [item async for item in open_base().read_items()]


async def test_a_stock_change_for_an_item_bases_detail_cannot_find_is_gone(
    sim: Sim, open_base: OpenBase
) -> None:
    deleted, broken = _items(sim)[:2]
    sim.send("DELETE", f"/_sim/base/base-1/items/{deleted['item_id']}")
    sim.faults({"base": {"item_malformed": 1.0}})  # every detail read fails: not "no item"
    results = await open_base().apply(
        [
            _stock(str(deleted["item_id"]), deleted["identifier"], 1, change_id=1),
            _stock(str(broken["item_id"]), broken["identifier"], 1, change_id=2),
        ]
    )
    assert [r.outcome for r in results] == [Outcome.GONE, Outcome.DEFERRED]
    assert "no_item" in (results[0].error or "")
    assert sim.base_items()[str(broken["item_id"])]["stock"] == broken["stock"]
