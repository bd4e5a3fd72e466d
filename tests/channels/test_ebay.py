"""The eBay adapter against the simulator, over real sockets."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ecsync.channels import (
    ChannelAuthError,
    ChannelBudgetExhausted,
    ChannelChange,
    EbayAdapter,
    Outcome,
)
from ecsync.store.runner import DbRunner
from ecsync.store.schema import Token
from tests.channels.conftest import FakeClock, Sim

OpenEbay = Callable[..., EbayAdapter]


def _offers(sim: Sim) -> list[dict[str, Any]]:
    return sorted(sim.ebay_offers().values(), key=lambda offer: offer["offerId"])


def _change(
    change_id: int, offer: dict[str, Any], *, known: bool = True, **fields: Any
) -> ChannelChange:
    item_id = offer["offerId"] if known else ""
    return ChannelChange(change_id, item_id, offer["sku"], **fields)


def _bulk_calls(adapter: EbayAdapter) -> Callable[[], int]:
    """Count the adapter's bulk update requests through an httpx hook."""
    count = [0]

    async def hook(request: httpx.Request) -> None:
        if request.url.path.endswith("/bulk_update_price_quantity"):
            count[0] += 1

    adapter._http.event_hooks["request"].append(hook)
    return lambda: count[0]


def _next_utc_midnight(now: float) -> datetime:
    return datetime.fromtimestamp((math.floor(now / 86400) + 1) * 86400, UTC)


async def test_read_items_gives_every_offer_with_price_and_status(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    adapter = open_ebay()
    items = [item async for item in adapter.read_items()]
    truth = sim.ebay_offers()
    assert len(items) == len(truth) == 60
    for item in items:
        offer = truth[item.item_id]
        assert item.sku == offer["sku"]
        assert item.price == Decimal(offer["pricingSummary"]["price"]["value"])
        assert item.quantity == offer["availableQuantity"]
        assert item.status == "PUBLISHED"
        assert item.visible is None
        assert item.title
    assert adapter.calls == 1 + 60  # one inventory page, then one offer lookup per SKU


async def test_offer_id_is_looked_up_by_sku_once_and_returned(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    offers = _offers(sim)
    adapter = open_ebay()
    unknown = ChannelChange(3, "", "B000NOSUCH", price=Decimal("9.99"))
    results = await adapter.apply(
        [
            _change(1, offers[0], known=False, price=Decimal("24.5")),
            _change(2, offers[1], price=Decimal("31.999")),
            unknown,
        ]
    )
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.GONE]
    assert results[0].offer_id == offers[0]["offerId"]
    assert results[1].offer_id == offers[1]["offerId"]
    assert "B000NOSUCH" in (results[2].error or "")
    truth = sim.ebay_offers()
    assert truth[offers[0]["offerId"]]["pricingSummary"]["price"]["value"] == "24.50"
    assert truth[offers[1]["offerId"]]["pricingSummary"]["price"]["value"] == "32.00"
    assert results[0].confirmed is not None and results[0].confirmed.price == Decimal("24.50")
    assert adapter.calls == 3  # two lookups (one of them found nothing) and one bulk call


async def test_bulk_updates_go_25_per_call(sim: Sim, open_ebay: OpenEbay) -> None:
    offers = _offers(sim)
    adapter = open_ebay()
    bulk_calls = _bulk_calls(adapter)
    changes = [
        _change(i, offer, price=Decimal("10.00") + i, quantity=i % 3 + 1)
        for i, offer in enumerate(offers)
    ]
    results = await adapter.apply(changes)
    assert all(r.outcome is Outcome.APPLIED for r in results)
    assert bulk_calls() == 3 == adapter.calls  # 25 + 25 + 10
    assert sim.stats()["ebay"]["ebay-1"]["writes"] == 60
    truth = sim.ebay_offers()
    for change in changes:
        offer = truth[change.item_id]
        assert offer["pricingSummary"]["price"]["value"] == f"{change.price:.2f}"
        assert offer["availableQuantity"] == offer["shipToLocationQuantity"] == change.quantity


async def test_multi_status_answers_are_mapped_to_their_changes(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    offers = _offers(sim)
    adapter = open_ebay()
    results = await adapter.apply(
        [
            _change(1, offers[0], price=Decimal("12.34")),
            ChannelChange(2, offers[2]["offerId"], offers[1]["sku"], quantity=2),  # wrong pair
            _change(3, offers[3], price=Decimal(0)),
            ChannelChange(4, "7999999999", "B000NOSUCH", quantity=1),
            _change(5, offers[4], quantity=4),
        ]
    )
    outcomes = [r.outcome for r in results]
    # 25713/25702 answer about an offer id: the SKU is looked up once. Change 2's SKU has
    # another offer (its own), which gets the change; change 4's SKU has none: gone.
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.FAILED,
        Outcome.GONE,
        Outcome.APPLIED,
    ]
    assert results[1].offer_id == offers[1]["offerId"]
    assert "25003" in (results[2].error or "") and "0.00" in (results[2].error or "")
    assert "25702" in (results[3].error or "")
    assert adapter.calls == 4  # one bulk call, two SKU lookups, one resend
    truth = sim.ebay_offers()
    assert truth[offers[0]["offerId"]]["pricingSummary"]["price"]["value"] == "12.34"
    assert truth[offers[4]["offerId"]]["availableQuantity"] == 4


async def test_system_errors_on_entries_are_sent_again(sim: Sim, open_ebay: OpenEbay) -> None:
    offers = _offers(sim)
    sim.faults({"ebay": {"item_error": 1.0}})  # one entry of each bulk call fails with 25001
    adapter = open_ebay()
    bulk_calls = _bulk_calls(adapter)

    async def heal(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/bulk_update_price_quantity"):
            async with httpx.AsyncClient(base_url=sim.url) as control:
                await control.put("/_sim/faults", json={})

    adapter._http.event_hooks["response"].append(heal)
    changes = [_change(i, offer, quantity=3) for i, offer in enumerate(offers[:5])]
    results = await adapter.apply(changes)
    assert all(r.outcome is Outcome.APPLIED for r in results), results
    assert bulk_calls() == 2  # all five, then the one that failed
    assert sim.stats()["ebay"]["ebay-1"]["errors"] == 1
    assert all(sim.ebay_offers()[c.item_id]["availableQuantity"] == 3 for c in changes)


async def test_entries_that_keep_failing_are_deferred(sim: Sim, open_ebay: OpenEbay) -> None:
    offers = _offers(sim)
    sim.faults({"ebay": {"item_error": 1.0}})
    adapter = open_ebay()
    results = await adapter.apply([_change(i, o, quantity=2) for i, o in enumerate(offers[:5])])
    deferred = [r for r in results if r.outcome is Outcome.DEFERRED]
    assert len(deferred) == 1 and "25001" in (deferred[0].error or "")
    assert sum(r.outcome is Outcome.APPLIED for r in results) == 4
    assert adapter.calls == 3  # the bulk call and two re-sends of the failing entry


async def test_quantity_zero_and_the_out_of_stock_control_preference(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    offers = _offers(sim)
    accepted = await open_ebay().apply([_change(1, offers[0], quantity=0)])
    assert accepted[0].outcome is Outcome.APPLIED  # out-of-stock control on: 0 is fine
    assert sim.ebay_offers()[offers[0]["offerId"]]["availableQuantity"] == 0

    sim.send("PATCH", "/_sim/ebay/ebay-1", {"out_of_stock_control": False})
    [refused] = await open_ebay().apply([_change(2, offers[1], quantity=0)])
    assert refused.outcome is Outcome.FAILED
    assert "25004" in (refused.error or "")
    assert "out-of-stock control" in (refused.error or "")
    assert 'zero_quantity_fallback = "unpublish"' in (refused.error or "")

    unpublishing = open_ebay(sim.account("ebay-1", zero_quantity_fallback="unpublish"))
    [hidden] = await unpublishing.apply([_change(3, offers[1], visible=False)])
    assert hidden.outcome is Outcome.APPLIED
    assert hidden.confirmed is not None and hidden.confirmed.status == "UNPUBLISHED"
    assert sim.ebay_offers()[offers[1]["offerId"]]["status"] == "UNPUBLISHED"

    [back] = await unpublishing.apply([_change(4, offers[1], quantity=1)])
    assert back.outcome is Outcome.APPLIED
    offer = sim.ebay_offers()[offers[1]["offerId"]]
    assert (offer["status"], offer["availableQuantity"]) == ("PUBLISHED", 1)


async def test_daily_revision_limit_defers_to_the_next_day(sim: Sim, open_ebay: OpenEbay) -> None:
    sim.freeze()
    sim.send("PATCH", "/_sim/ebay/ebay-1", {"daily_revision_limit": 1})
    offer = _offers(sim)[0]
    clock = FakeClock()
    adapter = open_ebay(clock=clock)
    [first] = await adapter.apply([_change(1, offer, price=Decimal("20.00"))])
    [second] = await adapter.apply([_change(2, offer, price=Decimal("21.00"))])
    assert first.outcome is Outcome.APPLIED
    assert second.outcome is Outcome.DEFERRED
    assert second.retry_after == _next_utc_midnight(clock.now)
    assert "revision" in (second.error or "")
    assert sim.ebay_offers()[offer["offerId"]]["pricingSummary"]["price"]["value"] == "20.00"


async def test_daily_call_limit_is_kept(sim: Sim, open_ebay: OpenEbay) -> None:
    offers = _offers(sim)
    clock = FakeClock()
    account = sim.account("ebay-1", daily_call_limit=2)
    adapter = open_ebay(account, clock=clock)
    results = await adapter.apply([_change(i, o, quantity=2) for i, o in enumerate(offers)])
    assert [r.outcome for r in results].count(Outcome.APPLIED) == 50
    assert all(r.outcome is Outcome.DEFERRED for r in results[50:])
    assert all(r.retry_after == _next_utc_midnight(clock.now) for r in results[50:])
    assert adapter.calls == 2
    [day] = await adapter.budgets()
    assert (day.name, day.limit, day.used) == ("day", 2, 2)
    with pytest.raises(ChannelBudgetExhausted):
        [item async for item in open_ebay(account, clock=clock).read_items()]


async def test_tokens_are_refreshed_and_refusals_name_the_account(
    sim: Sim, db: DbRunner, open_ebay: OpenEbay
) -> None:
    offer = _offers(sim)[0]
    adapter = open_ebay()
    assert (await adapter.apply([_change(1, offer, quantity=2)]))[0].outcome is Outcome.APPLIED
    sim.faults({"revoke_tokens": True})
    assert (await adapter.apply([_change(2, offer, quantity=3)]))[0].outcome is Outcome.APPLIED
    assert adapter.token_refreshes == 2
    stored = await db.run(lambda session: session.get(Token, "ebay-1"))
    assert stored is not None and stored.access_token and stored.expires_at

    # A bad config token does not matter while the stored one works: the stored one wins.
    wrong = sim.account("ebay-1", refresh_token=SecretStr("nope"))
    sim.faults({"revoke_tokens": True})
    assert (await open_ebay(wrong).apply([_change(3, offer, quantity=1)]))[0].outcome is (
        Outcome.APPLIED
    )
    # With nothing stored, the refused refresh stops the account with a message naming it.
    await db.run(lambda session: session.delete(session.get(Token, "ebay-1")))
    with pytest.raises(ChannelAuthError, match="ebay-1"):
        await open_ebay(wrong).apply([_change(4, offer, quantity=1)])


async def test_server_errors_are_retried_then_deferred(sim: Sim, open_ebay: OpenEbay) -> None:
    offers = _offers(sim)
    sim.faults({"ebay": {"error500": 1.0}})
    adapter = open_ebay()
    results = await adapter.apply([_change(i, o, quantity=1) for i, o in enumerate(offers[:3])])
    assert all(r.outcome is Outcome.DEFERRED for r in results)
    assert "HTTP 500" in (results[0].error or "") and "25001" in (results[0].error or "")
    assert adapter.calls == 3


async def test_a_replaced_offer_gets_the_change_and_only_a_sku_without_offers_is_gone(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    """25713 answers about one offer id: a listing whose stored offer id went stale (the SKU
    was relisted under a new offer) must get its change through the SKU's current offer, not
    be retired while the new offer stays on sale."""
    offers = _offers(sim)
    live, deleted = offers[0], offers[1]
    stale = ChannelChange(1, "7199999999", live["sku"], quantity=0)
    sim.send("DELETE", f"/_sim/ebay/ebay-1/offers/{deleted['offerId']}")
    really_gone = ChannelChange(2, deleted["offerId"], deleted["sku"], quantity=0)
    results = await open_ebay().apply([stale, really_gone])
    assert results[0].outcome is Outcome.APPLIED, results[0]
    assert results[0].offer_id == live["offerId"]
    assert sim.ebay_offers()[live["offerId"]]["availableQuantity"] == 0
    assert results[1].outcome is Outcome.GONE, results[1]
