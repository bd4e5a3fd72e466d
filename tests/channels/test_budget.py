"""Fixed-window call budgets in ``api_usage``, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

from ecsync.channels.budget import DAY, HOUR, JST_OFFSET, CallBudget, Window
from ecsync.store.runner import DbRunner
from tests.channels.conftest import Databases, FakeClock

# 2026-03-01 14:59:30 UTC = 23:59:30 JST: thirty seconds before BASE's day and hour turn.
EVE = datetime(2026, 3, 1, 14, 59, 30, tzinfo=UTC).timestamp()


def _budget(db: DbRunner, clock: FakeClock, hour: int = 3, day: int = 5) -> CallBudget:
    windows = [Window("hour", hour, HOUR), Window("day", day, DAY, JST_OFFSET)]
    return CallBudget(db, "base:shop", windows, clock)


def test_windows_align_to_the_hour_and_to_midnight_jst() -> None:
    hour, day = Window("hour", 1, HOUR), Window("day", 1, DAY, JST_OFFSET)
    assert datetime.fromtimestamp(hour.resets_at(EVE), UTC) == datetime(
        2026, 3, 1, 15, 0, tzinfo=UTC
    )
    assert datetime.fromtimestamp(day.start(EVE), UTC) == datetime(2026, 2, 28, 15, 0, tzinfo=UTC)
    assert datetime.fromtimestamp(day.resets_at(EVE), UTC) == datetime(
        2026, 3, 1, 15, 0, tzinfo=UTC
    )


async def test_calls_stop_at_the_limit_and_resume_when_the_window_turns(db: DbRunner) -> None:
    clock = FakeClock(EVE - 1800)
    budget = _budget(db, clock)
    assert [await budget.take() for _ in range(3)] == [None, None, None]
    assert await budget.take() == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # the hour is spent
    clock.now += 1830  # 15:00 UTC: a new hour and a new JST day
    assert [await budget.take() for _ in range(3)] == [None, None, None]
    assert [(b.name, b.used) for b in await budget.snapshot()] == [("hour", 3), ("day", 3)]


async def test_the_day_limit_holds_across_hours(db: DbRunner) -> None:
    clock = FakeClock(EVE + 60)
    budget = _budget(db, clock, hour=3, day=5)
    for _ in range(3):
        assert await budget.take() is None
    clock.now += HOUR
    assert await budget.take() is None
    assert await budget.take() is None
    assert await budget.take() == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # next JST midnight


async def test_exhaust_marks_the_window_full_for_everyone(dbs: Databases) -> None:
    clock = FakeClock(EVE - 1800)
    first, second = _budget(dbs.runner(), clock), _budget(dbs.runner(), clock)
    assert await first.take() is None
    until = await first.exhaust("hour")
    assert until == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert await second.take() == until
    hour = (await second.snapshot())[0]
    assert (hour.used, hour.limit, hour.resets_at) == (3, 3, until)


async def test_a_lagging_clock_never_resets_a_newer_window(dbs: Databases) -> None:
    ahead, behind = FakeClock(EVE + 31), FakeClock(EVE - 5)  # either side of 15:00
    a, b = _budget(dbs.runner(), ahead), _budget(dbs.runner(), behind)
    assert await a.take() is None
    assert await a.take() is None
    assert await b.take() is None  # counted in the newer window, not a reset of it
    assert await a.take() is not None
