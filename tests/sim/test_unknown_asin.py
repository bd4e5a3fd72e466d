"""The control API can make one ASIN unknown to Amazon: its offers answer InvalidInput."""

from __future__ import annotations

from tests.sim.conftest import JP, SimClient


def test_an_asin_made_unknown_answers_invalid_input_beside_its_neighbours(sim: SimClient) -> None:
    first, second, third = sim.asins(3)
    assert sim.control("PUT", f"/amazon/{second}", {"unknown": True})["unknown"] is True
    token = sim.amazon_token()
    response = sim.batch(token, [first, second, third])
    assert response.status_code == 200
    entries = response.json()["responses"]
    assert [e["status"]["statusCode"] for e in entries] == [200, 400, 200]
    (error,) = entries[1]["body"]["errors"]
    assert error["code"] == "InvalidInput"
    assert second in error["message"] and JP in error["message"]
    assert entries[1]["request"]["Asin"] == second

    single = sim.http.get(
        f"/products/pricing/v0/items/{second}/offers",
        params={"MarketplaceId": JP, "ItemCondition": "New"},
        headers={"x-amz-access-token": token},
    )
    assert single.status_code == 400 and single.json()["errors"][0]["code"] == "InvalidInput"

    assert sim.control("PUT", f"/amazon/{second}", {"unknown": False})["unknown"] is False
    sim.advance(60)  # the next batch's rate slot (0.1 request/s)
    again = sim.batch(sim.amazon_token(), [second]).json()["responses"]
    assert again[0]["status"]["statusCode"] == 200


def test_the_unknown_switch_is_checked(sim: SimClient) -> None:
    asin = sim.asins(1)[0]
    for body in ({"unknown": "yes"}, {"unknown": True, "out_of_stock": True}):
        response = sim.http.put(f"/_sim/amazon/{asin}", json=body)
        assert response.status_code == 400 and "unknown" in response.text
    assert sim.control("GET", f"/amazon/{asin}")["unknown"] is False
