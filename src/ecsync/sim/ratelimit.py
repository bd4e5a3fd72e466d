"""Rate limiters as the three marketplaces enforce them, measured in simulated seconds.

Amazon uses token buckets (rate per second, burst); BASE and eBay count calls in fixed
windows aligned to the clock (BASE: the hour resets at minute :00, the day at midnight
JST; eBay: per UTC calendar day). All of them take ``now`` from :class:`SimClock`, so
``--speed`` scales them without any special case here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


def format_rate(rate: float, speed: float) -> str:
    """The ``x-amzn-RateLimit-Limit`` value: the documented rate scaled to wall-clock seconds.

    Decimal arithmetic keeps ``0.1 * 3`` printing as ``0.3``, as Amazon's header would.
    """
    value = (Decimal(str(rate)) * Decimal(str(speed))).normalize()
    return format(value, "f")


class TokenBucket:
    """Refills ``rate`` tokens per simulated second up to ``burst``; one request takes one."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
            self.last = now

    def try_take(self, now: float) -> bool:
        self._refill(now)
        # A hair of tolerance: float sums like 0.1 * 10 s must yield a whole token. Times are
        # epoch seconds (~1.8e9, a float step of 2.4e-7 s), so a client that waits exactly
        # 1/rate (30.30... s at getCompetitiveSummary's 0.033/s) can land a few 1e-9 of a
        # token short; 1e-6 of a token is microseconds early at any documented rate.
        if self.tokens >= 1.0 - 1e-6:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def available(self, now: float) -> float:
        self._refill(now)
        return self.tokens


@dataclass(frozen=True, slots=True)
class BucketSpec:
    rate: float
    burst: int


class BucketRegistry:
    """One bucket per (client, operation), created full on first use, as Amazon does."""

    __slots__ = ("_buckets", "specs")

    def __init__(self, specs: dict[str, BucketSpec]) -> None:
        self.specs = specs
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def try_take(self, client: str, operation: str, now: float) -> bool:
        key = (client, operation)
        bucket = self._buckets.get(key)
        if bucket is None:
            spec = self.specs[operation]
            bucket = self._buckets[key] = TokenBucket(spec.rate, spec.burst, now)
        return bucket.try_take(now)

    def remaining(self, now: float) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for (client, operation), bucket in self._buckets.items():
            out.setdefault(client, {})[operation] = round(bucket.available(now), 6)
        return out


class FixedWindow:
    """At most ``limit`` hits per window of ``length`` seconds, windows aligned to the epoch.

    ``offset`` shifts the alignment (BASE's day starts at midnight JST = UTC+9), so a
    window covers ``[k * length - offset, (k + 1) * length - offset)``. A refused hit is not
    counted.
    """

    __slots__ = ("count", "length", "limit", "offset", "window")

    def __init__(self, length: float, limit: int, offset: float = 0.0) -> None:
        self.length = length
        self.limit = limit
        self.offset = offset
        self.window = -1
        self.count = 0

    def _roll(self, now: float) -> None:
        window = int((now + self.offset) // self.length)
        if window != self.window:
            self.window = window
            self.count = 0

    def try_hit(self, now: float) -> bool:
        self._roll(now)
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def remaining(self, now: float) -> int:
        self._roll(now)
        return max(0, self.limit - self.count)

    def resets_at(self, now: float) -> float:
        self._roll(now)
        return (self.window + 1) * self.length - self.offset


class WindowCounters:
    """A fixed-window count per key, for per-listing limits like eBay's 250 revisions/day.

    Stores only ``(window, count)`` per key, and reads ``limit`` at every hit so that a
    limit changed through the control API applies at once.
    """

    __slots__ = ("_counts", "length", "limit", "offset")

    def __init__(self, length: float, limit: int, offset: float = 0.0) -> None:
        self.length = length
        self.limit = limit
        self.offset = offset
        self._counts: dict[str, tuple[int, int]] = {}

    def _window(self, now: float) -> int:
        return int((now + self.offset) // self.length)

    def count(self, key: str, now: float) -> int:
        window, count = self._counts.get(key, (-1, 0))
        return count if window == self._window(now) else 0

    def try_hit(self, key: str, now: float) -> bool:
        count = self.count(key, now)
        if count >= self.limit:
            return False
        self._counts[key] = (self._window(now), count + 1)
        return True
