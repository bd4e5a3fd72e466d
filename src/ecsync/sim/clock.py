"""The simulator's clock: wall time compressed by ``--speed``, plus manual jumps.

Every time-dependent rule of the simulator (token lifetimes, rate-limit refills, BASE's
hourly and daily windows, eBay's daily revision counts, future availability dates) reads
this one clock, so ``--speed 100`` makes all of them run 100 times faster together and a
test can jump an hour ahead with ``POST /_sim/clock/advance`` instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SimClock:
    """Simulated seconds since the Unix epoch.

    ``now() = anchor_sim + (real_now - anchor_real) * speed``. Advancing or freezing
    re-anchors, so time never runs backwards. A frozen clock only moves when advanced,
    which makes rate-limit tests exact at any speed.
    """

    __slots__ = ("_anchor_real", "_anchor_sim", "_frozen", "_real", "speed")

    def __init__(
        self,
        speed: float = 1.0,
        *,
        start: float | None = None,
        real: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._real = real
        self._anchor_real = real()
        self._anchor_sim = time.time() if start is None else start
        self._frozen = False

    def now(self) -> float:
        if self._frozen:
            return self._anchor_sim
        return self._anchor_sim + (self._real() - self._anchor_real) * self.speed

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def _reanchor(self, sim: float) -> None:
        self._anchor_sim = sim
        self._anchor_real = self._real()

    def advance(self, seconds: float) -> float:
        """Jump ahead by ``seconds`` of simulated time; returns the new now."""
        if seconds < 0:
            raise ValueError("the clock cannot go backwards")
        self._reanchor(self.now() + seconds)
        return self._anchor_sim

    def set_frozen(self, frozen: bool) -> None:
        self._reanchor(self.now())
        self._frozen = frozen

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time take on the wall clock."""
        return sim_seconds / self.speed

    def snapshot(self) -> dict[str, object]:
        now = self.now()
        return {
            "now": now,
            "iso": datetime.fromtimestamp(now, tz=UTC).isoformat(),
            "speed": self.speed,
            "frozen": self._frozen,
        }
