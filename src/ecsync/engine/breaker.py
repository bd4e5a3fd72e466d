"""The mass-hide breaker, for a cycle whose plan arrives in batches.

The guard's rule is "if more than ``max_hide_fraction`` of an account's listed items would be
hidden this cycle, hold all those hides": a sudden mass sell-out is more likely an upstream
fault than a market. A pipelined cycle sees the plan a batch at a time, so it cannot know
the cycle's total before pushing; holding every hide to the end would leave sold-out items
on sale for the length of the fetch, which costs money too. So each account's hides wait
only until a *sample* of its listed items has been planned (200, or the whole account when
smaller); if the sample's hide rate is over the limit, every hide of the account is held
this cycle, otherwise they go out at once and the rest stream. Listings are planned in
quote-age order, which is unrelated to availability, so the sample is a fair one. Past the
sample, the pure planner still holds hides once the running total crosses the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ecsync.domain.plan import ChangeKind
from ecsync.store.journal import JournaledChange

SAMPLE = 200


@dataclass
class _Account:
    need: int  # listed items to see before deciding
    seen: int = 0
    hides: int = 0
    state: str = "sampling"  # -> "open" or "tripped"
    waiting: list[JournaledChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    send: list[JournaledChange]
    hold: list[JournaledChange]


class HideBreaker:
    def __init__(
        self, fraction: Decimal, listed_total: dict[str, int], sample: int = SAMPLE
    ) -> None:
        self._fraction = fraction
        self._listed_total = listed_total
        self._sample = sample
        self._accounts: dict[str, _Account] = {}
        self.tripped: dict[str, tuple[int, int]] = {}  # account -> (hides, listed seen)

    def _account(self, name: str) -> _Account:
        if name not in self._accounts:
            need = min(self._sample, self._listed_total.get(name, 0))
            self._accounts[name] = _Account(need=need)
        return self._accounts[name]

    def admit(
        self,
        account: str,
        listed: int,
        changes: Sequence[JournaledChange],
        *,
        held_hides: int = 0,
    ) -> Verdict:
        """One account's planned changes of one batch, ``listed`` of its items on sale.

        ``held_hides``: hides the pure planner already held in this batch, because the
        running total crossed the limit over the whole account; that trips the breaker.
        """
        state = self._account(account)
        state.seen += listed
        state.hides += held_hides
        if held_hides and state.state != "tripped":
            state.state = "tripped"
            self.tripped[account] = (state.hides, state.seen)
        send: list[JournaledChange] = []
        hold: list[JournaledChange] = list(state.waiting) if state.state == "tripped" else []
        if state.state == "tripped":
            state.waiting = []
        for change in changes:
            if change.kind != ChangeKind.HIDE.value:
                send.append(change)
                continue
            state.hides += 1
            if state.state == "open":
                send.append(change)
            elif state.state == "tripped":
                hold.append(change)
            else:
                state.waiting.append(change)
        if state.state == "sampling" and state.seen >= state.need:
            verdict = self._decide(account, state)
            send += verdict.send
            hold += verdict.hold
        return Verdict(send, hold)

    def finish(self) -> Verdict:
        """Planning is over: decide for accounts whose sample never filled."""
        send: list[JournaledChange] = []
        hold: list[JournaledChange] = []
        for name, state in self._accounts.items():
            if state.state == "sampling":
                verdict = self._decide(name, state)
                send += verdict.send
                hold += verdict.hold
        return Verdict(send, hold)

    def _decide(self, name: str, state: _Account) -> Verdict:
        waiting, state.waiting = state.waiting, []
        if state.hides > self._fraction * max(state.seen, 1):
            state.state = "tripped"
            self.tripped[name] = (state.hides, state.seen)
            return Verdict([], waiting)
        state.state = "open"
        return Verdict(waiting, [])

    def is_tripped(self, account: str) -> bool:
        return account in self.tripped
