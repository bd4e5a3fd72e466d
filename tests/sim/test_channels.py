"""BASE and eBay routes: reading, editing, validation and their error shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sim.conftest import SimClient, SimFactory


@pytest.fixture
def shop(make_sim: SimFactory) -> SimClient:
    return make_sim(products=250, ebay_share=0.9)


def base_headers(sim: SimClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.base_token()}"}


def ebay_headers(sim: SimClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.ebay_token()}"}


def assert_base_error(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == code
    assert any("\u3040" <= ch <= "\u9fff" for ch in body["error_description"])  # Japanese


# --- BASE ---------------------------------------------------------------------------------


def test_base_items_pages_and_orders(shop: SimClient) -> None:
    headers = base_headers(shop)
    truth = shop.control("GET", "/base/base-1/items")["items"]
    pages: list[dict[str, Any]] = []
    for offset in range(0, 300, 100):
        response = shop.http.get(
            "/1/items", params={"limit": 100, "offset": offset}, headers=headers
        )
        assert response.status_code == 200
        pages += response.json()["items"]
    assert [i["item_id"] for i in pages] == [i["item_id"] for i in truth]
    assert all(i["identifier"] for i in pages)
    default = shop.http.get("/1/items", headers=headers).json()["items"]
    assert len(default) == 20
    newest = shop.http.get(
        "/1/items", params={"order": "list_order", "sort": "desc", "limit": 5}, headers=headers
    ).json()["items"]
    assert [i["item_id"] for i in newest] == [i["item_id"] for i in truth[::-1][:5]]
    assert_base_error(
        shop.http.get("/1/items", params={"limit": 101}, headers=headers), "validation_error"
    )
    assert_base_error(
        shop.http.get("/1/items", params={"order": "price"}, headers=headers), "validation_error"
    )


def test_base_edit_detail_and_modified_order(shop: SimClient) -> None:
    headers = base_headers(shop)
    items = shop.control("GET", "/base/base-1/items")["items"]
    target = items[10]
    shop.advance(5)
    edited = shop.http.post(
        "/1/items/edit",
        data={"item_id": target["item_id"], "price": "1234", "visible": "0", "stock": "3"},
        headers=headers,
    )
    assert edited.status_code == 200
    item = edited.json()["item"]
    assert (item["price"], item["visible"], item["stock"]) == (1234, 0, 3)
    assert item["modified"] > target["modified"]
    detail = shop.http.get(f"/1/items/detail/{target['item_id']}", headers=headers)
    assert detail.json()["item"] == item
    latest = shop.http.get(
        "/1/items", params={"order": "modified", "sort": "desc", "limit": 1}, headers=headers
    ).json()["items"][0]
    assert latest["item_id"] == target["item_id"]
    stock = shop.http.post(
        "/1/items/edit_stock", data={"item_id": target["item_id"], "stock": "0"}, headers=headers
    )
    assert stock.json()["item"]["stock"] == 0
    assert shop.stats()["base"]["base-1"]["writes"] == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"price": "abc"},
        {"price": "0"},
        {"price": "-5"},
        {"price": "12.5"},
        {"visible": "2"},
        {"visible": "yes"},
        {"stock": "-1"},
    ],
)
def test_base_edit_validation(shop: SimClient, fields: dict[str, str]) -> None:
    item = shop.control("GET", "/base/base-1/items")["items"][0]
    response = shop.http.post(
        "/1/items/edit", data={"item_id": item["item_id"], **fields}, headers=base_headers(shop)
    )
    assert_base_error(response, "validation_error")
    unchanged = shop.control("GET", f"/base/base-1/items/{item['item_id']}")["item"]
    assert unchanged == item


def test_base_errors(shop: SimClient) -> None:
    headers = base_headers(shop)
    item = shop.control("GET", "/base/base-1/items")["items"][0]
    assert_base_error(
        shop.http.get("/1/items", headers={"Authorization": "Bearer x"}), "invalid_request"
    )
    assert_base_error(shop.http.get("/1/items"), "invalid_request")
    assert_base_error(
        shop.http.get("/1/items/edit", params={"item_id": item["item_id"]}, headers=headers),
        "not_post_method",
    )
    assert_base_error(shop.http.get("/1/items/detail/12345", headers=headers), "no_item")
    assert_base_error(shop.http.get("/1/items/detail/", headers=headers), "no_item_id")
    assert_base_error(
        shop.http.post("/1/items/edit", data={"item_id": "99", "price": "100"}, headers=headers),
        "bad_item_id",
    )


def test_base_deleted_and_hand_edited_items(shop: SimClient) -> None:
    headers = base_headers(shop)
    first, second = shop.control("GET", "/base/base-1/items")["items"][:2]
    shop.control("DELETE", f"/base/base-1/items/{first['item_id']}")
    gone = shop.http.post(
        "/1/items/edit", data={"item_id": first["item_id"], "price": "500"}, headers=headers
    )
    assert_base_error(gone, "bad_item_id")
    assert_base_error(
        shop.http.get(f"/1/items/detail/{first['item_id']}", headers=headers), "no_item"
    )
    listed = shop.http.get("/1/items", params={"limit": 100}, headers=headers).json()["items"]
    assert first["item_id"] not in {i["item_id"] for i in listed}
    patched = shop.control(
        "PATCH", f"/base/base-1/items/{second['item_id']}", {"price": 777, "visible": 0}
    )
    assert (patched["item"]["price"], patched["item"]["visible"]) == (777, 0)
    seen = shop.http.get(f"/1/items/detail/{second['item_id']}", headers=headers).json()
    assert seen["item"]["price"] == 777
    bad = shop.http.patch(f"/_sim/base/base-1/items/{second['item_id']}", json={"price": 0})
    assert bad.status_code == 400


# --- eBay ---------------------------------------------------------------------------------


def test_ebay_token_errors(shop: SimClient) -> None:
    url = "/identity/v1/oauth2/token"
    form = {"grant_type": "refresh_token", "refresh_token": "sim-ebay-refresh-1"}
    ok = shop.http.post(url, data=form, auth=("sim-ebay-client-1", "sim-ebay-secret-1"))
    assert ok.status_code == 200
    assert ok.json()["expires_in"] == 7200
    assert ok.json()["token_type"] == "User Access Token"
    wrong = shop.http.post(url, data=form, auth=("sim-ebay-client-1", "nope"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    missing = shop.http.post(url, data=form)
    assert missing.status_code == 401
    bad = shop.http.post(
        url,
        data=form | {"refresh_token": "other"},
        auth=("sim-ebay-client-1", "sim-ebay-secret-1"),
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")


def test_ebay_offer_by_sku_and_inventory_paging(shop: SimClient) -> None:
    headers = ebay_headers(shop)
    truth = shop.control("GET", "/ebay/ebay-1/offers")["offers"]
    assert len(truth) == 225
    sku = truth[0]["sku"]
    one = shop.http.get("/sell/inventory/v1/offer", params={"sku": sku}, headers=headers)
    assert one.status_code == 200
    offer = one.json()["offers"][0]
    assert offer["offerId"] == truth[0]["offerId"]
    assert isinstance(offer["pricingSummary"]["price"]["value"], str)
    assert offer["status"] == "PUBLISHED"
    unknown = shop.http.get("/sell/inventory/v1/offer", params={"sku": "B0NONE"}, headers=headers)
    assert unknown.status_code == 404
    error = unknown.json()["errors"][0]
    assert set(error) >= {"errorId", "domain", "category", "message"}
    seen: list[str] = []
    path = "/sell/inventory/v1/inventory_item"
    params: dict[str, Any] = {"limit": 200, "offset": 0}
    while True:
        page = shop.http.get(path, params=params, headers=headers).json()
        assert page["total"] == 225
        seen += [item["sku"] for item in page["inventoryItems"]]
        quantity = page["inventoryItems"][0]["availability"]["shipToLocationAvailability"]
        assert quantity["quantity"] in (0, 1)
        if "next" not in page:
            break
        params["offset"] += 200
    assert seen == [o["sku"] for o in truth]
    too_big = shop.http.get(path, params={"limit": 201}, headers=headers)
    assert too_big.status_code == 400


def test_ebay_publish_withdraw_and_quantity_zero(shop: SimClient) -> None:
    headers = ebay_headers(shop)
    offer = next(
        o for o in shop.control("GET", "/ebay/ebay-1/offers")["offers"] if o["availableQuantity"]
    )
    base = f"/sell/inventory/v1/offer/{offer['offerId']}"
    withdrawn = shop.http.post(f"{base}/withdraw", headers=headers)
    assert withdrawn.status_code == 200
    assert shop.http.get(base, headers=headers).json()["status"] == "UNPUBLISHED"
    published = shop.http.post(f"{base}/publish", headers=headers)
    assert published.json()["listingId"]
    assert shop.http.get(base, headers=headers).json()["status"] == "PUBLISHED"
    assert (
        shop.http.post("/sell/inventory/v1/offer/123/publish", headers=headers).status_code == 404
    )

    def set_quantity(quantity: object) -> httpx.Response:
        return shop.http.post(
            "/sell/inventory/v1/bulk_update_price_quantity",
            json={
                "requests": [
                    {
                        "sku": offer["sku"],
                        "offers": [{"offerId": offer["offerId"], "availableQuantity": quantity}],
                    }
                ]
            },
            headers=headers,
        )

    assert set_quantity(0).status_code == 200  # out-of-stock control on by default
    shop.control("PATCH", "/ebay/ebay-1", {"out_of_stock_control": False})
    refused = set_quantity(0)
    assert refused.status_code == 207
    assert refused.json()["responses"][0]["errors"][0]["errorId"] == 25004
    assert set_quantity(-1).json()["responses"][0]["statusCode"] == 400


def test_ebay_price_must_be_a_decimal_string(shop: SimClient) -> None:
    headers = ebay_headers(shop)
    offer = shop.control("GET", "/ebay/ebay-1/offers")["offers"][0]
    for price in (24.99, "24.999", "-1.00", {"value": "1"}, "abc"):
        value = price if not isinstance(price, dict) else price["value"]
        body = {
            "requests": [
                {
                    "sku": offer["sku"],
                    "offers": [
                        {
                            "offerId": offer["offerId"],
                            "price": {
                                "value": value,
                                "currency": "USD" if price != "abc" else "EUR",
                            },
                        }
                    ],
                }
            ]
        }
        response = shop.http.post(
            "/sell/inventory/v1/bulk_update_price_quantity", json=body, headers=headers
        )
        if value == "1":
            assert response.status_code == 200
        else:
            assert response.json()["responses"][0]["errors"][0]["errorId"] == 25003, price
