"""Adaptive rate limiting for SP-API, shared by every ecsync process on one database.

Amazon meters each (application, selling partner, operation) with a token bucket. The
governor mirrors it: a bucket per budget key whose state lives in ``api_usage``, so a manual
``sync`` beside the daemon draws from the same budget instead of doubling the rate. It starts
from the documented default, follows the rate Amazon reports in ``x-amzn-RateLimit-Limit``,
paces a little under it (a burst of one cannot absorb network jitter), cuts the rate on a
429 and wins it back slowly. A request whose wait ends too late for its slot (a busy machine)
takes a new slot instead of crowding the next one into a 429.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ecsync.clock import Clock, Stop, SystemClock
from ecsync.errors import Interrupted
from ecsync.store.runner import DbRunner
from ecsync.store.schema import ApiUsage
from ecsync.store.usage import usage_row

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Quota:
    rate: float  # requests per second
    burst: float


DOCUMENTED = {
    "getItemOffersBatch": Quota(0.1, 1),
    "getItemOffers": Quota(0.5, 1),
    "getCompetitivePricing": Quota(0.5, 1),
    "getCompetitiveSummary": Quota(0.033, 1),
    "getCatalogItem": Quota(2, 2),
}

JITTER_S = 0.02  # spacing added to every interval: what a burst of one cannot absorb
# A busy machine jitters more: each 429 or late wake doubles the margin, up to this (0.5 %
# of Amazon's real 10 s interval; half the 100 ms interval of a simulator at --speed 100).
MAX_JITTER_S = 0.05
WIDEN = 2.0
JITTER_DECAY = 0.99  # per success, back towards JITTER_S
CUT = 0.9  # on a 429 (repeated 429s keep cutting, down to FLOOR)
FLOOR = 0.3  # never below this share of the granted rate
RECOVERY = 1.02  # per success, back up to the paced rate
RECHECK_S = 0.5
IDLE_LATENESS_S = 0.02  # a longer wait re-reads the rate this often
MAX_FORFEITS = 2  # late slots given up per request; then it is sent late rather than never


def pace(granted: float, margin_s: float = JITTER_S) -> float:
    """The rate to send at for a granted rate: the interval plus the jitter allowance.

    An absolute allowance, not a share: 20 ms on Amazon's real 10 s interval costs 0.2 %
    (less than the internet's own jitter), while on the 100 ms interval of a simulator at
    --speed 100 it is the 20 % that keeps the timer and scheduling jitter of a loaded
    machine from drawing 429s (measured with two fetching processes beside a CPU hog on two
    cores: 5-20 ms at p99, with rarer stalls of 30-60 ms that the doubling on a 429 absorbs).
    """
    return granted / (1 + granted * margin_s)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class RateGovernor:
    """Hands out send times, one per request, from a bucket shared through the database.

    Each request *reserves* its slot (GCRA: the bucket's theoretical arrival time, stored
    in ``api_usage.updated_at``) and then sleeps until that moment and sends. The database
    round trip happens before the wait, not between it and the send, so the spacing Amazon
    sees is as even as the timer, which matters when the interval is 100 ms (``--speed``).
    """

    def __init__(
        self, db: DbRunner, credentials_key: str, stop: Stop, clock: Clock | None = None
    ) -> None:
        self._db = db
        self._prefix = f"spapi:{credentials_key}"
        self._stop = stop
        self._clock = clock or SystemClock()
        # This process's own jitter margin per operation: how late its sends run depends on
        # its machine, and a 429 or a late wake on one operation must not slow the others.
        self._margins: dict[str, float] = {}
        # Operations whose row is at full pace for this granted rate: no write needed.
        self._settled: dict[str, float | None] = {}
        self.forfeits = 0  # slots given up because the wait ended too late for them
        # Per operation, what this governor let out and what Amazon refused with a 429: every
        # SP-API request of any mode passes here, so this is the one place that sees them all
        # (``status`` and ``/metrics`` show them against the quota, see operation_counts).
        self.requests: Counter[str] = Counter()
        self.throttles: Counter[str] = Counter()

    def key(self, operation: str) -> str:
        return f"{self._prefix}:{operation}"

    def margin(self, operation: str) -> float:
        """The jitter margin ``operation`` is paced with now (see :func:`pace`)."""
        return self._margins.get(operation, JITTER_S)

    @property
    def margin_s(self) -> float:
        """The widest margin of any operation (for reports)."""
        return max(self._margins.values(), default=JITTER_S)

    def _widen(self, operation: str) -> None:
        self._margins[operation] = min(MAX_JITTER_S, self.margin(operation) * WIDEN)

    async def acquire(self, operation: str) -> float:
        """Wait for this request's slot; returns the seconds waited.

        A long wait is taken in slices: if meanwhile another process learnt a faster granted
        rate (its first answer), this slot, booked at the slow default, is given up and a
        new one taken at the new pace.

        A wait that ends later than the slot's slack allows (the process was not scheduled
        in time: a loaded CPU) would send this request so close to the next slot that
        Amazon's bucket of one refuses that one. The late slot is given up and a new one
        booked (at most ``MAX_FORFEITS`` times), and the pacing margin widens as for a 429.
        """
        started = self._clock.time()
        forfeits = 0
        while True:
            slot, rate, grace = await self._db.run(lambda s: self._book(s, operation))
            log.debug("%s: slot in %.3f s at %.4g requests/s", operation, slot - started, rate)
            while (wait := slot - self._clock.time()) > 0:
                if await self._stop.sleep(min(wait, RECHECK_S)):
                    raise Interrupted(self._stop.reason)
                if wait > RECHECK_S:
                    current = await self._db.run(lambda s: self._row(s, operation).rate)
                    if current > rate * 1.5:
                        slot, rate, grace = await self._db.run(lambda s: self._book(s, operation))
            late = self._clock.time() - slot
            if late <= grace or forfeits >= MAX_FORFEITS:
                self.requests[operation] += 1  # the caller sends as soon as this returns
                return self._clock.time() - started
            forfeits += 1
            self.forfeits += 1
            self._widen(operation)
            self._settled.pop(operation, None)
            log.debug(
                "%s: woke %.1f ms late, slack %.1f ms: slot given up",
                operation,
                late * 1000,
                grace * 1000,
            )

    def _row(self, session: Session, operation: str) -> ApiUsage:
        quota = DOCUMENTED.get(operation, Quota(0.1, 1))
        key = self.key(operation)
        return usage_row(
            session,
            key,
            lambda: ApiUsage(
                key=key,
                rate=pace(quota.rate),
                burst=quota.burst,
                tokens=0.0,
                granted_rate=None,
                window_count=0,
                # an arrival time in the past: the bucket starts full
                updated_at=_ts(self._clock.time() - quota.burst / quota.rate),
            ),
        )

    def _reserve(self, session: Session, operation: str) -> tuple[float, float]:
        """The slot and the pacing rate of a new booking (see :meth:`_book`)."""
        slot, rate, _grace = self._book(session, operation)
        return slot, rate

    def _book(self, session: Session, operation: str) -> tuple[float, float, float]:
        """GCRA: the slot is when the bucket would hold a token; the bucket's arrival time
        then moves one interval on. Also returns the slot's *slack*: how late the request
        may leave and still be a granted interval before the next slot."""
        now = self._clock.time()
        row = self._row(session, operation)
        interval = 1 / row.rate
        tolerance = (row.burst - 1) * interval
        arrival = row.updated_at.timestamp()
        slot = max(now, arrival - tolerance)
        # A slot from an idle bucket is "now", but the request leaves only after this
        # transaction and, at the start of a run, a new connection: room for that lateness.
        late = IDLE_LATENESS_S if arrival - tolerance <= now else 0.0
        booked = max(arrival, slot) + interval + late
        row.updated_at = _ts(booked)
        granted = row.granted_rate or DOCUMENTED.get(operation, Quota(0.1, 1)).rate
        grace = (booked - tolerance) - slot - 1 / granted + (row.burst - 1) / granted
        return slot, row.rate, grace

    async def granted(self, operation: str, rate_header: float | None) -> None:
        """After a success: follow the reported rate, and win back a cut rate slowly.

        Skipped when nothing would change (same rate, already at full pace, margin at rest):
        the database thread also carries every batch's quotes and plan.
        """
        if (
            self._settled.get(operation) == rate_header
            and rate_header is not None
            and self.margin(operation) == JITTER_S
        ):
            return
        await self._db.run(lambda s: self._on_success(s, operation, rate_header))

    def _on_success(self, session: Session, operation: str, rate_header: float | None) -> None:
        row = self._row(session, operation)
        if rate_header is not None and rate_header != row.granted_rate:
            log.info(
                "%s: Amazon grants %.4g requests/s (was %s)",
                operation,
                rate_header,
                f"{row.granted_rate:.4g}" if row.granted_rate else "the documented default",
            )
            row.granted_rate = rate_header
            self._set_rate(row, pace(rate_header, self.margin(operation)))
            self._settled.pop(operation, None)
            return
        margin = self._margins[operation] = max(JITTER_S, self.margin(operation) * JITTER_DECAY)
        granted = row.granted_rate or DOCUMENTED.get(operation, Quota(0.1, 1)).rate
        ceiling = pace(granted, margin)
        row.rate = min(ceiling, row.rate * RECOVERY)  # slots already handed out stay put
        if row.rate >= ceiling and margin == JITTER_S:
            self._settled[operation] = rate_header

    def _set_rate(self, row: ApiUsage, rate: float) -> None:
        """A faster rate pulls slots reserved at the old pace in to the new one."""
        if rate > row.rate:
            soonest = self._clock.time() + 1 / rate
            row.updated_at = _ts(min(row.updated_at.timestamp(), soonest))
        row.rate = rate

    async def refund(self, operation: str) -> None:
        """Give back the last slot: the request was refused before metering (a 403 for a
        stale token), so its retry should not wait a whole interval for nothing."""
        await self._db.run(lambda s: self._on_refund(s, operation))

    def _on_refund(self, session: Session, operation: str) -> None:
        row = self._row(session, operation)
        floor = self._clock.time()
        row.updated_at = _ts(max(floor, row.updated_at.timestamp() - 1 / row.rate))

    async def throttled(self, operation: str) -> float:
        """After a 429: cut the rate and push the next slot one new interval out."""
        self.throttles[operation] += 1
        return await self._db.run(lambda s: self._on_throttle(s, operation))

    def _on_throttle(self, session: Session, operation: str) -> float:
        now = self._clock.time()
        row = self._row(session, operation)
        granted = row.granted_rate or DOCUMENTED.get(operation, Quota(0.1, 1)).rate
        self._widen(operation)
        self._settled.pop(operation, None)
        row.rate = max(granted * FLOOR, row.rate * CUT)
        row.updated_at = _ts(max(row.updated_at.timestamp(), now) + 1 / row.rate)
        log.warning("%s: throttled (429); pacing at %.4g requests/s", operation, row.rate)
        return row.rate

    def operation_counts(self) -> dict[str, dict[str, int]]:
        """``{operation: {"requests": n, "throttled": m}}`` since this governor was made (a
        cycle makes its own) or since the last :meth:`take_counts` (a reporting window)."""
        return {
            operation: {"requests": count, "throttled": self.throttles.get(operation, 0)}
            for operation, count in sorted(self.requests.items())
        }

    def take_counts(self) -> dict[str, dict[str, int]]:
        """The counts so far, then zero: a long-running engine closes a reporting window."""
        counts = self.operation_counts()
        self.requests.clear()
        self.throttles.clear()
        return counts

    async def granted_rate(self, operation: str) -> float | None:
        """The rate Amazon reported last, or None before any answer carried one."""
        return await self._db.run(lambda s: self._row(s, operation).granted_rate)
