"""BASE as its API documents say it behaves: variations, uneditable items, scopes, the
token endpoint's codes, the detail endpoint's codes and the per-item read fault."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.sim.conftest import SimClient, SimFactory

CALLBACK = "http://127.0.0.1/callback"
FORM = {
    "grant_type": "refresh_token",
    "client_id": "sim-base-client-1",
    "client_secret": "sim-base-secret-1",
    "refresh_token": "sim-base-refresh-1",
    "redirect_uri": CALLBACK,
}


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


def _headers(sim: SimClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.base_token()}"}


def _item(sim: SimClient, index: int = 0) -> dict[str, Any]:
    return sim.control("GET", "/base/base-1/items")["items"][index]  # type: ignore[no-any-return]


def _with_variations(sim: SimClient, item_id: int, *stocks: int) -> dict[str, Any]:
    variations = [
        {"variation": f"v{n}", "variation_stock": stock, "variation_identifier": f"code-{n}"}
        for n, stock in enumerate(stocks)
    ]
    patched = sim.control("PATCH", f"/base/base-1/items/{item_id}", {"variations": variations})
    return patched["item"]  # type: ignore[no-any-return]


# --- the token endpoint -----------------------------------------------------------------


def test_token_endpoint_answers_with_bases_codes(sim: SimClient) -> None:
    post = sim.http.post
    assert _error(sim.http.get("/1/oauth/token", params=FORM))[:2] == (400, "access_denied")
    assert _error(post("/1/oauth/token", data=FORM | {"grant_type": "password"})) == (
        400,
        "invalid_request",
        "不正なgrant_typeです。",
    )
    no_secret = {k: v for k, v in FORM.items() if k != "client_secret"}
    assert _error(post("/1/oauth/token", data=no_secret))[2] == (
        "client_idもしくはclient_secretがありません。"
    )
    assert _error(post("/1/oauth/token", data=FORM | {"client_id": "nobody"}))[1] == (
        "unauthorized_client"
    )
    assert _error(post("/1/oauth/token", data=FORM | {"client_secret": "wrong"}))[1] == (
        "unauthorized_client"
    )
    no_redirect = {k: v for k, v in FORM.items() if k != "redirect_uri"}
    assert _error(post("/1/oauth/token", data=no_redirect))[:2] == (400, "invalid_request")
    assert _error(post("/1/oauth/token", data=FORM | {"refresh_token": "stolen"})) == (
        400,
        "invalid_request",
        "不正なリフレッシュトークンです。",
    )
    # Nothing above used the refresh token up: client credentials by HTTP Basic work too.
    basic = base64.b64encode(b"sim-base-client-1:sim-base-secret-1").decode()
    form = {k: v for k, v in FORM.items() if k not in ("client_id", "client_secret")}
    granted = post("/1/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"})
    assert granted.status_code == 200, granted.text


def test_a_suspended_client_is_unauthorized(sim: SimClient) -> None:
    sim.control("PATCH", "/base/base-1", {"suspended": True})
    assert _error(sim.http.post("/1/oauth/token", data=FORM)) == (
        400,
        "unauthorized_client",
        "停止中のクライアントです。",
    )
    sim.control("PATCH", "/base/base-1", {"suspended": False})
    assert sim.http.post("/1/oauth/token", data=FORM).status_code == 200


# --- authorize and scopes ---------------------------------------------------------------


def _authorize(sim: SimClient, **params: str) -> httpx.Response:
    query = {"response_type": "code", "client_id": "sim-base-client-1", "state": "s1"} | params
    return sim.http.get("/1/oauth/authorize", params=query)


def _granted_token(sim: SimClient, scope: str) -> str:
    redirect = _authorize(sim, redirect_uri=CALLBACK, scope=scope)
    code = httpx.URL(redirect.headers["location"]).params["code"]
    form = FORM | {"grant_type": "authorization_code", "code": code}
    form.pop("refresh_token")
    response = sim.http.post("/1/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_authorize_requires_redirect_uri_and_may_be_refused(sim: SimClient) -> None:
    assert _error(_authorize(sim))[:2] == (400, "invalid_request")
    assert _error(_authorize(sim, redirect_uri="http://evil.example/cb"))[:2] == (
        400,
        "invalid_request",
    )
    sim.control("PATCH", "/base/base-1", {"deny_authorization": True})
    refused = _authorize(sim, redirect_uri=CALLBACK)
    assert refused.status_code == 302
    location = httpx.URL(refused.headers["location"])
    assert dict(location.params) == {"error": "access_denied", "state": "s1"}


def test_calls_need_the_scope(sim: SimClient) -> None:
    item = _item(sim)
    users_only = {"Authorization": f"Bearer {_granted_token(sim, 'read_users')}"}
    assert _error(sim.http.get("/1/items", headers=users_only))[:2] == (400, "invalid_scope")
    read_only = {"Authorization": f"Bearer {_granted_token(sim, 'read_items')}"}
    assert sim.http.get("/1/items", headers=read_only).status_code == 200
    edit = sim.http.post(
        "/1/items/edit", data={"item_id": item["item_id"], "price": "999"}, headers=read_only
    )
    assert _error(edit)[:2] == (400, "invalid_scope")
    assert _item(sim)["price"] == item["price"]


# --- variations -------------------------------------------------------------------------


def test_variation_stock_is_edited_per_variation_and_the_item_stock_is_the_sum(
    sim: SimClient,
) -> None:
    item = _with_variations(sim, _item(sim)["item_id"], 1, 4)
    assert item["stock"] == 5
    first, second = item["variations"]
    headers = _headers(sim)
    edited = sim.http.post(
        "/1/items/edit",
        data={
            "item_id": item["item_id"],
            "visible": "1",
            "variation_id[0]": str(second["variation_id"]),
            "variation_stock[0]": "7",
        },
        headers=headers,
    )
    assert edited.status_code == 200, edited.text
    seen = edited.json()["item"]
    assert [v["variation_stock"] for v in seen["variations"]] == [1, 7]
    assert seen["stock"] == 8
    stock_only = sim.http.post(
        "/1/items/edit_stock",
        data={
            "item_id": item["item_id"],
            "variation_id": str(first["variation_id"]),
            "variation_stock": "0",
        },
        headers=headers,
    )
    assert stock_only.json()["item"]["stock"] == 7
    added = sim.http.post(
        "/1/items/edit",
        data={
            "item_id": item["item_id"],
            "variation_id[0]": "",
            "variation[0]": "緑",
            "variation_stock[0]": "2",
        },
        headers=headers,
    )
    assert [v["variation"] for v in added.json()["item"]["variations"]][-1] == "緑"
    assert added.json()["item"]["stock"] == 9


@pytest.mark.parametrize(
    ("path", "fields", "code"),
    [
        ("/1/items/edit", {"stock": "3"}, "validation_error"),  # our assumption, documented
        ("/1/items/edit_stock", {"stock": "3"}, "validation_error"),
        ("/1/items/edit", {"variation_id[0]": "42", "variation_stock[0]": "1"}, "bad_variation_id"),
        ("/1/items/edit_stock", {"variation_id": "42", "variation_stock": "1"}, "bad_variation_id"),
        (
            "/1/items/edit",
            {"variation_id[0]": "{vid}", "variation_stock[0]": "x"},
            "validation_error",
        ),
        ("/1/items/edit_stock", {"variation_id": "{vid}"}, "bad_params"),
    ],
)
def test_variation_edits_are_validated_all_or_nothing(
    sim: SimClient, path: str, fields: dict[str, str], code: str
) -> None:
    item = _with_variations(sim, _item(sim)["item_id"], 1, 4)
    vid = str(item["variations"][0]["variation_id"])
    form = {"item_id": item["item_id"], "price": "1234"} | {
        key: value.replace("{vid}", vid) for key, value in fields.items()
    }
    assert _error(sim.http.post(path, data=form, headers=_headers(sim)))[:2] == (400, code)
    assert sim.control("GET", f"/base/base-1/items/{item['item_id']}")["item"] == item


def test_edit_stock_without_stock_is_bad_params(sim: SimClient) -> None:
    item = _item(sim)
    response = sim.http.post(
        "/1/items/edit_stock", data={"item_id": item["item_id"]}, headers=_headers(sim)
    )
    assert _error(response)[:2] == (400, "bad_params")


def test_an_uneditable_item_answers_invalid_request_with_bases_reason(sim: SimClient) -> None:
    item = _item(sim, 3)
    sim.control("PATCH", f"/base/base-1/items/{item['item_id']}", {"uneditable": "digital"})
    headers = _headers(sim)
    for path, field in (("/1/items/edit", "price"), ("/1/items/edit_stock", "stock")):
        response = sim.http.post(
            path, data={"item_id": item["item_id"], field: "5"}, headers=headers
        )
        assert _error(response) == (
            400,
            "invalid_request",
            "デジタルコンテンツの商品は編集できません。",
        )
    assert (
        sim.control("GET", f"/base/base-1/items/{item['item_id']}")["item"]["price"]
        == (item["price"])
    )
    # The token was fine all along: reads still work with it.
    assert sim.http.get(f"/1/items/detail/{item['item_id']}", headers=headers).status_code == 200


# --- seeding ----------------------------------------------------------------------------


def test_seeded_variations_and_uneditable_items(make_sim: SimFactory) -> None:
    options = {"products": 200, "seed": 5, "base_variations": 0.3, "base_uneditable": 4}
    items = make_sim(**options).control("GET", "/base/base-1/items")["items"]
    again = make_sim(**options).control("GET", "/base/base-1/items")["items"]
    assert [(i["item_id"], i["variations"], i.get("uneditable")) for i in items] == [
        (i["item_id"], i["variations"], i.get("uneditable")) for i in again
    ]
    with_variations = [i for i in items if i["variations"]]
    assert 30 <= len(with_variations) <= 90  # 30 % of 200, loosely
    for item in with_variations:
        assert item["stock"] == sum(v["variation_stock"] for v in item["variations"])
        codes = [v["variation_identifier"] for v in item["variations"]]
        assert codes.count(item["identifier"]) <= 1
    shapes = {
        "only" if len(i["variations"]) == 1 else "coded" if i["identifier"] in codes else "uncoded"
        for i in with_variations
        for codes in [[v["variation_identifier"] for v in i["variations"]]]
    }
    assert shapes == {"only", "coded", "uncoded"}
    assert sorted(i["uneditable"] for i in items if "uneditable" in i) == [
        "clubt",
        "clubt",
        "digital",
        "digital",
    ]
    plain = make_sim(products=200, seed=5).control("GET", "/base/base-1/items")["items"]
    assert not any(i["variations"] or "uneditable" in i for i in plain)  # opt-in


# --- reading one item, and the per-item read fault --------------------------------------


def test_item_malformed_garbles_the_same_items_and_their_detail_is_not_no_item(
    sim: SimClient,
) -> None:
    sim.faults({"base": {"item_malformed": 0.2}})
    headers = _headers(sim)

    def page() -> list[dict[str, Any]]:
        response = sim.http.get("/1/items", params={"limit": 60}, headers=headers)
        assert response.status_code == 200
        return response.json()["items"]  # type: ignore[no-any-return]

    first, second = page(), page()
    garbled = [i["item_id"] for i in first if not isinstance(i["price"], int)]
    assert garbled == [i["item_id"] for i in second if not isinstance(i["price"], int)]
    assert 3 <= len(garbled) <= 25  # 20 % of 60, loosely
    for item in first:
        detail = sim.http.get(f"/1/items/detail/{item['item_id']}", headers=headers)
        if item["item_id"] in garbled:
            assert detail.status_code == 500  # an error, never "no such item"
        else:
            assert detail.status_code == 200
            assert detail.json()["item"]["price"] == item["price"]
    sim.faults({})
    assert all(isinstance(i["price"], int) for i in page())


def test_item_malformed_is_accepted_from_the_command_line_spec(make_sim: SimFactory) -> None:
    sim = make_sim(faults="base.item_malformed=1")
    assert sim.control("GET", "/faults")["base"]["item_malformed"] == 1.0
    page = sim.http.get("/1/items", params={"limit": 5}, headers=_headers(sim)).json()["items"]
    assert [i["price"] for i in page] == ["価格を取得できません"] * 5
