"""Desired vs confirmed -> the changes to push, guarded and in the order that limits losses.

Only differences cross the network, so this is where a cycle's channel calls are decided:
one change per listing carrying every field that differs, tiny price moves skipped (they cost
an API call and a revision for nothing), and the money guards applied last: no listed price
under the floor (such a listing is hidden instead), a price cut deeper than ``max_drop_pct``
held for a human, and a wave of hides held as a whole by the account's mass-hide guard
(``domain/guards.py``, its only home). A seller's release or rejection of a held change
(``Decision``) applies here to the same target only. Priorities put what protects money
first: hides, then raises, then shows, then cuts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, Final

from ecsync.config import AccountSettings, GuardSettings
from ecsync.domain.guards import (
    Decision,
    DecisionKind,
    Guard,
    HideGuard,
    HideVerdict,
    MassHideGuard,
)
from ecsync.domain.model import ListingState, check_platform, hidden, is_listed

__all__ = [
    "PRIORITY",
    "ChangeKind",
    "ChangeStatus",
    "GuardReport",
    "Plan",
    "PlanItem",
    "PlannedChange",
    "SmallMove",
    "hold",
    "plan_account",
]


class ChangeKind(StrEnum):
    HIDE = "hide"
    PRICE_FIX = "price_fix"  # the confirmed price is under the floor: raise it now
    PRICE_RAISE = "price_raise"
    SHOW = "show"  # shown again, or restocked (BASE stock back from 0)
    QUANTITY = "quantity"  # a quantity change that neither hides nor shows (eBay)
    PRICE_CUT = "price_cut"


class ChangeStatus(StrEnum):
    PLANNED = "planned"
    HELD = "held"  # a guard stopped it: journalled and reported, not pushed
    SKIPPED = "skipped"  # a price move under min_change: journalled once, never pushed


# Lower goes first. A hide stops overselling and a raise stops selling at a loss; a show or
# a cut only gains sales, so they can wait for the budget that remains.
PRIORITY: Final = {
    ChangeKind.HIDE: 0,
    ChangeKind.PRICE_FIX: 1,
    ChangeKind.PRICE_RAISE: 2,
    ChangeKind.SHOW: 3,
    ChangeKind.QUANTITY: 4,
    ChangeKind.PRICE_CUT: 5,
}


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One listing to plan: its confirmed state, its desired state, and its price floor.

    ``floor`` (listing currency) comes from ``rules.Desired.floor``; None means unknown.
    A ``None`` field in ``desired`` means "leave as confirmed".
    """

    listing_id: int
    confirmed: ListingState
    desired: ListingState
    floor: Decimal | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One change for one listing: ``new`` is the whole state after it (``old`` updated)."""

    listing_id: int
    kind: ChangeKind
    old: ListingState
    new: ListingState
    reason: str
    status: ChangeStatus
    priority: int


@dataclass(frozen=True, slots=True)
class GuardReport:
    """What the guards did to one account's plan.

    ``listed`` counts the plan's listed items (shows included), the count given to the
    mass-hide guard; ``hides`` counts this plan's hides (planned or held). ``below_floor``
    counts listings hidden because their price would sit under the floor;
    ``small_moves_skipped`` counts price moves under ``min_change`` left out; ``released``
    changes a seller's release let through, ``rejected_kept`` targets a rejection kept out.
    """

    listed: int = 0
    hides: int = 0
    held_hides: int = 0
    held_drops: int = 0
    below_floor: int = 0
    small_moves_skipped: int = 0
    mass_hide_tripped: bool = False
    released: int = 0
    rejected_kept: int = 0

    @property
    def tripped(self) -> bool:
        return self.mass_hide_tripped or self.held_drops > 0


@dataclass(frozen=True, slots=True)
class SmallMove:
    """When a price move is too small to be worth a channel call.

    A move is skipped when ``|new - listed| < max(absolute, pct % of the listed price)``:
    relative, so a 400-yen item is not left 25 % off by a fixed 100-yen step, with an
    absolute minimum so one-yen jitters on cheap items are not sent either.
    """

    absolute: Decimal = Decimal(0)
    pct: Decimal = Decimal(0)

    @classmethod
    def of(cls, account: AccountSettings) -> SmallMove:
        return cls(account.min_change or Decimal(0), account.min_change_pct)

    def threshold(self, listed: Decimal) -> Decimal:
        return max(self.absolute, abs(listed) * self.pct / 100)

    def is_small(self, listed: Decimal, new: Decimal) -> bool:
        return abs(new - listed) < self.threshold(listed)


@dataclass(frozen=True, slots=True)
class Plan:
    """Changes sorted by (priority, listing id), with the guards' report.

    ``hide_verdict`` is the mass-hide guard's answer for ``guarded``, the listing ids of this
    plan's hides it governs (a released hide is not among them): planned and sent, planned
    and waiting for the guard's sample, or held.
    ``skipped`` holds the price moves left out as too small (status ``skipped``), one per
    listing that has no other change: they are journalled, never pushed.
    """

    changes: tuple[PlannedChange, ...]
    report: GuardReport
    hide_verdict: HideVerdict = HideVerdict.SEND
    guarded: frozenset[int] = frozenset()
    skipped: tuple[PlannedChange, ...] = ()

    @property
    def planned(self) -> tuple[PlannedChange, ...]:
        return tuple(c for c in self.changes if c.status is ChangeStatus.PLANNED)

    @property
    def held(self) -> tuple[PlannedChange, ...]:
        return tuple(c for c in self.changes if c.status is ChangeStatus.HELD)


@dataclass(frozen=True, slots=True)
class _Draft:
    change: PlannedChange | None
    below_floor: bool
    skipped_small: bool
    skipped: PlannedChange | None = None


def plan_account(
    items: Iterable[PlanItem],
    account: AccountSettings,
    guards: GuardSettings,
    *,
    hide_guard: HideGuard[Any] | None = None,
    decisions: Mapping[int, Decision] | None = None,
) -> Plan:
    """Plan one account's changes for one cycle.

    ``hide_guard`` is the account's mass-hide guard when planning is split into batches (it
    counts across them: a sweep's sample, or continuous mode's rolling window); without one,
    this plan is the whole account and a guard over it decides at once. The plan's listed
    items are those listed once its other changes are applied (counting shows keeps the
    decision the same when re-planned after they were pushed). ``decisions`` maps listing
    ids to a seller's release or rejection in force.
    """
    platform = check_platform(account.platform)
    min_change = SmallMove.of(account)
    decisions = decisions or {}
    items = list(items)
    seen: set[int] = set()
    drafts: list[_Draft] = []
    exempt: set[int] = set()
    released = rejected = 0
    for item in items:
        if item.listing_id in seen:
            raise ValueError(f"listing {item.listing_id} appears twice in one plan")
        seen.add(item.listing_id)
        draft = _draft(item, platform, min_change, guards)
        decision = decisions.get(item.listing_id)
        if decision is not None:
            redraft = partial(_draft, item, platform, min_change)
            draft, outcome = _apply_decision(decision, draft, redraft, guards)
            released += outcome is DecisionKind.RELEASED
            rejected += outcome is DecisionKind.REJECTED
            if outcome is DecisionKind.RELEASED and decision.guard is Guard.MASS_HIDE:
                exempt.add(item.listing_id)
        drafts.append(draft)

    changes = [draft.change for draft in drafts if draft.change is not None]
    listed = sum(
        is_listed(platform, _after(item.confirmed, draft.change))
        for item, draft in zip(items, drafts, strict=True)
    )
    hides = [change for change in changes if change.kind is ChangeKind.HIDE]
    guarded = [c for c in hides if c.status is ChangeStatus.PLANNED and c.listing_id not in exempt]
    guard = hide_guard or MassHideGuard[Any].whole(
        guards.max_hide_fraction, guards.min_hides, listed
    )
    verdict = guard.judge(listed, len(guarded))
    held_hides = 0
    if verdict is HideVerdict.HOLD and guarded:
        note = guard.reason()
        ids = {c.listing_id for c in guarded}
        changes = [hold(c, note) if c.listing_id in ids else c for c in changes]
        held_hides = len(ids)
    changes.sort(key=lambda change: (change.priority, change.listing_id))
    report = GuardReport(
        listed=listed,
        hides=len(hides),
        held_hides=held_hides,
        held_drops=sum(
            c.status is ChangeStatus.HELD and c.kind is not ChangeKind.HIDE for c in changes
        ),
        below_floor=sum(draft.below_floor for draft in drafts),
        small_moves_skipped=sum(draft.skipped_small for draft in drafts),
        mass_hide_tripped=guard.tripped,
        released=released,
        rejected_kept=rejected,
    )
    skipped = tuple(draft.skipped for draft in drafts if draft.skipped is not None)
    return Plan(tuple(changes), report, verdict, frozenset(c.listing_id for c in guarded), skipped)


def _apply_decision(
    decision: Decision,
    draft: _Draft,
    redraft: Callable[[GuardSettings], _Draft],
    guards: GuardSettings,
) -> tuple[_Draft, DecisionKind | None]:
    """The draft once the seller's decision applies, and which applied (None: it did not).

    Either applies only when the plan reaches the decided target. A rejection leaves the
    change out. A release lifts only its guard: the floor shapes the target before any
    guard, so a target under the floor is a different target and no release applies to it.
    """
    change = draft.change
    if change is None:
        return draft, None
    if decision.kind is DecisionKind.REJECTED:
        if change.new != decision.target:
            return draft, None
        return replace(draft, change=None), DecisionKind.REJECTED
    lifted = draft
    if decision.guard is Guard.MAX_DROP and change.status is ChangeStatus.HELD:
        lifted = redraft(guards.model_copy(update={"max_drop_pct": Decimal(100)}))
        change = lifted.change
    elif decision.guard is Guard.MASS_HIDE and change.kind is not ChangeKind.HIDE:
        return draft, None
    if change is None or change.new != decision.target or change.status is ChangeStatus.HELD:
        return draft, None  # another target: the guard judges it as usual
    note = decision.note()
    reason = f"{change.reason}; {note}" if change.reason else note
    return replace(lifted, change=replace(change, reason=reason)), DecisionKind.RELEASED


def _after(confirmed: ListingState, change: PlannedChange | None) -> ListingState:
    """The state once the plan's non-hide, non-held change is applied."""
    if change is None or change.kind is ChangeKind.HIDE or change.status is ChangeStatus.HELD:
        return confirmed
    return change.new


def _draft(item: PlanItem, platform: str, min_change: SmallMove, guards: GuardSettings) -> _Draft:
    """The change one listing needs, if any, with the per-listing guards applied."""
    old, floor = item.confirmed, item.floor
    target = _merge(old, item.desired)
    notes: list[str] = []
    below_floor = False
    if is_listed(platform, target) and _under(target.price, floor):
        notes.append(f"price {target.price} is under the floor {floor}: hidden instead")
        target = hidden(platform, target)
        below_floor = True

    showing = _showing(platform, old, target)
    new_price, skipped_small = old.price, False
    # A listing that stays off sale keeps its price: it is set when the listing is shown.
    if is_listed(platform, target) and target.price is not None and target.price != old.price:
        small = old.price is not None and min_change.is_small(old.price, target.price)
        if small and not showing and not _under(old.price, floor):
            assert old.price is not None
            skipped_small = True
            notes.append(
                f"price move {old.price} -> {target.price} under "
                f"{_money_text(min_change.threshold(old.price))} skipped (min_change "
                f"{min_change.absolute}, min_change_pct {min_change.pct}%)"
            )
        else:
            new_price = target.price
    new = ListingState(price=new_price, visible=target.visible, quantity=target.quantity)
    if new == old:
        if not skipped_small:
            return _Draft(None, below_floor, skipped_small)
        moved = replace(old, price=target.price)
        kind = _kind(platform, old, moved, floor, showing)
        reason = "; ".join(part for part in (item.reason, *notes) if part)
        skip = PlannedChange(
            item.listing_id, kind, old, moved, reason, ChangeStatus.SKIPPED, PRIORITY[kind]
        )
        return _Draft(None, below_floor, skipped_small, skip)

    kind = _kind(platform, old, new, floor, showing)
    status = ChangeStatus.PLANNED
    drop = _drop_pct(old.price, new.price)
    if drop is not None and drop > guards.max_drop_pct:
        status = ChangeStatus.HELD
        notes.append(f"held: price cut {drop:.1f}% exceeds max_drop_pct {guards.max_drop_pct}%")
    reason = "; ".join(part for part in (item.reason, *notes) if part)
    change = PlannedChange(item.listing_id, kind, old, new, reason, status, PRIORITY[kind])
    return _Draft(change, below_floor, skipped_small)


def _money_text(amount: Decimal) -> str:
    """An amount as a seller reads it: at most two decimals, no trailing zeros."""
    text = f"{amount.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _merge(confirmed: ListingState, desired: ListingState) -> ListingState:
    """The desired state with its "no opinion" fields filled from the confirmed one."""
    return ListingState(
        price=desired.price if desired.price is not None else confirmed.price,
        visible=desired.visible if desired.visible is not None else confirmed.visible,
        quantity=desired.quantity if desired.quantity is not None else confirmed.quantity,
    )


def _under(price: Decimal | None, floor: Decimal | None) -> bool:
    return price is not None and floor is not None and price < floor


def _showing(platform: str, old: ListingState, new: ListingState) -> bool:
    """Put back on sale: listed again, visible again, or stock back from zero."""
    return (
        (not is_listed(platform, old) and is_listed(platform, new))
        or (new.visible is True and old.visible is not True)
        or (old.quantity == 0 and (new.quantity or 0) > 0)
    )


def _kind(
    platform: str, old: ListingState, new: ListingState, floor: Decimal | None, showing: bool
) -> ChangeKind:
    if is_listed(platform, old) and not is_listed(platform, new):
        return ChangeKind.HIDE
    if showing:
        return ChangeKind.SHOW
    if new.price != old.price:
        if _under(old.price, floor):
            return ChangeKind.PRICE_FIX
        if old.price is None or (new.price is not None and new.price > old.price):
            return ChangeKind.PRICE_RAISE
        return ChangeKind.PRICE_CUT
    return ChangeKind.QUANTITY


def _drop_pct(old: Decimal | None, new: Decimal | None) -> Decimal | None:
    if old is None or new is None or old <= 0 or new >= old:
        return None
    return (old - new) / old * 100


def hold(change: PlannedChange, note: str) -> PlannedChange:
    """The change held by a guard, with the guard's reason added to its own."""
    reason = f"{change.reason}; {note}" if change.reason else note
    return replace(change, reason=reason, status=ChangeStatus.HELD)
