"""eBay's Sell Feed API report task and the read-refusing fault, over real sockets.

The report is checked against the simulator's truth (``/_sim/ebay/{account}/offers``) with
a parser written here, independent of ecsync's client.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.sim.conftest import SimClient, SimFactory

FEED = "/sell/feed/v1"
NS = "{urn:ebay:apis:eBLBaseComponents}"
REPORT = {"feedType": "LMS_ACTIVE_INVENTORY_REPORT", "schemaVersion": "1.0"}


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-EBAY-C-MARKETPLACE-ID": "EBAY_US"}


def _create(sim: SimClient, token: str) -> httpx.Response:
    return sim.http.post(f"{FEED}/inventory_task", json=REPORT, headers=_headers(token))


def _task_id(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location.startswith(sim_url_prefix(location))
    return location.rsplit("/", 1)[-1]


def sim_url_prefix(location: str) -> str:
    return location.split("/sell/feed/v1/inventory_task/")[0]


def _status(sim: SimClient, token: str, task_id: str) -> dict[str, Any]:
    response = sim.http.get(f"{FEED}/inventory_task/{task_id}", headers=_headers(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _download(sim: SimClient, token: str, task_id: str) -> httpx.Response:
    return sim.http.get(f"{FEED}/task/{task_id}/download_result_file", headers=_headers(token))


def _report_rows(content: bytes) -> dict[str, tuple[str, Decimal, int]]:
    """SKU -> (ItemID, price, quantity), read with ElementTree here in the test."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        assert len(names) == 1 and names[0].endswith(".xml")
        root = ET.fromstring(archive.read(names[0]))
    assert root.tag == f"{NS}BulkDataExchangeResponses"
    rows = {}
    for details in root.iter(f"{NS}SKUDetails"):
        price = details.find(f"{NS}Price")
        assert price is not None and price.get("currencyID") == "USD"
        rows[details.findtext(f"{NS}SKU", "")] = (
            details.findtext(f"{NS}ItemID", ""),
            Decimal(price.text or ""),
            int(details.findtext(f"{NS}Quantity", "")),
        )
    return rows


def _truth(sim: SimClient) -> list[dict[str, Any]]:
    return sim.control("GET", "/ebay/ebay-1/offers")["offers"]  # type: ignore[no-any-return]


def test_report_task_moves_through_its_states_and_reports_every_active_listing(
    sim: SimClient,
) -> None:
    sim.freeze()
    offers = _truth(sim)
    withdrawn = offers[0]
    sim.control("PATCH", f"/ebay/ebay-1/offers/{withdrawn['offerId']}", {"status": "UNPUBLISHED"})
    token = sim.ebay_token()
    task_id = _task_id(_create(sim, token))
    first = _status(sim, token, task_id)
    assert first["status"] == "CREATED"
    assert first["feedType"] == "LMS_ACTIVE_INVENTORY_REPORT"
    early = _download(sim, token, task_id)
    assert early.status_code == 409
    assert early.json()["errors"][0]["domain"] == "API_FEED"
    seen = [first["status"]]
    for _ in range(60):  # bounded: 60 steps of 5 simulated seconds
        sim.advance(5)
        status = _status(sim, token, task_id)["status"]
        if status != seen[-1]:
            seen.append(status)
        if status == "COMPLETED":
            break
    assert seen == ["CREATED", "IN_PROCESS", "COMPLETED"]
    response = _download(sim, token, task_id)
    assert response.status_code == 200
    rows = _report_rows(response.content)
    expected = {
        offer["sku"]: (
            offer["listing"]["listingId"],
            Decimal(offer["pricingSummary"]["price"]["value"]),
            offer["availableQuantity"],
        )
        for offer in _truth(sim)
        if offer["status"] == "PUBLISHED"
    }
    assert rows == expected
    assert withdrawn["sku"] not in rows and len(rows) == len(offers) - 1
    assert _download(sim, token, task_id).content == response.content  # same file each time


def test_feed_calls_are_counted_apart_from_inventory_reads(sim: SimClient) -> None:
    token = sim.ebay_token()
    task_id = _task_id(_create(sim, token))
    _status(sim, token, task_id)
    _status(sim, token, task_id)
    counters = sim.stats()["ebay"]["ebay-1"]
    assert counters["feed_calls"] == 3
    assert counters["reads"] == 0


def test_report_timeline_is_the_same_for_the_same_seed(make_sim: SimFactory) -> None:
    timelines = []
    for _ in range(2):
        sim = make_sim(seed=11)
        sim.freeze()
        token = sim.ebay_token()
        task_id = _task_id(_create(sim, token))
        statuses = []
        for _ in range(40):
            statuses.append(_status(sim, token, task_id)["status"])
            sim.advance(3)
        timelines.append(statuses)
    assert timelines[0] == timelines[1]
    assert "IN_PROCESS" in timelines[0] and timelines[0][-1] == "COMPLETED"


def test_report_limit_per_24_hours(sim: SimClient) -> None:
    sim.freeze()
    sim.control("PATCH", "/ebay/ebay-1", {"daily_report_limit": 2})
    for _ in range(2):
        _task_id(_create(sim, sim.ebay_token()))
        sim.advance(3600)
    token = sim.ebay_token()
    refused = _create(sim, token)
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["errorId"] == 160025
    assert {"domain", "category", "message", "longMessage", "parameters"} <= set(error)
    sim.advance(86400 - 2 * 3600 + 1)  # the first task is now more than 24 h old
    token = sim.ebay_token()
    _task_id(_create(sim, token))
    assert _create(sim, token).status_code == 403


def test_bad_requests_get_ebay_errors(sim: SimClient) -> None:
    token = sim.ebay_token()
    wrong = sim.http.post(
        f"{FEED}/inventory_task",
        json={"feedType": "LMS_ORDER_REPORT", "schemaVersion": "1.0"},
        headers=_headers(token),
    )
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["errorId"] == 160017
    no_marketplace = sim.http.post(
        f"{FEED}/inventory_task", json=REPORT, headers={"Authorization": f"Bearer {token}"}
    )
    assert no_marketplace.status_code == 400
    unknown = sim.http.get(f"{FEED}/inventory_task/task-1-999", headers=_headers(token))
    assert unknown.status_code == 404
    unauthorized = sim.http.post(f"{FEED}/inventory_task", json=REPORT)
    assert unauthorized.status_code == 401
    assert unauthorized.json()["errors"][0]["errorId"] == 1001


@pytest.mark.parametrize(
    ("kind", "status"), [("task_failed", "FAILED"), ("task_partial", "COMPLETED_WITH_ERROR")]
)
def test_task_faults_end_tasks_badly(sim: SimClient, kind: str, status: str) -> None:
    sim.freeze()
    sim.faults({"ebay": {kind: 1.0}})
    task_id = _task_id(_create(sim, sim.ebay_token()))
    sim.advance(3600)
    token = sim.ebay_token()
    assert _status(sim, token, task_id)["status"] == status
    response = _download(sim, token, task_id)
    if status == "FAILED":
        assert response.status_code == 409
        return
    rows = _report_rows(response.content)
    assert 0 < len(rows) < len(_truth(sim))


def test_server_faults_apply_to_feed_calls(sim: SimClient) -> None:
    token = sim.ebay_token()
    sim.faults({"ebay": {"error500": 1.0}})
    response = _create(sim, token)
    assert response.status_code == 500
    assert response.json()["errors"][0]["errorId"] == 25001
    assert sim.stats()["ebay"]["ebay-1"]["feed_calls"] == 1


def test_malformed_fault_truncates_the_report(sim: SimClient) -> None:
    sim.freeze()
    task_id = _task_id(_create(sim, sim.ebay_token()))
    sim.advance(3600)
    token = sim.ebay_token()
    good = _download(sim, token, task_id).content
    sim.faults({"ebay": {"malformed": 1.0}})
    bad = _download(sim, token, task_id).content
    assert len(bad) < len(good)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bad))


def _offer_read(sim: SimClient, token: str, sku: str) -> httpx.Response:
    return sim.http.get("/sell/inventory/v1/offer", params={"sku": sku}, headers=_headers(token))


def test_read_refused_refuses_the_same_skus_with_errors_that_are_not_gone(
    sim: SimClient,
) -> None:
    token = sim.ebay_token()
    skus = [offer["sku"] for offer in _truth(sim)]
    sim.faults({"ebay": {"read_refused": 0.3}})
    first = {sku: _offer_read(sim, token, sku).status_code for sku in skus}
    second = {sku: _offer_read(sim, token, sku).status_code for sku in skus}
    assert first == second  # the same SKUs stay refused
    refused = {sku for sku, status in first.items() if status != 200}
    assert 0 < len(refused) < len(skus)
    assert {first[sku] for sku in refused} <= {400, 403}
    for sku in refused:
        errors = _offer_read(sim, token, sku).json()["errors"]
        assert errors and all(error["errorId"] != 25713 for error in errors)
    sim.faults({})
    assert all(_offer_read(sim, token, sku).status_code == 200 for sku in skus)


def test_deleted_offer_answers_404_25713(sim: SimClient) -> None:
    token = sim.ebay_token()
    offer = _truth(sim)[0]
    sim.control("DELETE", f"/ebay/ebay-1/offers/{offer['offerId']}")
    response = _offer_read(sim, token, offer["sku"])
    assert response.status_code == 404
    assert response.json()["errors"][0]["errorId"] == 25713
