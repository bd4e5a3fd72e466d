"""The refresh scheduler: which ASINs to quote or probe next, so the quotas go where the risk is.

Pure: no I/O, no clock of its own (every method takes ``now`` in seconds, the caller's
clock), so it is unit-testable and the engine decides when to call it. The engine loads
one :class:`AsinState` per ASIN at start, then reports every quote and probe back.

Priority is the exposure a refresh is expected to avoid:
``stake x (1 - exp(-rate x age))`` where ``rate`` is the ASIN's change rate learned from its
own quote history (changes / observed seconds, shrunk towards the catalogue's mean rate for
ASINs with little history: empirical Bayes), ``age`` the time since its last full quote and
``stake`` what is at risk (listings x source price). Before any priority come, in order:
ASINs the caller asked for (:meth:`RefreshScheduler.ask`: a seller's release), ASINs a probe
contradicted (most urgent contradiction first), never-quoted ASINs (new
listings), and ASINs whose quote is older than ``overdue_share x max_quote_age`` (oldest
first, started early so the hard bound holds), so nothing starves, including changes the
Buy Box does not show.

Cost. At 100,000 ASINs the engine asks for work several times a second (simulated time may
run much faster), so no call scans every ASIN: contradicted, new and overdue ASINs sit in
their own small structures (a heap, a deque, a heap on the last quote time, all lazily
invalidated: an entry is checked against the ASIN's current state when it reaches the top),
and the priority order is a cached list of the top K ASINs rebuilt with ``heapq.nlargest``
at most every ``rebuild_s`` seconds of ``now`` (or sooner when exhausted), K being four
times what was taken from the previous list (at least ``min_ranked``). Between rebuilds
every ASIN ages by the same amount, so the order the list was built in stays nearly right.
State lives in parallel arrays (``array('d')``, a ``bytearray`` of flags) indexed by slot,
about 60 bytes per ASIN plus its name and the index dict: a few MB at 100,000 ASINs.
"""

from __future__ import annotations

import bisect
import heapq
import math
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import count
from typing import Any, Final

from ecsync.domain.probes import Contradiction, Difference

__all__ = ["AsinState", "RefreshPolicy", "RefreshScheduler"]

DAY_S: Final = 86_400.0
_NAN: Final = math.nan
_NEVER: Final = -math.inf

# Flags of a slot; a slot with flags == 0 is a quoted ASIN in no special queue (the
# priority-ranked population, for full quotes and probes alike).
_IN_FLIGHT: Final = 1  # handed out for a full quote, not yet quoted / failed
_URGENT: Final = 2  # a probe contradicted its last quote: waits for a full quote
_NEW: Final = 4  # never quoted
_FREE: Final = 8  # no ASIN in this slot (removed; reused by the next add)
_ASKED: Final = 16  # the caller asked for a quote now (a seller's release): served first


@dataclass(frozen=True, slots=True)
class AsinState:
    """What the store knows of one ASIN when the scheduler starts."""

    asin: str
    stake: float  # listings x source price in yen (>= 1 for a listed ASIN)
    last_quote_s: float | None = None  # epoch seconds of the last full quote (None: never)
    changes: int = 0  # full quotes that differed from the one before (price or stock)
    observed_s: float = 0.0  # seconds of quote history those changes were seen over
    quotes: int = 0  # intervals (quote to quote) in observed_s; 0: unknown, no correction

    def __post_init__(self) -> None:
        where = f"AsinState({self.asin!r})"
        if not self.asin:
            raise ValueError("AsinState.asin: empty")
        if not math.isfinite(self.stake) or self.stake < 0:
            raise ValueError(f"{where}.stake: expected a finite number >= 0, got {self.stake!r}")
        if self.last_quote_s is not None and not math.isfinite(self.last_quote_s):
            raise ValueError(f"{where}.last_quote_s: not a finite time ({self.last_quote_s!r})")
        if self.changes < 0:
            raise ValueError(f"{where}.changes: negative ({self.changes})")
        if not math.isfinite(self.observed_s) or self.observed_s < 0:
            raise ValueError(f"{where}.observed_s: expected >= 0, got {self.observed_s!r}")
        if self.quotes < 0:
            raise ValueError(f"{where}.quotes: negative ({self.quotes})")


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """How the scheduler weighs history and bounds staleness.

    ``overdue_share``: an ASIN counts as overdue (served oldest first, ahead of any
    priority) from ``overdue_share x max_quote_age_s``, so the queue of overdue ASINs drains
    before the hard bound is reached. ``correct_censoring``: see
    :meth:`RefreshScheduler.quoted` (and ``AsinState.quotes`` for a stored history).
    ``rebuild_s`` / ``min_ranked``: how often and how deep the cached priority lists are
    rebuilt (cost more than behaviour: in benchmarks/scheduler.py at 16,000 ASINs, 60 s,
    180 s and 600 s gave the same exposure within 5 %, at 1.8, 1.0 and 0.4 CPU s per
    simulated hour).
    """

    max_quote_age_s: float = 6 * 3600.0
    prior_rate_per_day: float = 1.0  # before the catalogue has taught a mean rate
    prior_weight_s: float = 86_400.0  # how much history the prior counts for
    overdue_share: float = 0.8
    correct_censoring: bool = True
    rebuild_s: float = 300.0
    min_ranked: int = 256

    def __post_init__(self) -> None:
        if not self.max_quote_age_s > 0:
            raise ValueError(
                f"RefreshPolicy.max_quote_age_s: expected > 0, got {self.max_quote_age_s!r}"
            )
        if not (math.isfinite(self.prior_rate_per_day) and self.prior_rate_per_day >= 0):
            raise ValueError(
                f"RefreshPolicy.prior_rate_per_day: expected >= 0, got {self.prior_rate_per_day!r}"
            )
        if not (math.isfinite(self.prior_weight_s) and self.prior_weight_s > 0):
            raise ValueError(
                f"RefreshPolicy.prior_weight_s: expected > 0, got {self.prior_weight_s!r}"
            )
        if not 0 < self.overdue_share <= 1:
            raise ValueError(
                f"RefreshPolicy.overdue_share: expected in (0, 1], got {self.overdue_share!r}"
            )
        if not self.rebuild_s >= 0:
            raise ValueError(f"RefreshPolicy.rebuild_s: expected >= 0, got {self.rebuild_s!r}")
        if self.min_ranked < 1:
            raise ValueError(f"RefreshPolicy.min_ranked: expected >= 1, got {self.min_ranked!r}")


class _Ranked:
    """A cached priority list: slots best first, consumed from ``pos``; built at ``built``."""

    __slots__ = ("built", "pos", "slots", "taken", "taken_before")

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.pos = 0
        self.built = _NEVER
        self.taken = 0  # handed out from this list
        self.taken_before = 0  # handed out from the previous one (sizes the next)

    def reset(self) -> None:
        self.slots = []
        self.pos = 0
        self.built = _NEVER


class RefreshScheduler:
    """The queues of full quotes and probes over one Amazon account's ASINs."""

    def __init__(self, policy: RefreshPolicy | None = None) -> None:
        self.policy = policy or RefreshPolicy()
        self._w = self.policy.prior_weight_s
        self._prior_rate = self.policy.prior_rate_per_day / DAY_S
        self._overdue_after = self.policy.overdue_share * self.policy.max_quote_age_s
        self._seq = count()
        self._clear()

    def set_max_quote_age(self, seconds: float) -> None:
        """Bound quote age by ``seconds`` from now on (the caller's effective bound, e.g.
        raised when the catalogue outgrows what the quotas can quote in the configured one).
        The overdue threshold follows; queued work is kept."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"set_max_quote_age: expected a finite number > 0, got {seconds!r}")
        self.policy = replace(self.policy, max_quote_age_s=seconds)
        self._overdue_after = self.policy.overdue_share * seconds

    # -- the ASINs known ---------------------------------------------------------------

    def _clear(self) -> None:
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._stake = array("d")
        self._last_quote = array("d")  # NaN: never quoted
        self._last_probe = array("d")  # -inf: never probed (also set when handed out)
        self._events = array("d")  # changes seen, corrected for censoring (see quoted)
        self._observed = array("d")  # seconds of quote history
        self._flags = bytearray()
        self._free: list[int] = []
        self._urgent: dict[int, tuple[int, float]] = {}  # slot -> (Contradiction, since)
        self._urgent_heap: list[tuple[int, float, int, int]] = []  # (rank, since, seq, slot)
        self._new: deque[int] = deque()
        self._asked: deque[int] = deque()  # slots flagged _ASKED, not in flight
        self._overdue_heap: list[tuple[float, int]] = []  # (last quote, slot)
        self._full_ranked = _Ranked()
        self._probe_ranked = _Ranked()
        self._sum_events = 0.0
        self._sum_observed = 0.0
        self._in_flight = 0
        self.probes = 0
        self.probe_differences = 0
        self.probe_hits = 0

    def load(self, states: Iterable[AsinState], now: float) -> None:
        """Replace the ASINs known (a listing added or retired: call again or use add/remove).

        An ASIN already known keeps what the scheduler learned live (in flight, contradicted,
        last probe, and its history unless the store's is newer); the others start from
        their state. Every queue is rebuilt from scratch. An ASIN given twice is a
        ValueError (one state per ASIN: its stake already sums its listings).
        """
        states = list(states)
        seen: set[str] = set()
        for state in states:
            if state.asin in seen:
                raise ValueError(f"RefreshScheduler.load: ASIN {state.asin!r} given twice")
            seen.add(state.asin)
        old = self._snapshot()
        probes, differences, hits = self.probes, self.probe_differences, self.probe_hits
        self._clear()
        self.probes, self.probe_differences, self.probe_hits = probes, differences, hits
        for state in states:
            live = old.get(state.asin)
            if live is not None and (
                state.last_quote_s is None or (live[0] == live[0] and live[0] >= state.last_quote_s)
            ):
                lq, lp, events, observed, flags, urgent = live
                slot = self._put(state.asin, state.stake, lq, events, observed)
                self._last_probe[slot] = lp
            else:  # the store's quote is newer: a contradiction older than it is moot
                slot = self._put_state(state)
                flags, urgent = (live[4], live[5]) if live else (0, None)
                if urgent is not None and urgent[1] <= (state.last_quote_s or _NEVER):
                    urgent = None
            self._restore(slot, flags, urgent)
        self._full_ranked.reset()
        self._probe_ranked.reset()

    def _snapshot(
        self,
    ) -> dict[str, tuple[float, float, float, float, int, tuple[int, float] | None]]:
        return {
            name: (
                self._last_quote[slot],
                self._last_probe[slot],
                self._events[slot],
                self._observed[slot],
                self._flags[slot],
                self._urgent.get(slot),
            )
            for name, slot in self._index.items()
        }

    def _restore(self, slot: int, flags: int, urgent: tuple[int, float] | None) -> None:
        if flags & _IN_FLIGHT:
            self._flags[slot] |= _IN_FLIGHT
            self._in_flight += 1
        if flags & _URGENT and urgent is not None and not self._flags[slot] & _NEW:
            self._mark_urgent(slot, urgent[0], urgent[1])
        if flags & _ASKED:
            self._flags[slot] |= _ASKED
            if not flags & _IN_FLIGHT:
                self._asked.append(slot)

    def ask(self, asin: str) -> bool:
        """A full quote for ``asin`` as soon as possible, ahead of every other queue (the
        seller released a held change for it: the plan that sends the release follows a fresh
        quote, so it is judged on the source as it is now, not as it was when held).

        An ASIN already in flight is only flagged: the quote under way comes back after the
        ask, and its plan reads the release then; a quote that fails puts it back at the front.
        Unknown ASIN: False (nothing to quote).
        """
        slot = self._index.get(asin)
        if slot is None:
            return False
        flags = self._flags[slot]
        if not flags & _ASKED:
            self._flags[slot] |= _ASKED
            if not flags & _IN_FLIGHT:
                self._asked.append(slot)
        return True

    def add(self, state: AsinState) -> None:
        """Know one more ASIN; an ASIN already known only takes the new ``stake`` (its live
        state, fresher than the store's, is kept)."""
        slot = self._index.get(state.asin)
        if slot is not None:
            self._stake[slot] = state.stake
            return
        self._put_state(state)

    def remove(self, asin: str) -> None:
        """Forget an ASIN (its listings retired). Unknown: nothing to do. A quote or probe
        still in flight for it is ignored when it comes back."""
        slot = self._index.pop(asin, None)
        if slot is None:
            return
        self._sum_events -= self._events[slot]
        self._sum_observed -= self._observed[slot]
        if self._flags[slot] & _IN_FLIGHT:
            self._in_flight -= 1
        self._urgent.pop(slot, None)
        self._flags[slot] = _FREE
        self._names[slot] = ""
        self._free.append(slot)

    def _put_state(self, state: AsinState) -> int:
        lq = _NAN if state.last_quote_s is None else state.last_quote_s
        events = float(state.changes)
        if self.policy.correct_censoring and 0 < state.changes <= state.quotes:
            events = _censored_events(state.changes, state.quotes)
        return self._put(state.asin, state.stake, lq, events, state.observed_s)

    def _put(self, asin: str, stake: float, lq: float, events: float, observed: float) -> int:
        if self._free:
            slot = self._free.pop()
            self._names[slot] = asin
            self._stake[slot] = stake
            self._last_quote[slot] = lq
            self._last_probe[slot] = _NEVER
            self._events[slot] = events
            self._observed[slot] = observed
        else:
            slot = len(self._names)
            self._names.append(asin)
            self._stake.append(stake)
            self._last_quote.append(lq)
            self._last_probe.append(_NEVER)
            self._events.append(events)
            self._observed.append(observed)
            self._flags.append(0)
        self._index[asin] = slot
        self._sum_events += events
        self._sum_observed += observed
        if lq != lq:  # NaN: never quoted
            self._flags[slot] = _NEW
            self._new.append(slot)
        else:
            self._flags[slot] = 0
            heapq.heappush(self._overdue_heap, (lq, slot))
        return slot

    # -- rates -------------------------------------------------------------------------

    def mean_rate(self) -> float:
        """The catalogue's mean change rate per second: every ASIN's history pooled, with
        the policy's prior counting for ``prior_weight_s`` seconds."""
        return (self._sum_events + self._prior_rate * self._w) / (self._sum_observed + self._w)

    def rate(self, asin: str) -> float:
        """One ASIN's change rate per second: its own history shrunk towards the catalogue
        mean, which counts for ``prior_weight_s`` seconds (empirical Bayes). KeyError when
        unknown."""
        slot = self._index[asin]
        return self._rate(slot, self.mean_rate())

    def _rate(self, slot: int, mean: float) -> float:
        return (self._events[slot] + mean * self._w) / (self._observed[slot] + self._w)

    # -- handing out work --------------------------------------------------------------

    def next_full(self, n: int, now: float) -> list[str]:
        """Up to ``n`` distinct ASINs for a full quote, most urgent first; they leave the
        queue until :meth:`quoted` or :meth:`quote_failed` brings them back.

        Order: asked for (:meth:`ask`, in the order asked), probe-contradicted (most urgent
        contradiction, then oldest), never quoted (in the order they were added), overdue
        (oldest quote first), then by expected exposure avoided.
        """
        if n < 0:
            raise ValueError(f"next_full: n must be >= 0, got {n}")
        out: list[int] = []
        flags = self._flags
        # 0. asked for by the caller
        asked = self._asked
        while asked and len(out) < n:
            slot = asked.popleft()
            if flags[slot] & (_ASKED | _IN_FLIGHT | _FREE) == _ASKED:
                self._take(slot, out)
        # 1. contradicted by a probe
        heap = self._urgent_heap
        while heap and len(out) < n:
            rank, since, _, slot = heapq.heappop(heap)
            if flags[slot] & (_IN_FLIGHT | _FREE) or self._urgent.get(slot) != (rank, since):
                continue
            self._take(slot, out)
        # 2. never quoted
        new = self._new
        while new and len(out) < n:
            slot = new.popleft()
            if flags[slot] & (_NEW | _IN_FLIGHT | _FREE) == _NEW:
                self._take(slot, out)
        # 3. overdue, oldest first
        overdue = self._overdue_heap
        threshold = now - self._overdue_after
        last_quote = self._last_quote
        while overdue and len(out) < n:
            lq, slot = overdue[0]
            if flags[slot] != 0 or last_quote[slot] != lq:
                heapq.heappop(overdue)  # stale entry: quoted since, or queued elsewhere
                continue
            if lq > threshold:
                break
            heapq.heappop(overdue)
            self._take(slot, out)
        # 4. expected exposure avoided
        ranked = self._full_ranked
        for slot in self._ranked(ranked, n - len(out), now, probe=False):
            if flags[slot] == 0 and last_quote[slot] <= ranked.built:
                self._take(slot, out)
                if len(out) >= n:
                    break
        return [self._names[slot] for slot in out]

    def _ranked(self, ranked: _Ranked, wanted: int, now: float, *, probe: bool) -> Iterator[int]:
        """The slots of a cached priority list in order, rebuilt when ``rebuild_s`` old or
        exhausted, at most once per call (an exhausted fresh list: nothing left to give).
        The caller checks each slot is still eligible; every slot yielded counts as taken
        for sizing the next list (an ineligible one is rare: quoted or queued since)."""
        if wanted <= 0:
            return
        rebuilt = False
        if now - ranked.built >= self.policy.rebuild_s:
            self._rebuild(ranked, now, probe=probe)
            rebuilt = True
        while True:
            if ranked.pos >= len(ranked.slots):
                if rebuilt:
                    return
                self._rebuild(ranked, now, probe=probe)
                rebuilt = True
                continue
            slot = ranked.slots[ranked.pos]
            ranked.pos += 1
            ranked.taken += 1
            yield slot

    def _take(self, slot: int, out: list[int]) -> None:
        self._flags[slot] |= _IN_FLIGHT
        self._in_flight += 1
        out.append(slot)

    def next_single(self, now: float) -> str | None:
        """The one ASIN most worth a getItemOffers now (a probe-contradicted one first);
        the same order as :meth:`next_full`, and in flight the same way."""
        chosen = self.next_full(1, now)
        return chosen[0] if chosen else None

    def next_probe(self, n: int, now: float) -> list[str]:
        """Up to ``n`` ASINs for getCompetitivePricing, by the same expected exposure but
        counted from the last probe or quote, whichever is later.

        Skipped: ASINs in flight (their full quote will tell), already contradicted (they
        wait for a full quote), never quoted (a probe has nothing to contradict). An ASIN
        handed out counts as probed now, so it is not handed out again before its answer;
        a probe that errors is simply not reported (it taught nothing).
        """
        if n < 0:
            raise ValueError(f"next_probe: n must be >= 0, got {n}")
        out: list[str] = []
        ranked = self._probe_ranked
        flags = self._flags
        last_quote = self._last_quote
        last_probe = self._last_probe
        for slot in self._ranked(ranked, n, now, probe=True):
            if (
                flags[slot] == 0
                and last_quote[slot] <= ranked.built
                and last_probe[slot] <= ranked.built
            ):
                last_probe[slot] = now
                out.append(self._names[slot])
                if len(out) >= n:
                    break
        return out

    def _rebuild(self, ranked: _Ranked, now: float, *, probe: bool) -> None:
        """The top K of the ranked population (flags == 0) by expected exposure avoided."""
        k = max(self.policy.min_ranked, 4 * max(ranked.taken, ranked.taken_before))
        ranked.taken_before, ranked.taken = ranked.taken, 0
        mean_w = self.mean_rate() * self._w
        w = self._w
        expm1 = math.expm1
        since: Iterable[float]
        since = map(max, self._last_quote, self._last_probe) if probe else self._last_quote
        scored = [
            (-expm1(-(events + mean_w) / (observed + w) * (now - t)) * stake, slot)
            for slot, (flag, t, events, observed, stake) in enumerate(
                zip(self._flags, since, self._events, self._observed, self._stake, strict=True)
            )
            if flag == 0
        ]
        ranked.slots = [slot for _, slot in heapq.nlargest(k, scored)]
        ranked.pos = 0
        ranked.built = now

    # -- answers -----------------------------------------------------------------------

    def quoted(self, asin: str, now: float, changed: bool) -> None:
        """A full quote came back (``changed``: price or stock moved since the last one).

        Learns the interval since the last quote: ``observed += now - last_quote``, and a
        change when ``changed``. One interval shows at most one change however many market
        events happened in it, so a plain count underestimates hot items (an ASIN quoted
        hourly that changes ten times an hour looks like one change an hour). With
        ``correct_censoring`` a changed interval of length d counts the number of events
        expected given at least one, for a Poisson process at the current estimate r:
        ``r d / (1 - exp(-r d))`` (>= 1, about 1 + r d / 2 for short intervals). Applied
        interval by interval this is an online EM step whose fixed point is the maximum
        likelihood of "changed or not" observations; it costs one exp per quote.
        The first quote of an ASIN teaches nothing (no interval). An unknown ASIN (removed
        meanwhile) is ignored.
        """
        slot = self._index.get(asin)
        if slot is None:
            return
        flags = self._flags[slot]
        if flags & _IN_FLIGHT:
            self._in_flight -= 1
        if flags & _URGENT:
            del self._urgent[slot]
            if changed:
                self.probe_hits += 1
        lq = self._last_quote[slot]
        if lq == lq and now > lq:
            interval = now - lq
            seen = 0.0
            if changed:
                seen = 1.0
                if self.policy.correct_censoring:
                    x = self._rate(slot, self.mean_rate()) * interval
                    if x > 1e-9:
                        seen = x / -math.expm1(-x)
            self._events[slot] += seen
            self._observed[slot] += interval
            self._sum_events += seen
            self._sum_observed += interval
        if lq != lq or now >= lq:
            self._last_quote[slot] = now
        self._flags[slot] = 0
        heapq.heappush(self._overdue_heap, (self._last_quote[slot], slot))

    def quote_failed(self, asin: str, now: float, *, error: bool = False) -> None:
        """No usable quote (error, throttle, stop): back in the queue, nothing learned.

        Handed back unanswered (a throttle, the window's end, a stop), it returns where it
        was: an asked-for or contradicted ASIN to the front of its queue, a new one to the
        front of the new queue, any other to the overdue heap (served when overdue) and to the
        next priority list. ``error``: Amazon answered with an error for it (an ASIN
        getItemOffers refuses, a 5xx): it may fail again, so it goes behind the others of its
        queue (a contradicted one as contradicted ``now``; any other waits for the next
        priority list, not the overdue heap). Else the single-quote loop, which asks again
        at once, would be handed the same failing ASIN back forever and spend its whole
        quota on it.
        """
        slot = self._index.get(asin)
        if slot is None or not self._flags[slot] & _IN_FLIGHT:
            return
        self._flags[slot] &= ~_IN_FLIGHT
        self._in_flight -= 1
        flags = self._flags[slot]
        if flags & _ASKED:
            if error:
                self._asked.append(slot)
            else:
                self._asked.appendleft(slot)
        elif flags & _URGENT:
            rank, since = self._urgent[slot]
            if error:
                since = max(since, now)
                self._urgent[slot] = (rank, since)
            heapq.heappush(self._urgent_heap, (rank, since, next(self._seq), slot))
        elif flags & _NEW:
            if error:
                self._new.append(slot)
            else:
                self._new.appendleft(slot)
        elif not error:
            heapq.heappush(self._overdue_heap, (self._last_quote[slot], slot))

    def probed(self, asin: str, now: float, difference: Difference | None) -> None:
        """A probe came back; a difference sends the ASIN to the front of the full queue.
        A probe error is not reported here at all (it is not evidence of anything).

        A difference for an ASIN already in flight for a full quote is counted but queues
        nothing (that quote will tell); for one already contradicted the more urgent
        contradiction is kept, with its first time.
        """
        slot = self._index.get(asin)
        if slot is None:
            return
        self.probes += 1
        if now > self._last_probe[slot]:
            self._last_probe[slot] = now
        if difference is None:
            return
        self.probe_differences += 1
        flags = self._flags[slot]
        if flags & (_IN_FLIGHT | _NEW):
            return
        rank = int(Contradiction(difference.reason))
        current = self._urgent.get(slot)
        if current is not None:
            if rank >= current[0]:
                return
            since = current[1]
        else:
            since = now
        self._mark_urgent(slot, rank, since)

    def _mark_urgent(self, slot: int, rank: int, since: float) -> None:
        self._flags[slot] |= _URGENT
        self._urgent[slot] = (rank, since)
        if not self._flags[slot] & _IN_FLIGHT:
            heapq.heappush(self._urgent_heap, (rank, since, next(self._seq), slot))

    # -- what the seller sees ----------------------------------------------------------

    def metrics(self, now: float) -> dict[str, Any]:
        """``quote_age_s`` {p50, p95, max} over quoted ASINs (``never_quoted`` apart),
        ``queue`` {asked, urgent, new, overdue, in_flight}, ``probes``, ``probe_differences``,
        ``probe_hits`` (contradicted ASINs whose next full quote had changed), ``asins``,
        ``max_quote_age_s`` (the bound in force), ``mean_rate_per_day``. Scans every ASIN:
        call it rarely (e.g. once a minute)."""
        flags, last_quote = self._flags, self._last_quote
        gone = _NEW | _FREE
        quoted = sorted([lq for flag, lq in zip(flags, last_quote, strict=True) if not flag & gone])
        busy = [  # quoted but waiting elsewhere: not counted overdue
            lq
            for flag, lq in zip(flags, last_quote, strict=True)
            if flag & (_IN_FLIGHT | _URGENT | _ASKED) and not flag & gone
        ]
        threshold = now - self._overdue_after
        overdue = bisect.bisect_right(quoted, threshold) - sum(lq <= threshold for lq in busy)
        new = flags.count(_NEW)  # exactly NEW: never quoted, not in flight
        never = new + flags.count(_NEW | _IN_FLIGHT)
        return {
            "quote_age_s": {
                "p50": _age_percentile(quoted, 0.50, now),
                "p95": _age_percentile(quoted, 0.95, now),
                "max": now - quoted[0] if quoted else None,
            },
            "never_quoted": never,
            "queue": {
                "urgent": flags.count(_URGENT),  # exactly URGENT: not in flight
                "asked": sum(1 for f in flags if f & (_ASKED | _IN_FLIGHT | _FREE) == _ASKED),
                "new": new,
                "overdue": overdue,
                "in_flight": self._in_flight,
            },
            "probes": self.probes,
            "probe_differences": self.probe_differences,
            "probe_hits": self.probe_hits,
            "probe_hit_rate": self.probe_hits / self.probes if self.probes else None,
            "asins": len(self._index),
            "max_quote_age_s": self.policy.max_quote_age_s,
            "mean_rate_per_day": self.mean_rate() * DAY_S,
        }


def _censored_events(changes: int, intervals: int) -> float:
    """The events a stored history most likely hid, taking its intervals as equal.

    ``changes`` of ``intervals`` quote-to-quote intervals showed a change; for a Poisson
    process at rate r over intervals of length d, P(changed) = 1 - exp(-r d), so the maximum
    likelihood is r d = -ln(1 - changes / intervals), i.e. ``-intervals x ln(1 - share)``
    events over the history. A history where every interval changed has no finite
    estimate: the share is capped at (intervals - 0.5) / intervals. Never below ``changes``.
    """
    share = min(changes, intervals - 0.5) / intervals
    return max(float(changes), -intervals * math.log1p(-share))


def _age_percentile(last_quotes: list[float], share: float, now: float) -> float | None:
    """Nearest rank over the ages of ``last_quotes`` (sorted, oldest first): the smallest age
    with at least ``share`` of the ages at or below it."""
    if not last_quotes:
        return None
    rank = max(0, math.ceil(share * len(last_quotes)) - 1)  # among ages, youngest first
    return now - last_quotes[len(last_quotes) - 1 - rank]
