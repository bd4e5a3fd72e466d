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

``MassHideGuard`` is the only place that counts: the planner asks it for a verdict, the
engine routes the journaled hides through it, and the preview and the journal read its
reason text. It is pure (no I/O, no clock), so its properties are tested on plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, Generic, TypeVar

from ecsync.domain.model import ListingState

__all__ = [
    "SAMPLE",
    "Decision",
    "DecisionKind",
    "Guard",
    "HideVerdict",
    "MassHideGuard",
    "Routed",
    "guard_of",
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
        return hides >= self.min_hides and hides > self.fraction * max(listed, 1)

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
