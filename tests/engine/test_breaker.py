"""The sampled mass-hide breaker, on plain data."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ecsync.channels.protocol import ChannelChange
from ecsync.engine.breaker import HideBreaker
from ecsync.store.journal import JournaledChange

_ids = iter(range(1, 10**9))


def _change(kind: str, account: str = "a") -> JournaledChange:
    change_id = next(_ids)
    return JournaledChange(
        change_id=change_id,
        listing_id=change_id,
        account=account,
        kind=kind,
        priority=0,
        channel_change=ChannelChange(change_id=change_id, item_id=str(change_id), sku="S"),
    )


def test_hides_wait_for_the_sample_then_go_when_few() -> None:
    breaker = HideBreaker(Decimal("0.3"), {"a": 40}, sample=20)
    first = breaker.admit("a", 10, [_change("hide"), _change("price_raise")])
    assert [c.kind for c in first.send] == ["price_raise"] and not first.hold
    second = breaker.admit("a", 10, [_change("hide")])
    assert len(second.send) == 2 and not second.hold  # 2 of 20 sampled: released
    third = breaker.admit("a", 10, [_change("hide")])
    assert len(third.send) == 1  # open: hides stream from now on


def test_a_mass_hide_in_the_sample_holds_every_hide() -> None:
    breaker = HideBreaker(Decimal("0.3"), {"a": 100}, sample=20)
    waiting = breaker.admit("a", 10, [_change("hide") for _ in range(5)])
    assert not waiting.send and not waiting.hold
    verdict = breaker.admit("a", 10, [_change("hide") for _ in range(3)] + [_change("price_cut")])
    assert len(verdict.hold) == 8 and [c.kind for c in verdict.send] == ["price_cut"]
    later = breaker.admit("a", 10, [_change("hide")])
    assert len(later.hold) == 1 and breaker.is_tripped("a")


def test_hides_the_planner_held_trip_the_breaker_and_hold_the_waiting_ones() -> None:
    breaker = HideBreaker(Decimal("0.3"), {"a": 100}, sample=50)
    breaker.admit("a", 10, [_change("hide"), _change("hide")])
    verdict = breaker.admit("a", 10, [], held_hides=30)
    assert len(verdict.hold) == 2 and breaker.is_tripped("a")


def test_small_accounts_decide_when_planning_ends() -> None:
    breaker = HideBreaker(Decimal("0.3"), {"a": 3, "b": 10}, sample=200)
    assert not breaker.admit("a", 2, [_change("hide", "a")]).hold
    assert not breaker.admit("b", 5, [_change("hide", "b")]).send
    verdict = breaker.finish()
    assert [c.account for c in verdict.hold] == ["a"]  # 1 of 2 seen: 50 % > 30 %
    assert [c.account for c in verdict.send] == ["b"]  # 1 of 5 seen: 20 %


@given(
    batches=st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 5)), max_size=15
    ),
    fraction=st.sampled_from([Decimal("0.1"), Decimal("0.3"), Decimal("0.5")]),
)
def test_every_change_is_sent_or_held_exactly_once(
    batches: list[tuple[int, int, int]], fraction: Decimal
) -> None:
    breaker = HideBreaker(fraction, {"a": sum(b[0] for b in batches)}, sample=30)
    given_ids: set[int] = set()
    seen: list[int] = []
    for listed, hides, others in batches:
        changes = [_change("hide") for _ in range(hides)] + [_change("show") for _ in range(others)]
        given_ids |= {c.change_id for c in changes}
        verdict = breaker.admit("a", listed, changes)
        seen += [c.change_id for c in verdict.send + verdict.hold]
    end = breaker.finish()
    seen += [c.change_id for c in end.send + end.hold]
    assert sorted(seen) == sorted(given_ids)
