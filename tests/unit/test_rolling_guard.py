"""Continuous mode's mass-hide guard on plain data: hides over a rolling time window.

Every expected figure is worked out by hand from the rule as the issue states it (hides asked
for in the last window, held ones included, plus this batch's; trip when that is at least
``min_hides`` and over ``fraction`` x the account's listed items), never by the guard.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ecsync.config import AccountSettings, GuardSettings
from ecsync.domain.guards import HideVerdict, RollingHideGuard
from ecsync.domain.model import ListingState
from ecsync.domain.plan import ChangeKind, ChangeStatus, PlanItem, plan_account

D = Decimal
T0 = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MIN = timedelta(minutes=1)


def _guard(
    listed: int, recent: list[datetime] | None = None, min_hides: int = 5
) -> RollingHideGuard[str]:
    return RollingHideGuard(D("0.05"), min_hides, listed, HOUR, recent=recent or [])


def test_the_defaults_are_one_hour_and_five_percent() -> None:
    guards = GuardSettings()
    assert guards.window == HOUR
    assert guards.window_hide_fraction == D("0.05")
    assert guards.max_hide_fraction == D("0.3")  # sweep mode's, unchanged


def test_hides_go_at_once_and_never_wait() -> None:
    guard = _guard(1000)  # limit: more than 50 hides in an hour
    guard.at(T0)
    assert guard.judge(20, 1) is HideVerdict.SEND
    assert guard.route(["a"]).send == ["a"]
    assert guard.finish().send == [] and guard.finish().hold == []
    assert not guard.tripped


def test_hides_of_the_last_window_count_and_older_ones_do_not() -> None:
    # 100 listed: 5 % is 5, so the 6th hide within an hour trips (and 6 >= min_hides 5).
    recent = [T0 - 90 * MIN, T0 - 50 * MIN, T0 - 40 * MIN, T0 - 30 * MIN]  # 3 in the window
    guard = _guard(100, recent)
    guard.at(T0)
    assert guard.in_window == 3
    assert guard.judge(20, 2) is HideVerdict.SEND  # 3 + 2 = 5: not over 5
    assert guard.route(["a", "b"]).send == ["a", "b"]
    assert guard.judge(20, 1) is HideVerdict.HOLD  # 6 > 5
    assert guard.route(["c"]).hold == ["c"]
    assert guard.tripped
    assert "6 hides of 100 listed items within 1 h" in guard.reason()


def test_once_tripped_every_hide_is_held_until_the_window_falls_back() -> None:
    recent = [T0 - 50 * MIN] * 3
    guard = _guard(100, recent)
    guard.at(T0)
    assert guard.judge(20, 3) is HideVerdict.HOLD  # 3 + 3 = 6 > 5
    guard.at(T0 + 5 * MIN)
    assert guard.judge(20, 1) is HideVerdict.HOLD  # 6 held/sent in the window + 1
    # At T0 + 11 min the three hides of T0 - 50 min are older than the hour: 3 + 1 = 4 left.
    guard.at(T0 + 11 * MIN)
    assert guard.in_window == 4
    assert guard.judge(20, 1) is HideVerdict.SEND  # 5: not over
    assert guard.judge(20, 1) is HideVerdict.HOLD  # 6 again
    assert guard.tripped  # reported for the whole reporting window
    assert "6 hides of 100" in guard.reason()  # the first trip's figures


def test_min_hides_keeps_a_small_shop_from_tripping_on_a_handful() -> None:
    guard = _guard(20)  # 5 % of 20 is 1: min_hides 5 decides
    guard.at(T0)
    assert guard.judge(20, 4) is HideVerdict.SEND
    assert guard.judge(20, 1) is HideVerdict.HOLD  # 5 >= 5 and 5 > 1


def test_an_upstream_fault_gets_at_most_the_window_fraction_through() -> None:
    # 16,000 listings, every ASIN suddenly without offers, planned 20 a batch a second: the
    # sweep's 30 % would let 4,800 through; 5 % is 800 (16,000 x 5 / 100).
    guard = _guard(16_000)
    sent = held = 0
    for second in range(800):
        guard.at(T0 + timedelta(seconds=second))
        if guard.judge(20, 20) is HideVerdict.SEND:
            sent += 20
        else:
            held += 20
    assert sent == 800 and held == 16_000 - 800
    assert guard.tripped


def test_a_plan_with_the_rolling_guard_holds_the_batch_hides() -> None:
    account = AccountSettings(name="base-1", platform="base")
    items = [
        PlanItem(
            listing_id=i,
            confirmed=ListingState(D(1000), True, 1),
            desired=ListingState(D(1000), False, 1),
            reason="sold out",
        )
        for i in range(1, 7)
    ]
    guard = _guard(100, [T0 - 10 * MIN] * 2)
    guard.at(T0)
    plan = plan_account(items[:3], account, GuardSettings(), hide_guard=guard)  # 2 + 3 = 5
    assert [c.status for c in plan.changes] == [ChangeStatus.PLANNED] * 3
    plan = plan_account(items[3:], account, GuardSettings(), hide_guard=guard)  # 5 + 3 = 8
    assert all(c.kind is ChangeKind.HIDE for c in plan.changes)
    assert [c.status for c in plan.changes] == [ChangeStatus.HELD] * 3
    assert plan.report.mass_hide_tripped
    assert all("mass-hide guard: 8 hides of 100" in c.reason for c in plan.changes)


def test_judging_needs_the_time() -> None:
    with pytest.raises(ValueError, match="at\\(now\\)"):
        _guard(100).judge(1, 1)
