"""``EbayAdapter.read``: the account through the Sell Feed inventory report, and the
partial-aware single reads when the report cannot be had, against the simulator.

Oracles come from the simulator's truth (``/_sim/ebay/ebay-1/offers``) and from raw HTTP
calls made here, never from the adapter.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from ecsync.channels import ChannelChange, ChannelUnavailable, EbayAdapter, Outcome
from ecsync.clock import Stop
from ecsync.errors import Interrupted
from tests.channels.conftest import FAST, Sim

OpenEbay = Callable[..., EbayAdapter]
SCALED = dataclasses.replace(FAST, time_scale=100.0)  # the simulator runs at --speed 100


def _truth(sim: Sim) -> dict[str, dict[str, Any]]:
    """SKU -> offer, as the simulator holds it."""
    return {offer["sku"]: offer for offer in sim.ebay_offers().values()}


def _state(offer: dict[str, Any]) -> tuple[Decimal, int]:
    return Decimal(offer["pricingSummary"]["price"]["value"]), offer["availableQuantity"]


def _raw_statuses(sim: Sim, skus: list[str]) -> dict[str, int]:
    """Each SKU's single read status, asked over plain HTTP with a token got here."""
    account = sim.settings.account("ebay-1")
    pair = f"{account.client_id}:{account.client_secret.get_secret_value()}"
    token = sim.http.post(
        "/identity/v1/oauth2/token",
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
        data={
            "grant_type": "refresh_token",
            "refresh_token": account.refresh_token.get_secret_value(),
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "X-EBAY-C-MARKETPLACE-ID": "EBAY_US"}
    return {
        sku: sim.http.get(
            "/sell/inventory/v1/offer", params={"sku": sku}, headers=headers
        ).status_code
        for sku in skus
    }


async def test_read_goes_through_one_report_and_matches_the_truth(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    truth = _truth(sim)
    adapter = open_ebay(options=SCALED)
    result = await adapter.read(truth)
    assert result.complete and not result.gone_skus
    assert {item.sku: (item.price, item.quantity) for item in result.items} == {
        sku: _state(offer) for sku, offer in truth.items()
    }
    assert all(item.item_id == "" and item.status == "PUBLISHED" for item in result.items)
    counters = sim.stats()["ebay"]["ebay-1"]
    assert counters["reads"] == 0  # not one offer read SKU by SKU
    assert counters["feed_calls"] == result.calls == adapter.calls
    assert 3 <= result.calls <= 10


async def test_skus_the_report_lacks_are_read_one_by_one(sim: Sim, open_ebay: OpenEbay) -> None:
    truth = _truth(sim)
    withdrawn, deleted = sorted(truth)[:2]
    sim.send(
        "PATCH",
        f"/_sim/ebay/ebay-1/offers/{truth[withdrawn]['offerId']}",
        {"status": "UNPUBLISHED"},
    )
    sim.send("DELETE", f"/_sim/ebay/ebay-1/offers/{truth[deleted]['offerId']}")
    result = await open_ebay(options=SCALED).read(truth)
    assert result.complete
    assert result.gone_skus == {deleted}
    by_sku = {item.sku: item for item in result.items}
    assert set(by_sku) == set(truth) - {deleted}
    single = by_sku[withdrawn]
    assert single.item_id == truth[withdrawn]["offerId"] and single.status == "UNPUBLISHED"
    assert sim.stats()["ebay"]["ebay-1"]["reads"] == 1


@pytest.mark.parametrize("why", ["report limit", "task failed"])
async def test_without_a_report_refused_reads_are_problems_and_never_gone(
    sim: Sim, open_ebay: OpenEbay, why: str
) -> None:
    truth = _truth(sim)
    deleted = sorted(truth)[0]
    sim.send("DELETE", f"/_sim/ebay/ebay-1/offers/{truth[deleted]['offerId']}")
    if why == "report limit":
        sim.send("PATCH", "/_sim/ebay/ebay-1", {"daily_report_limit": 1})
        await open_ebay(options=SCALED).read()  # spends the day's only report
    else:
        sim.faults({"ebay": {"task_failed": 1.0}})
    sim.faults({"ebay": {"read_refused": 0.3, "task_failed": 1.0 if why == "task failed" else 0}})
    statuses = _raw_statuses(sim, sorted(truth))
    refused = {sku for sku, status in statuses.items() if status in (400, 403)}
    assert refused and statuses[deleted] == 404

    result = await open_ebay(options=SCALED).read(truth)

    assert not result.complete
    assert {problem.where for problem in result.problems} == {f"SKU {sku}" for sku in refused}
    assert result.gone_skus == {deleted}  # only the positively deleted one
    assert {item.sku for item in result.items} == set(truth) - refused - {deleted}
    for item in result.items:
        assert item.item_id == truth[item.sku]["offerId"]
        assert (item.price, item.quantity) == _state(truth[item.sku])


async def test_a_report_completed_with_error_is_partial_and_the_missing_are_read(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    truth = _truth(sim)
    sim.faults({"ebay": {"task_partial": 1.0}})
    result = await open_ebay(options=SCALED).read(truth)
    assert not result.complete
    assert [problem.where for problem in result.problems] == [
        problem.where for problem in result.problems if problem.where.startswith("report task")
    ]
    assert {item.sku for item in result.items} == set(truth)
    assert 0 < sim.stats()["ebay"]["ebay-1"]["reads"] < len(truth)


async def test_a_report_that_never_finishes_falls_back_to_single_reads(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    sim.freeze()  # the task stays CREATED
    truth = _truth(sim)
    adapter = open_ebay(options=SCALED)
    adapter.report_timeout_s = 60.0
    result = await adapter.read()
    assert result.complete
    assert {item.sku for item in result.items} == set(truth)
    assert all(item.item_id for item in result.items)


async def test_a_stop_ends_the_wait_for_the_report(sim: Sim, open_ebay: OpenEbay) -> None:
    sim.freeze()
    adapter = open_ebay(options=FAST)  # unscaled: the first poll is 10 s away
    reading = asyncio.ensure_future(adapter.read())
    for _ in range(200):  # until the task is created (bounded)
        if sim.stats()["ebay"]["ebay-1"]["feed_calls"]:
            break
        await asyncio.sleep(0.01)
    adapter._stop.set("test stop")
    with pytest.raises(Interrupted):
        await asyncio.wait_for(reading, 5)


async def test_a_refused_lookup_fails_the_change_and_never_calls_it_gone(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    truth = _truth(sim)
    sim.faults({"ebay": {"read_refused": 0.5}})
    statuses = _raw_statuses(sim, sorted(truth))
    sku = next(sku for sku, status in sorted(statuses.items()) if status in (400, 403))
    [result] = await open_ebay().apply([ChannelChange(1, "", sku, price=Decimal("19.99"))])
    assert result.outcome is Outcome.FAILED
    assert truth[sku]["pricingSummary"] == _truth(sim)[sku]["pricingSummary"]


async def test_twenty_thousand_listings_cost_at_most_ten_calls(
    make_sim: Callable[..., Sim], db: Any, adapters: list[Any]
) -> None:
    sim = make_sim(products=20_000, ebay_share=1.0, base_accounts=0, speed=1000.0)
    truth = _truth(sim)
    assert len(truth) == 20_000
    options = dataclasses.replace(FAST, time_scale=1000.0, total_timeout_s=30.0)
    adapter = EbayAdapter(sim.settings.account("ebay-1"), db, Stop(), options=options)
    adapters.append(adapter)
    result = await adapter.read(truth)
    assert result.complete
    assert len(result.items) == 20_000
    assert result.calls <= 10
    counters = sim.stats()["ebay"]["ebay-1"]
    assert counters["reads"] == 0 and counters["feed_calls"] == result.calls


async def test_without_a_report_single_reads_keep_half_the_day_for_pushes(
    sim: Sim, open_ebay: OpenEbay
) -> None:
    truth = _truth(sim)
    sim.faults({"ebay": {"task_failed": 1.0}})
    adapter = open_ebay(sim.account("ebay-1", daily_call_limit=100), options=SCALED)
    result = await adapter.read(truth)
    # The report try costs 1 create + polls, then one inventory page (the simulator counts
    # it in reads), then single reads within half of the calls left at that moment.
    used_before_reads = result.calls - (sim.stats()["ebay"]["ebay-1"]["reads"] - 1)
    spare = (100 - used_before_reads) // 2
    assert len(result.items) == spare < len(truth)
    assert not result.complete and not result.gone_skus
    [problem] = result.problems
    assert problem.where == f"{len(truth) - spare} SKUs" and "budget" in problem.error
    budget = {b.name: b for b in await adapter.budgets()}["day"]
    assert budget.limit - budget.used >= spare  # half of what was left is still there


@pytest.mark.parametrize("seed", [3, 4, 5])
async def test_under_faults_errors_never_make_a_sku_gone(
    make_sim: Callable[..., Sim], open_ebay: OpenEbay, db: Any, adapters: list[Any], seed: int
) -> None:
    sim = make_sim(seed=seed)
    truth = _truth(sim)
    deleted = set(sorted(truth)[:2])
    for sku in deleted:
        sim.send("DELETE", f"/_sim/ebay/ebay-1/offers/{truth[sku]['offerId']}")
    sim.faults(
        {
            "ebay": {
                "error500": 0.3,
                "throttle": 0.1,
                "read_refused": 0.2,
                "task_failed": 0.5,
                "malformed": 0.05,
            }
        }
    )
    adapter = EbayAdapter(sim.settings.account("ebay-1"), db, Stop(), options=SCALED)
    adapters.append(adapter)
    result = await adapter.read(truth)
    assert result.gone_skus <= deleted
    for item in result.items:
        assert (item.price, item.quantity) == _state(truth[item.sku])
    named = {problem.where.removeprefix("SKU ") for problem in result.problems}
    accounted = {item.sku for item in result.items} | result.gone_skus | named
    halted = any(problem.where.endswith(" SKUs") for problem in result.problems)
    assert halted or set(truth) <= accounted  # every SKU: read, gone, or a problem


async def test_ebay_down_ends_the_read_early_with_an_error(sim: Sim, open_ebay: OpenEbay) -> None:
    truth = _truth(sim)
    sim.faults({"ebay": {"error500": 1.0}})
    adapter = open_ebay(options=SCALED)
    with pytest.raises(ChannelUnavailable):
        await adapter.read(truth)
    # Each call is tried max_retries + 1 = 3 times: the report task, one page, then the
    # SKUs in flight when the fifth one failed (4 at a time) -- not all 60.
    assert adapter.calls <= 3 * (1 + 1 + 5 + FAST.concurrency)
