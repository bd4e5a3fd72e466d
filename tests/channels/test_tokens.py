"""Token sharing: parallel calls and parallel processes refresh a rotating token once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from ecsync.channels import BaseAdapter, ChannelChange, Outcome
from tests.channels.conftest import Databases, Sim

OpenBase = Callable[..., BaseAdapter]


def _changes(sim: Sim, start: int, count: int) -> list[ChannelChange]:
    items = sorted(sim.base_items().values(), key=lambda item: item["item_id"])
    return [
        ChannelChange(
            i, str(item["item_id"]), item["identifier"], price=Decimal(item["price"] + 10)
        )
        for i, item in enumerate(items[start : start + count], start)
    ]


async def test_parallel_calls_share_one_refresh(sim: Sim, open_base: OpenBase) -> None:
    adapter = open_base()
    await adapter.apply(_changes(sim, 0, 1))
    sim.faults({"revoke_tokens": True})
    results = await adapter.apply(_changes(sim, 1, 8))  # four in flight meet the refusal
    assert all(r.outcome is Outcome.APPLIED for r in results)
    assert adapter.token_refreshes == 2
    assert sim.stats()["auth"]["base"] == 2


async def test_two_processes_refreshing_at_once_do_not_lock_each_other_out(
    sim: Sim, dbs: Databases, open_base: OpenBase
) -> None:
    """Without the lease both would refresh, the loser presenting the refresh token the
    winner just retired: rescued only if the winner's new one is already saved, otherwise
    reported as an account that needs re-authorising."""
    await open_base().apply(_changes(sim, 0, 1))
    sim.faults({"revoke_tokens": True})
    first, second = open_base(runner=dbs.runner()), open_base(runner=dbs.runner())
    a, b = await asyncio.gather(first.apply(_changes(sim, 1, 4)), second.apply(_changes(sim, 5, 4)))
    assert all(r.outcome is Outcome.APPLIED for r in a + b)
    assert first.token_refreshes + second.token_refreshes == 1
    assert sim.stats()["auth"]["base"] == 2
