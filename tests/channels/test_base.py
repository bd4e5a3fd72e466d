"""The BASE adapter against the simulator, over real sockets."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ecsync.channels import (
    BaseAdapter,
    ChannelAuthError,
    ChannelChange,
    ChannelUnavailable,
    HttpOptions,
    Outcome,
)
from ecsync.clock import Stop
from ecsync.store.runner import DbRunner
from ecsync.store.schema import Token
from tests.channels.conftest import FAST, Databases, FakeClock, Sim

OpenBase = Callable[..., BaseAdapter]
ONE_AT_A_TIME = replace(FAST, concurrency=1)


def _items(sim: Sim) -> list[dict[str, Any]]:
    return sorted(sim.base_items().values(), key=lambda item: item["item_id"])


def _price_change(change_id: int, item: dict[str, Any], **fields: Any) -> ChannelChange:
    fields.setdefault("price", Decimal(item["price"] + 10))
    return ChannelChange(change_id, str(item["item_id"]), item["identifier"], **fields)


async def _token(db: DbRunner, owner: str = "base-1") -> Token | None:
    return await db.run(lambda session: session.get(Token, owner))


def _next_hour(now: float) -> datetime:
    return datetime.fromtimestamp((math.floor(now / 3600) + 1) * 3600, UTC)


async def test_read_items_pages_through_every_item(sim: Sim, open_base: OpenBase) -> None:
    adapter = open_base()
    items = [item async for item in adapter.read_items()]
    truth = sim.base_items()
    assert len(items) == len(truth) == 300
    assert {item.item_id for item in items} == set(truth)
    sample = items[123]
    raw = truth[sample.item_id]
    assert sample.sku == raw["identifier"]
    assert sample.price == Decimal(raw["price"])
    assert sample.visible is bool(raw["visible"])
    assert sample.quantity == raw["stock"]
    assert adapter.calls == 4  # 100 + 100 + 100 + an empty page: never one call per item
    assert sim.stats()["base"]["base-1"]["reads"] == 4


async def test_apply_sets_price_visibility_and_stock_in_one_call_per_item(
    sim: Sim, open_base: OpenBase
) -> None:
    items = _items(sim)[:6]
    changes = [
        _price_change(1, items[0]),
        _price_change(2, items[1], visible=False),
        _price_change(3, items[2], price=None, visible=False),
        _price_change(4, items[3], visible=True, quantity=5),
        _price_change(5, items[4], price=None, quantity=0),
        _price_change(6, items[5], price=Decimal(1980)),
    ]
    adapter = open_base()
    results = await adapter.apply(changes)

    assert [r.change_id for r in results] == [1, 2, 3, 4, 5, 6]
    assert all(r.outcome is Outcome.APPLIED for r in results), results
    truth = sim.base_items()
    for change, result in zip(changes, results, strict=True):
        item = truth[change.item_id]
        if change.price is not None:
            assert item["price"] == int(change.price)
        if change.visible is not None:
            assert item["visible"] == int(change.visible)
        if change.quantity is not None:
            assert item["stock"] == change.quantity
        assert result.confirmed is not None
        assert result.confirmed.price == Decimal(item["price"])
        assert result.confirmed.visible is bool(item["visible"])
    # One edit per item, plus one read of each item whose stock changes: before sending a
    # stock, the adapter must know whether the item keeps it in variations (a read of the
    # account earlier in the run tells it for free).
    assert adapter.calls == 6 + 2
    assert sim.stats()["base"]["base-1"]["writes"] == 6
    assert sim.stats()["auth"]["base"] == 1


async def test_change_without_fields_costs_no_call(open_base: OpenBase, sim: Sim) -> None:
    item = _items(sim)[0]
    adapter = open_base()
    [result] = await adapter.apply([ChannelChange(1, str(item["item_id"]), item["identifier"])])
    assert result.outcome is Outcome.APPLIED
    assert adapter.calls == 0


async def test_rotated_refresh_token_is_saved_and_used_by_a_new_instance(
    sim: Sim, dbs: Databases, db: DbRunner, open_base: OpenBase
) -> None:
    seed = sim.settings.account("base-1").refresh_token.get_secret_value()
    items = _items(sim)
    first = open_base()
    assert (await first.apply([_price_change(1, items[0])]))[0].outcome is Outcome.APPLIED
    stored = await _token(db)
    assert stored is not None and stored.refresh_token and stored.access_token
    assert stored.refresh_token != seed
    # BASE retired the seed the moment it rotated: only the stored token opens the account.
    assert _refresh_status(sim, seed) == (400, "invalid_request")

    sim.faults({"revoke_tokens": True})  # force the next process to refresh
    other_process = dbs.runner()
    second = open_base(runner=other_process)
    assert (await second.apply([_price_change(2, items[1])]))[0].outcome is Outcome.APPLIED
    assert second.token_refreshes == 1
    again = await _token(other_process)
    assert again is not None and again.refresh_token not in (seed, stored.refresh_token)
    assert _refresh_status(sim, stored.refresh_token) == (400, "invalid_request")
    assert sim.stats()["auth"]["base"] == 4  # two refreshes and this test's two probes


def _refresh_status(sim: Sim, refresh_token: str) -> tuple[int, str]:
    account = sim.settings.account("base-1")
    response = sim.http.post(
        "/1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": account.client_id,
            "client_secret": account.client_secret.get_secret_value(),
            "refresh_token": refresh_token,
            "redirect_uri": account.redirect_uri,
        },
    )
    return response.status_code, response.json().get("error", "")


async def test_new_tokens_are_committed_before_the_first_call_uses_them(
    sim: Sim, db: DbRunner, open_base: OpenBase
) -> None:
    adapter = open_base()
    seen: list[bool] = []

    async def check(request: httpx.Request) -> None:
        if request.url.path.startswith("/1/items"):
            bearer = request.headers["authorization"].removeprefix("Bearer ")
            stored = await _token(db)
            seen.append(stored is not None and stored.access_token == bearer)

    adapter._http.event_hooks["request"].append(check)
    await adapter.apply([_price_change(1, _items(sim)[0])])
    sim.faults({"revoke_tokens": True})
    await adapter.apply([_price_change(2, _items(sim)[1])])
    # Every bearer sent was already committed, the refreshed one included (the revoked
    # token was sent once more, refused, then replaced).
    assert seen == [True, True, True]
    assert adapter.token_refreshes == 2


async def test_revoked_and_expired_tokens_are_refreshed_transparently(
    sim: Sim, open_base: OpenBase
) -> None:
    items = _items(sim)
    clock = FakeClock()
    adapter = open_base(clock=clock)
    assert (await adapter.apply([_price_change(1, items[0])]))[0].outcome is Outcome.APPLIED

    sim.faults({"revoke_tokens": True})
    assert (await adapter.apply([_price_change(2, items[1])]))[0].outcome is Outcome.APPLIED

    sim.advance(3700)  # BASE's clock says the token expired; ours does not know yet
    assert (await adapter.apply([_price_change(3, items[2])]))[0].outcome is Outcome.APPLIED

    clock.now += 3700  # ours knows: refreshed before the call, no refused call at all
    sim.advance(3700)
    before = sim.stats()["base"]["base-1"]
    assert (await adapter.apply([_price_change(4, items[3])]))[0].outcome is Outcome.APPLIED
    after = sim.stats()["base"]["base-1"]
    assert adapter.token_refreshes == 4
    assert after["writes"] == before["writes"] + 1
    assert adapter.calls == 6  # 4 edits + 2 refused by token (retried once each)


async def test_refused_refresh_token_raises_auth_error_naming_the_account(
    sim: Sim, open_base: OpenBase
) -> None:
    account = sim.account("base-1", refresh_token=SecretStr("revoked-long-ago"))
    adapter = open_base(account)
    with pytest.raises(ChannelAuthError, match="base-1"):
        await adapter.apply([_price_change(1, _items(sim)[0])])
    with pytest.raises(ChannelAuthError, match="re-authorise"):
        [item async for item in adapter.read_items()]
    assert adapter.calls == 0


async def test_refused_stored_refresh_token_falls_back_to_the_config_once(
    sim: Sim, db: DbRunner, open_base: OpenBase
) -> None:
    def plant(session: Any) -> None:
        session.add(
            Token(
                owner="base-1",
                access_token="expired",
                refresh_token="stale-rotated",
                expires_at=datetime(2020, 1, 1, tzinfo=UTC),
                updated_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
        )

    await db.run(plant)
    adapter = open_base()
    assert (await adapter.apply([_price_change(1, _items(sim)[0])]))[0].outcome is Outcome.APPLIED
    stored = await _token(db)
    assert stored is not None and stored.refresh_token not in ("stale-rotated", None)
    assert sim.stats()["auth"]["base"] == 2  # the stale one refused, the config one accepted


async def test_hour_api_limit_defers_the_rest_until_the_next_window(
    sim: Sim, dbs: Databases, open_base: OpenBase
) -> None:
    sim.freeze()
    sim.send("PATCH", "/_sim/base/base-1", {"hourly_limit": 3})
    items = _items(sim)[:6]
    changes = [_price_change(i, item) for i, item in enumerate(items, 1)]
    clock = FakeClock()
    adapter = open_base(clock=clock, options=ONE_AT_A_TIME)
    results = await adapter.apply(changes)

    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3 + [Outcome.DEFERRED] * 3
    for result in results[3:]:
        assert result.retry_after == _next_hour(clock.now)
        assert "hour_api_limit" in (result.error or "")
    assert sim.stats()["base"]["base-1"]["limit_errors"] == 1  # the rest were not even tried
    truth = sim.base_items()
    for change in changes[3:]:  # nothing half-done: the deferred items are untouched
        assert truth[change.item_id]["price"] == int(change.price or 0) - 10

    # Another process on the same database respects the spent window without asking BASE.
    other = open_base(runner=dbs.runner(), clock=clock)
    [result] = await other.apply(changes[3:4])
    assert result.outcome is Outcome.DEFERRED and other.calls == 0

    sim.advance(3600)
    clock.now += 3600
    results = await adapter.apply(changes[3:])
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3
    truth = sim.base_items()
    assert all(truth[c.item_id]["price"] == int(c.price or 0) for c in changes)


async def test_configured_hourly_limit_stops_before_base_refuses(
    sim: Sim, open_base: OpenBase
) -> None:
    clock = FakeClock()
    adapter = open_base(sim.account("base-1", hourly_call_limit=4), clock=clock)
    changes = [_price_change(i, item) for i, item in enumerate(_items(sim)[:6], 1)]
    results = await adapter.apply(changes)
    assert sum(r.outcome is Outcome.APPLIED for r in results) == 4
    deferred = [r for r in results if r.outcome is Outcome.DEFERRED]
    assert len(deferred) == 2
    assert all(r.retry_after == _next_hour(clock.now) for r in deferred)
    assert adapter.calls == 4
    assert sim.stats()["base"]["base-1"]["limit_errors"] == 0
    [hour, day] = await adapter.budgets()
    assert (hour.name, hour.limit, hour.used) == ("hour", 4, 4)
    assert (day.name, day.limit, day.used) == ("day", 100_000, 4)


async def test_two_adapters_on_one_database_share_the_budget(
    sim: Sim, dbs: Databases, open_base: OpenBase
) -> None:
    account = sim.account("base-1", hourly_call_limit=6)
    clock = FakeClock()
    first = open_base(account, clock=clock)
    second = open_base(account, runner=dbs.runner(), clock=clock)
    items = _items(sim)
    a = await first.apply([_price_change(i, items[i]) for i in range(4)])
    b = await second.apply([_price_change(i, items[i]) for i in range(4, 8)])
    assert all(r.outcome is Outcome.APPLIED for r in a)
    assert [r.outcome for r in b].count(Outcome.APPLIED) == 2
    assert [r.outcome for r in b].count(Outcome.DEFERRED) == 2
    assert first.calls + second.calls == 6
    assert sim.stats()["auth"]["base"] == 1  # the second process reused the stored token
    for adapter in (first, second):
        hour = (await adapter.budgets())[0]
        assert hour.used == hour.limit == 6


async def test_deleted_item_is_gone(sim: Sim, open_base: OpenBase) -> None:
    item = _items(sim)[0]
    sim.send("DELETE", f"/_sim/base/base-1/items/{item['item_id']}")
    [result] = await open_base().apply([_price_change(1, item)])
    assert result.outcome is Outcome.GONE
    assert "bad_item_id" in (result.error or "")


async def test_validation_error_fails_with_bases_description(sim: Sim, open_base: OpenBase) -> None:
    items = _items(sim)
    adapter = open_base()
    results = await adapter.apply(
        [
            _price_change(1, items[0], price=Decimal(0)),
            _price_change(2, items[1], price=Decimal("1980.5")),  # refused before any call
            _price_change(3, items[2]),
        ]
    )
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED, Outcome.APPLIED]
    assert "validation_error" in (results[0].error or "")
    assert "価格" in (results[0].error or "")  # BASE's Japanese description is kept
    assert "whole yen" in (results[1].error or "")
    assert adapter.calls == 2


async def test_server_errors_are_retried_then_deferred(sim: Sim, open_base: OpenBase) -> None:
    items = _items(sim)
    sim.faults({"base": {"error500": 1.0}})
    adapter = open_base(options=ONE_AT_A_TIME)
    results = await adapter.apply([_price_change(i, items[i]) for i in range(5)])
    assert all(r.outcome is Outcome.DEFERRED for r in results)
    assert "HTTP 500" in (results[0].error or "")
    # 1 + 2 retries for each of the first 3, then the breaker defers the rest untried.
    assert adapter.calls == 9
    assert "keeps failing" in (results[4].error or "")

    sim.faults({"base": {"error500": 0.3}})
    patient = open_base(options=replace(FAST, max_retries=8))
    results = await patient.apply([_price_change(i, items[i]) for i in range(5)])
    assert all(r.outcome is Outcome.APPLIED for r in results), results
    assert patient.calls > 5


async def test_malformed_answers_make_a_read_fail_loudly(sim: Sim, open_base: OpenBase) -> None:
    sim.faults({"base": {"malformed": 1.0}})
    adapter = open_base()
    with pytest.raises(ChannelUnavailable, match="malformed"):
        [item async for item in adapter.read_items()]
    assert adapter.calls == 3


async def test_a_hung_call_times_out_and_a_stop_ends_it_at_once(
    sim: Sim, open_base: OpenBase
) -> None:
    item = _items(sim)[0]
    sim.faults({"base": {"hang": 1.0}})
    quick = open_base(options=HttpOptions(total_timeout_s=0.2, max_retries=1, retry_base_s=0.01))
    [result] = await quick.apply([_price_change(1, item)])
    assert result.outcome is Outcome.DEFERRED
    assert "no answer within 0.2 s" in (result.error or "")

    stop = Stop()
    slow = open_base(stop=stop, options=HttpOptions(total_timeout_s=30))
    asyncio.get_running_loop().call_later(0.2, stop.set, "SIGTERM")
    started = time.monotonic()
    results = await slow.apply([_price_change(i, _items(sim)[i]) for i in range(3)])
    assert time.monotonic() - started < 10  # not the 30 s timeout; loose for a busy CPU
    assert all(r.outcome is Outcome.DEFERRED for r in results)
    assert all("stopped" in (r.error or "") for r in results)
