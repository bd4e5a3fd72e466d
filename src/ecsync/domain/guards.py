"""The mass-hide guard, and the seller's decisions on held changes: one home for each rule.

Mass-hide rule: if more than ``max_hide_fraction`` of an account's listed items, and at least
``min_hides`` of them, would be hidden this cycle, hold every one of those hides: a sudden mass
sell-out is more likely an upstream fault than a market, while 1 hide of 2 listings is no
"mass" at all.

A pipelined cycle sees its plan a batch at a time, so it cannot know the cycle's total before
pushing; holding every hide to the end would leave sold-out items on sale for the length of
the fetch, which costs money too. So an account's hides *wait* only until a sample of its
listed items has been planned (``SAMPLE``, or the whole account when smaller): if the
sample's hide rate is over the limit the guard trips and every hide of the account is held
this cycle, otherwise it opens and hides are sent at once. Listings are planned in quote-age
order, which is unrelated to availability, so the sample is a fair one. Past the sample
(and during it), the guard also trips once the running total crosses the limit over the
whole account; hides already sent stay sent, every later one is held.

Continuous mode (``RollingHideGuard``) cannot sample: the refresher quotes by priority and
its probes surface sold-out ASINs *first*, so the first listings planned are mostly real
sell-outs and any sample is biased towards hides; and a sold-out item must go off sale within
seconds, so nothing may wait. The rule there is a rolling window over time
(``[guards] window``, 1 h, on the ``time_scale`` clock): the account's hides asked for in the
last window (read from the journal when a reporting window starts, so the count survives
window boundaries and restarts) plus this batch's. When that total is ``min_hides`` or more
and over ``window_hide_fraction`` of the account's listed items, the batch's hides and every
later one are held, until the hides of the last window fall back to the limit. A hide is
counted whatever became of it (sent, applied, held, released, rejected, superseded): the
guard measures how many hides the source *asked for*; counting the held ones is what keeps it
tripped while a fault goes on, and a listing re-planned while held counts again (errs on the
side of holding). A seller's release sends the released hides (as in sweep mode) but does not
reset the window: the seller judged the hides they saw, and a further burst is new evidence;
the trip lifts by itself once the held hides are older than the window.

Why a separate, lower fraction (``window_hide_fraction``, default 5 %) and not
``max_hide_fraction`` (30 %) per window: the limit is what an upstream fault (every ASIN
answered with no offers) gets through before the guard trips. The refresher full-quotes
contradicted ASINs first, so at 16,000 listings 30 % would hide 4,800 items within minutes;
5 % caps that at 800. A normal market is far below it: at one offer change per product per
day, of which about 12 % are sell-outs, about 0.5 % of listings sell out per hour: 5 % per hour
leaves ten times that as headroom, and ``min_hides`` keeps a small shop from tripping on a
handful. A fraction rather than an absolute ``max_hides_per_window`` because both the normal
sell-out rate and the harm of a fault scale with the shop.

``MassHideGuard`` and ``RollingHideGuard`` are the only places that count: the planner asks
one for a verdict, the engine routes the journaled hides through it, and the preview and the
journal read its reason text. Both are pure (no I/O; the rolling one is told the time), so
their properties are tested on plain data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final, Generic, Protocol, TypeVar

from ecsync.domain.model import ListingState

__all__ = [
    "SAMPLE",
    "Decision",
    "DecisionKind",
    "Guard",
    "HideGuard",
    "HideVerdict",
    "MassHideGuard",
    "RollingHideGuard",
    "Routed",
    "guard_of",
    "over_limit",
    "releases_done",
]

SAMPLE: Final = 200

T = TypeVar("T")


class HideVerdict(StrEnum):
    """What happens to an account's hides now."""

    WAIT = "wait"  # still sampling: journaled, not sent yet
    SEND = "send"  # the guard is open
    HOLD = "hold"  # the guard tripped: held for the seller


class Guard(StrEnum):
    """The guards that hold a change for a person; the floor is not one (it never lifts)."""

    MASS_HIDE = "mass_hide"
    MAX_DROP = "max_drop"


def guard_of(kind: str) -> Guard:
    """Which guard held a change of this kind: only hides are held by the mass-hide guard,
    and a hide never moves a price, so every other held change was a cut over max_drop_pct."""
    return Guard.MASS_HIDE if kind == "hide" else Guard.MAX_DROP


@dataclass(frozen=True, slots=True)
class Routed(Generic[T]):
    """Hides the guard has decided on: to push now, or to hold."""

    send: list[T] = field(default_factory=list)
    hold: list[T] = field(default_factory=list)


@dataclass
class MassHideGuard(Generic[T]):
    """One account's mass-hide guard for one cycle.

    ``listed_total`` is the account's listed items when the cycle started (the whole-account
    denominator); ``sample`` the listed items to see before deciding. ``judge`` counts one
    batch and answers for its hides; ``route`` then takes the batch's journaled hides (any
    type: the engine passes journal rows) and returns those decided, keeping the rest
    waiting; ``finish`` decides for a sample that never filled.
    """

    fraction: Decimal
    min_hides: int
    listed_total: int
    sample: int = SAMPLE
    seen: int = 0
    hides: int = 0
    verdict: HideVerdict = HideVerdict.WAIT
    tripped_on: tuple[int, int] | None = None  # (hides, of listed items) when it tripped
    _waiting: list[T] = field(default_factory=list)

    @classmethod
    def whole(cls, fraction: Decimal, min_hides: int, listed: int) -> MassHideGuard[T]:
        """A guard over one plan that is the whole account: it decides on the first batch."""
        return cls(fraction, min_hides, listed_total=listed, sample=listed)

    @property
    def need(self) -> int:
        return min(self.sample, self.listed_total)

    @property
    def tripped(self) -> bool:
        return self.verdict is HideVerdict.HOLD

    def over(self, hides: int, listed: int) -> bool:
        """The rule itself: more than the fraction, and at least ``min_hides``."""
        return over_limit(self.fraction, self.min_hides, hides, listed)

    def judge(self, listed: int, hides: int) -> HideVerdict:
        """Count one batch (``listed`` of its items on sale, ``hides`` guarded hides)."""
        self.seen += listed
        self.hides += hides
        if self.verdict is HideVerdict.HOLD:
            return self.verdict
        whole = max(self.listed_total, self.seen)
        if self.over(self.hides, whole):
            self._trip(whole)
        elif self.verdict is HideVerdict.WAIT and self.seen >= self.need:
            self._decide()
        return self.verdict

    def route(self, hides: list[T]) -> Routed[T]:
        """The batch's journaled hides (those ``judge`` just counted and did not hold)."""
        if self.verdict is HideVerdict.WAIT:
            self._waiting += hides
            return Routed()
        waiting, self._waiting = self._waiting, []
        if self.verdict is HideVerdict.SEND:
            return Routed(send=waiting + hides)
        return Routed(hold=waiting + hides)

    def finish(self) -> Routed[T]:
        """Planning is over: decide on what was sampled, if the sample never filled."""
        if self.verdict is HideVerdict.WAIT:
            self._decide()
        return self.route([])

    def reason(self) -> str:
        """Why this account's hides are held: one text for the journal, preview and log."""
        hides, of = self.tripped_on or (self.hides, self.seen)
        sampled = " sampled" if of < self.listed_total else ""
        return (
            f"held: mass-hide guard: {hides} of {of} listed items{sampled} would be hidden "
            f"this cycle (max {self.fraction:%}, at least {self.min_hides}); check the source, "
            "then `ecsync changes release` or `reject`"
        )

    def _decide(self) -> None:
        if self.over(self.hides, self.seen):
            self._trip(self.seen)
        else:
            self.verdict = HideVerdict.SEND

    def _trip(self, of: int) -> None:
        self.verdict = HideVerdict.HOLD
        self.tripped_on = (self.hides, max(of, 1))


def over_limit(fraction: Decimal, min_hides: int, hides: int, listed: int) -> bool:
    """The rule both guards share: more than the fraction, and at least ``min_hides``."""
    return hides >= min_hides and hides > fraction * max(listed, 1)


class HideGuard(Protocol[T]):
    """What the planner needs of an account's mass-hide guard, in either mode."""

    @property
    def tripped(self) -> bool: ...

    def judge(self, listed: int, hides: int) -> HideVerdict: ...

    def route(self, hides: list[T]) -> Routed[T]: ...

    def finish(self) -> Routed[T]: ...

    def reason(self) -> str: ...


@dataclass
class RollingHideGuard(Generic[T]):
    """One account's mass-hide guard in continuous mode: hides over a rolling time window.

    ``listed_total`` is the account's listed items when the reporting window started;
    ``recent`` the times of the hides the journal already holds from the last ``window``.
    Call ``at(now)`` before each ``judge``: it drops hides older than the window. ``judge``
    counts one batch's hides at ``now`` (held ones too) and answers SEND or HOLD, never WAIT.
    """

    fraction: Decimal
    min_hides: int
    listed_total: int
    window: timedelta
    recent: Iterable[datetime] = ()
    now: datetime | None = None
    verdict: HideVerdict = HideVerdict.SEND
    tripped_on: tuple[int, int] | None = None  # (hides in the window, listed) at the 1st trip
    _times: deque[datetime] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._times = deque(sorted(self.recent))
        self.recent = ()

    @property
    def tripped(self) -> bool:
        """Tripped at least once this reporting window (what the cycle reports)."""
        return self.tripped_on is not None

    @property
    def in_window(self) -> int:
        """Hides asked for in the window ending at ``now`` (as of the last ``at``)."""
        return len(self._times)

    def at(self, now: datetime) -> None:
        """Move the window's end to ``now``: hides asked for before ``now - window`` leave."""
        self.now = now
        start = now - self.window
        while self._times and self._times[0] < start:
            self._times.popleft()

    def judge(self, listed: int, hides: int) -> HideVerdict:
        """Count one batch's guarded hides (``listed`` is unused: the denominator is the
        account's listed total, as a batch in priority order says nothing of the rest)."""
        if self.now is None:
            raise ValueError("RollingHideGuard.judge before at(now): the window has no end")
        total = len(self._times) + hides
        if over_limit(self.fraction, self.min_hides, total, self.listed_total):
            self.verdict = HideVerdict.HOLD
            if self.tripped_on is None:
                self.tripped_on = (total, max(self.listed_total, 1))
        else:
            self.verdict = HideVerdict.SEND
        self._times.extend([self.now] * hides)
        return self.verdict

    def route(self, hides: list[T]) -> Routed[T]:
        """The batch's journaled hides that ``judge`` just counted and did not hold."""
        if self.verdict is HideVerdict.HOLD:
            return Routed(hold=list(hides))
        return Routed(send=list(hides))

    def finish(self) -> Routed[T]:
        """Nothing ever waits in continuous mode."""
        return Routed()

    def reason(self) -> str:
        hides, of = self.tripped_on or (len(self._times), max(self.listed_total, 1))
        return (
            f"held: mass-hide guard: {hides} hides of {of} listed items within "
            f"{_duration(self.window)} (max {self.fraction:%} per window, at least "
            f"{self.min_hides}); check the source, then `ecsync changes release` or `reject`"
        )


def _duration(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{window.total_seconds():g} s"


class DecisionKind(StrEnum):
    RELEASED = "released"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Decision:
    """The seller's word on a held change, still in force for its listing.

    ``released``: the next plan that reaches the same ``target`` goes out without ``guard``
    (the floor still applies: it shapes the target before any guard). ``rejected``: a plan
    that reaches the same ``target`` is left out, until the source moves (the store stops
    handing the decision over once the product's price or availability changed after it).
    """

    kind: DecisionKind
    change_id: int
    target: ListingState
    guard: Guard
    by: str
    at: datetime

    def note(self) -> str:
        when = self.at.strftime("%Y-%m-%d %H:%M UTC")
        if self.kind is DecisionKind.RELEASED:
            return f"released by {self.by} at {when} (change {self.change_id}): {self.guard} lifted"
        return f"rejected by {self.by} at {when} (change {self.change_id}): kept as is"


def releases_done(
    decisions: Mapping[int, Decision],
    planned: Mapping[int, ListingState],
    confirmed: Mapping[int, ListingState],
) -> list[int]:
    """The releases (change ids) a plan has done with, given its listings' planned targets
    and confirmed states: done once the channel shows the target, or once a plan asks for
    something else (the source moved). While a plan still asks for the same target the
    release stays, so a push lost to a crash or refused by the channel is released again
    next cycle; a plan kept as is for want of a good quote leaves it waiting too."""
    done = []
    for listing_id, decision in decisions.items():
        if decision.kind is not DecisionKind.RELEASED:
            continue
        if listing_id in planned:
            finished = planned[listing_id] != decision.target
        else:
            finished = confirmed.get(listing_id) == decision.target
        if finished:
            done.append(decision.change_id)
    return done
