"""The rate governor's bucket, on a real database, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsync.amazon.governor import (
    CUT,
    FLOOR,
    IDLE_LATENESS_S,
    MAX_FORFEITS,
    RateGovernor,
    pace,
)
from ecsync.clock import Stop
from ecsync.store.engine import make_engine, session_factory
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.runner import DbRunner

OP = "getItemOffersBatch"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DbRunner]:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade_to_head(engine)
    runner = DbRunner(session_factory(engine))
    yield runner
    runner.close()
    engine.dispose()


def _governor(db: DbRunner, clock: FakeClock) -> RateGovernor:
    return RateGovernor(db, "client:abc", Stop(), clock)


async def _slot(governor: RateGovernor, db: DbRunner, operation: str = OP) -> float:
    slot, _rate = await db.run(lambda s: governor._reserve(s, operation))
    return slot


async def test_burst_then_documented_rate(db: DbRunner) -> None:
    clock = FakeClock()
    governor = _governor(db, clock)
    start = clock.now
    assert await _slot(governor, db) == start  # the burst of one: at once
    interval = 1 / pace(0.1)
    late = IDLE_LATENESS_S  # room after a slot from an idle bucket
    assert await _slot(governor, db) == pytest.approx(start + interval + late)
    assert await _slot(governor, db) == pytest.approx(start + 2 * interval + late)
    clock.now += 100  # idle time refills only up to the burst
    assert await _slot(governor, db) == clock.now
    assert await _slot(governor, db) == pytest.approx(clock.now + interval + late)


async def test_two_processes_share_one_budget(tmp_path: Path) -> None:
    """Two runners on one database file, as two ecsync processes would be."""
    engine_a = make_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    upgrade_to_head(engine_a)
    engine_b = make_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    db_a, db_b = DbRunner(session_factory(engine_a)), DbRunner(session_factory(engine_b))
    clock = FakeClock()
    a, b = _governor(db_a, clock), _governor(db_b, clock)
    interval = 1 / pace(0.1)
    try:
        assert await _slot(a, db_a) == clock.now
        first = clock.now + interval + IDLE_LATENESS_S
        assert await _slot(b, db_b) == pytest.approx(first)
        assert await _slot(a, db_a) == pytest.approx(first + interval)
    finally:
        db_a.close()
        db_b.close()
        engine_a.dispose()
        engine_b.dispose()


async def test_rate_header_retunes_and_throttle_cuts_then_recovers(db: DbRunner) -> None:
    clock = FakeClock()
    governor = _governor(db, clock)
    assert await governor.granted_rate(OP) is None
    await _slot(governor, db)
    await _slot(governor, db)  # reserved 10 s out at the default pace
    await governor.granted(OP, 10.0)  # Amazon says 10 requests/s (a raised plan, or --speed)
    assert await governor.granted_rate(OP) == 10.0
    fast = 1 / pace(10)
    assert await _slot(governor, db) <= clock.now + 2 * fast  # pulled in to the new pace

    clock.now += 10
    new_rate = await governor.throttled(OP)
    assert new_rate == pytest.approx(pace(10) * CUT)
    assert await _slot(governor, db) == pytest.approx(clock.now + 1 / new_rate)  # cooled down

    assert governor.margin_s == pytest.approx(0.04)  # a 429: this machine jitters more
    for _ in range(80):  # slow recovery, capped under the granted rate
        await governor.granted(OP, 10.0)
    clock.now += 100
    first = await _slot(governor, db)
    spacing = await _slot(governor, db) - first - IDLE_LATENESS_S
    assert spacing == pytest.approx(fast, abs=1e-6)  # back to the 20 ms margin
    assert governor.margin_s == pytest.approx(0.02)


async def test_a_429_on_one_operation_does_not_slow_another(db: DbRunner) -> None:
    """Each operation has its own bucket at Amazon, so its own margin here: a throttle of
    the batch operation widens the batch's margin only."""
    clock = FakeClock()
    governor = _governor(db, clock)
    other = "getCompetitivePricing"
    await governor.granted(OP, 10.0)
    await governor.granted(other, 10.0)
    await governor.throttled(OP)
    assert governor.margin(OP) == pytest.approx(0.04)
    assert governor.margin(other) == pytest.approx(0.02)
    clock.now += 100
    first = await _slot(governor, db, other)
    spacing = await _slot(governor, db, other) - first - IDLE_LATENESS_S
    assert spacing == pytest.approx(1 / pace(10), abs=1e-6)  # still the 20 ms margin


def test_pacing_margin_is_absolute() -> None:
    assert 1 / pace(0.1) - 1 / 0.1 == pytest.approx(0.02)  # 10 s interval: +20 ms
    assert 1 / pace(10) - 1 / 10 == pytest.approx(0.02)  # 100 ms interval: +20 ms


class LateClock(FakeClock):
    """Every reading is 60 ms after the last: a process that is never scheduled on time."""

    def time(self) -> float:
        self.now += 0.06
        return self.now


async def test_a_wake_too_late_for_its_slot_gives_it_up(db: DbRunner) -> None:
    governor = _governor(db, LateClock())
    await governor.granted(OP, 10.0)
    await governor.acquire(OP)
    # 120 ms late against a slack of 40 ms (20 ms margin + 20 ms after an idle bucket): the
    # slot is given up and the margin widens, as for a 429; a request is never held back
    # more than MAX_FORFEITS times.
    assert 1 <= governor.forfeits <= MAX_FORFEITS
    assert governor.margin_s > 0.02


async def test_throttles_never_cut_below_the_floor(db: DbRunner) -> None:
    governor = _governor(db, FakeClock())
    await governor.granted(OP, 10.0)
    for _ in range(50):
        rate = await governor.throttled(OP)
    assert rate == pytest.approx(10 * FLOOR)


async def test_acquire_stops_at_once_on_stop(db: DbRunner) -> None:
    import time

    from ecsync.errors import Interrupted

    stop = Stop()
    governor = RateGovernor(db, "client:abc", stop)
    await governor.acquire(OP)
    stop.set("test")
    started = time.monotonic()
    with pytest.raises(Interrupted):
        await governor.acquire(OP)  # would otherwise wait about 10 s
    assert time.monotonic() - started < 5  # loose for a busy CPU, still far below 10 s
