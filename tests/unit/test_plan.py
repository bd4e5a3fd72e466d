"""Planning: diff, min_change, floor, guards and priorities; then the invariants as properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsync.config import AccountSettings, GuardSettings, PricingStrategy
from ecsync.domain.guards import (
    Decision,
    DecisionKind,
    Guard,
    HideVerdict,
    MassHideGuard,
    guard_of,
)
from ecsync.domain.model import ListingState, QuoteStatus, is_listed
from ecsync.domain.plan import (
    PRIORITY,
    ChangeKind,
    ChangeStatus,
    Plan,
    PlanItem,
    plan_account,
)
from ecsync.domain.rules import ProductQuote, desired_state

D = Decimal
BASE_ACCOUNT = AccountSettings(name="base-1", platform="base")
EBAY_ACCOUNT = AccountSettings(name="ebay-1", platform="ebay")
GUARDS = GuardSettings(min_hides=1)
LOOSE = GuardSettings(max_hide_fraction=D(1))


def base(price: int | None, visible: bool | None = True, quantity: int | None = 1) -> ListingState:
    return ListingState(D(price) if price is not None else None, visible, quantity)


def ebay(price: str, quantity: int | None) -> ListingState:
    return ListingState(D(price), None, quantity)


def plan(*items: PlanItem, account: AccountSettings = BASE_ACCOUNT, **kw: object) -> Plan:
    guards = kw.pop("guards", LOOSE)
    assert isinstance(guards, GuardSettings)
    return plan_account(items, account, guards, **kw)  # type: ignore[arg-type]


def only(result: Plan) -> tuple[ChangeKind, ListingState, ChangeStatus]:
    assert len(result.changes) == 1, result.changes
    change = result.changes[0]
    return change.kind, change.new, change.status


def test_nothing_to_do_when_desired_equals_confirmed() -> None:
    result = plan(PlanItem(1, base(1300), base(1300), D(1050)))
    assert result.changes == () and not result.report.tripped


def test_a_field_left_none_in_desired_is_left_alone() -> None:
    assert plan(PlanItem(1, base(1300, True, 3), ListingState(None, None, None))).changes == ()


def test_small_price_moves_are_skipped_and_counted() -> None:
    # BASE default: skipped under max(10 yen, 1 % of the listed price) = 13 yen at 1,300.
    result = plan(PlanItem(1, base(1300), base(1312), D(1050)))
    assert result.changes == ()
    assert result.report.small_moves_skipped == 1
    kind, new, _ = only(plan(PlanItem(1, base(1300), base(1313), D(1050))))
    assert (kind, new) == (ChangeKind.PRICE_RAISE, base(1313))
    kind, new, _ = only(plan(PlanItem(1, base(1300), base(1287), D(1050))))
    assert (kind, new) == (ChangeKind.PRICE_CUT, base(1287))


def test_ebay_min_change_is_ten_cents_or_one_percent() -> None:
    small = PlanItem(1, ebay("20.00", 1), ebay("20.19", 1), D(10))  # max(0.10, 0.20)
    assert plan(small, account=EBAY_ACCOUNT).changes == ()
    big = PlanItem(1, ebay("20.00", 1), ebay("20.20", 1), D(10))
    assert only(plan(big, account=EBAY_ACCOUNT))[0] is ChangeKind.PRICE_RAISE
    cheap = PlanItem(1, ebay("5.00", 1), ebay("5.10", 1), D(1))  # 1 % is 0.05: 0.10 rules
    assert only(plan(cheap, account=EBAY_ACCOUNT))[0] is ChangeKind.PRICE_RAISE


def test_a_price_under_the_floor_is_fixed_however_small_the_move() -> None:
    kind, new, status = only(plan(PlanItem(1, base(1000), base(1060), D(1050))))
    assert (kind, new, status) == (ChangeKind.PRICE_FIX, base(1060), ChangeStatus.PLANNED)


def test_showing_again_carries_the_new_price_however_small_the_move() -> None:
    result = plan(PlanItem(1, base(1300, False, 0), base(1350, True, 1), D(1050), "source ok"))
    kind, new, _ = only(result)
    assert (kind, new) == (ChangeKind.SHOW, base(1350, True, 1))
    assert result.changes[0].reason == "source ok"
    restock = plan(PlanItem(1, base(1300, True, 0), base(1300, True, 1)))
    assert only(restock)[0] is ChangeKind.SHOW


def test_a_listed_price_under_the_floor_is_hidden_instead() -> None:
    result = plan(PlanItem(1, base(1000), base(1000), D(1050)))
    kind, new, _ = only(result)
    assert (kind, new) == (ChangeKind.HIDE, base(1000, False, 1))
    assert result.report.below_floor == 1
    assert "floor" in result.changes[0].reason
    ebay_result = plan(PlanItem(1, ebay("9", 1), ebay("9", 1), D(10)), account=EBAY_ACCOUNT)
    assert only(ebay_result)[:2] == (ChangeKind.HIDE, ebay("9", 0))


def test_a_hidden_listing_keeps_its_price_until_shown() -> None:
    assert plan(PlanItem(1, base(1000, False), base(5000, False))).changes == ()
    kind, new, _ = only(plan(PlanItem(1, base(1000, True), base(5000, False))))
    assert (kind, new) == (ChangeKind.HIDE, base(1000, False))


def test_deep_cuts_are_held() -> None:
    deep = plan(PlanItem(1, base(1000), base(400)), guards=GUARDS)
    assert only(deep)[2] is ChangeStatus.HELD
    assert deep.report.held_drops == 1 and deep.report.tripped
    assert "max_drop_pct" in deep.changes[0].reason
    half = plan(PlanItem(1, base(1000), base(500)), guards=GUARDS)  # exactly 50%: allowed
    assert only(half)[2] is ChangeStatus.PLANNED
    show = plan(PlanItem(1, base(1000, False), base(300, True)), guards=GUARDS)
    assert only(show)[:3:2] == (ChangeKind.SHOW, ChangeStatus.HELD)


def _listed(n: int, hide: int) -> list[PlanItem]:
    return [
        PlanItem(i, base(1000), base(1000, visible=i >= hide), reason="out of stock")
        for i in range(n)
    ]


def test_mass_hide_holds_every_hide_and_reports() -> None:
    allowed = plan(*_listed(10, 3), guards=GUARDS)  # 3 of 10 is not more than 30%
    assert [c.status for c in allowed.changes] == [ChangeStatus.PLANNED] * 3
    held = plan(*_listed(10, 4), PlanItem(99, base(1000), base(1200)), guards=GUARDS)
    statuses = {c.listing_id: c.status for c in held.changes}
    assert [statuses[i] for i in range(4)] == [ChangeStatus.HELD] * 4
    assert statuses[99] is ChangeStatus.PLANNED  # other changes still go
    report = held.report
    assert (report.listed, report.hides, report.held_hides, report.mass_hide_tripped) == (
        11,
        4,
        4,
        True,
    )
    assert "4 of 11" in held.changes[0].reason


def test_an_account_of_two_listings_hiding_one_is_not_a_mass_hide() -> None:
    guards = GuardSettings()  # min_hides 5 by default
    assert guards.min_hides == 5
    small = plan(*_listed(2, 1), guards=guards)
    assert [c.status for c in small.changes] == [ChangeStatus.PLANNED]
    assert not small.report.mass_hide_tripped
    four = plan(*_listed(10, 4), guards=guards)  # 40 % but only 4 hides
    assert not four.report.mass_hide_tripped
    five = plan(*_listed(10, 5), guards=guards)  # 50 % and 5 hides
    assert five.report.mass_hide_tripped and five.report.held_hides == 5


def test_listings_shown_by_the_same_plan_count_as_listed() -> None:
    # 4 hides of 10 listed would trip the guard; 4 shows in the same plan make it 4 of 14.
    shows = [PlanItem(100 + i, base(1000, False), base(1000, True)) for i in range(4)]
    result = plan(*_listed(10, 4), *shows, guards=GUARDS)
    assert result.report.listed == 14 and not result.report.mass_hide_tripped
    # ... so that the same hides are not held once the shows have been pushed.
    pushed = plan(*_listed(10, 4), *(replace(s, confirmed=s.desired) for s in shows), guards=GUARDS)
    assert not pushed.report.mass_hide_tripped


def _guard(listed_total: int, sample: int = 200) -> MassHideGuard[int]:
    return MassHideGuard(GUARDS.max_hide_fraction, GUARDS.min_hides, listed_total, sample)


def test_mass_hide_counts_across_batches_in_the_account_guard() -> None:
    guard = _guard(100, sample=4)
    first = plan(*_listed(4, 1), guards=GUARDS, hide_guard=guard)  # 1 of 4 sampled: open
    assert first.hide_verdict is HideVerdict.SEND and first.guarded == {0}
    guard.hides += 26  # batches in between hid 26 more
    tripped = plan(*_listed(4, 4), guards=GUARDS, hide_guard=guard)  # 31 of 100
    assert tripped.report.mass_hide_tripped and tripped.hide_verdict is HideVerdict.HOLD
    assert all(c.status is ChangeStatus.HELD for c in tripped.changes)
    assert "31 of 100" in tripped.changes[0].reason


def test_hides_wait_while_the_sample_fills() -> None:
    guard = _guard(100, sample=50)
    result = plan(*_listed(10, 2), guards=GUARDS, hide_guard=guard)
    assert result.hide_verdict is HideVerdict.WAIT
    assert [c.status for c in result.changes] == [ChangeStatus.PLANNED] * 2
    assert result.guarded == {0, 1}


def _decision(kind: DecisionKind, target: ListingState, guard: Guard) -> Decision:
    return Decision(kind, 7, target, guard, "cli", NOW)


def test_a_release_lifts_only_its_guard_for_the_same_target() -> None:
    cut = PlanItem(1, base(1000), base(400), D(300))
    released = {1: _decision(DecisionKind.RELEASED, base(400), Guard.MAX_DROP)}
    result = plan(cut, guards=GUARDS, decisions=released)
    assert only(result) == (ChangeKind.PRICE_CUT, base(400), ChangeStatus.PLANNED)
    assert "released by cli" in result.changes[0].reason and result.report.released == 1
    other = plan(replace(cut, desired=base(350)), guards=GUARDS, decisions=released)
    assert only(other)[2] is ChangeStatus.HELD  # another target: the guard holds again
    under = plan(replace(cut, floor=D(450)), guards=GUARDS, decisions=released)
    assert only(under)[:2] == (ChangeKind.HIDE, base(1000, False))  # the floor never lifts


def test_released_hides_go_out_past_a_tripped_guard_and_are_not_counted() -> None:
    items = _listed(10, 6)
    released = {
        i: _decision(DecisionKind.RELEASED, base(1000, visible=False), Guard.MASS_HIDE)
        for i in range(6)
    }
    result = plan(*items, guards=GUARDS, decisions=released)
    assert [c.status for c in result.changes] == [ChangeStatus.PLANNED] * 6
    assert not result.report.mass_hide_tripped and result.guarded == frozenset()
    some = plan(*items, guards=GUARDS, decisions={k: released[k] for k in (0, 1)})
    statuses = {c.listing_id: c.status for c in some.changes}
    assert statuses == {0: ChangeStatus.PLANNED, 1: ChangeStatus.PLANNED} | {
        i: ChangeStatus.HELD for i in range(2, 6)
    }


def test_a_rejected_target_is_left_out_and_another_is_planned() -> None:
    cut = PlanItem(1, base(1000), base(400))
    rejected = {1: _decision(DecisionKind.REJECTED, base(400), Guard.MAX_DROP)}
    kept = plan(cut, guards=GUARDS, decisions=rejected)
    assert kept.changes == () and kept.report.rejected_kept == 1
    moved = plan(replace(cut, desired=base(380)), guards=GUARDS, decisions=rejected)
    assert only(moved)[1:] == (base(380), ChangeStatus.HELD)


def test_priorities_put_protection_first() -> None:
    result = plan(
        PlanItem(1, base(1000), base(900)),  # cut
        PlanItem(2, base(1000, False), base(1000, True)),  # show
        PlanItem(3, base(1000), base(1200)),  # raise
        PlanItem(4, base(1000), base(1000, False)),  # hide
        PlanItem(5, base(1000), base(1100), D(1050)),  # fix
    )
    kinds = [c.kind for c in result.changes]
    assert kinds == [
        ChangeKind.HIDE,
        ChangeKind.PRICE_FIX,
        ChangeKind.PRICE_RAISE,
        ChangeKind.SHOW,
        ChangeKind.PRICE_CUT,
    ]
    assert [c.priority for c in result.changes] == sorted(c.priority for c in result.changes)


def test_ebay_kinds() -> None:
    def kind(old: ListingState, new: ListingState) -> ChangeKind:
        return only(plan(PlanItem(1, old, new), account=EBAY_ACCOUNT))[0]

    assert kind(ebay("20", 1), ebay("20", 0)) is ChangeKind.HIDE
    assert kind(ebay("20", 0), ebay("20", 1)) is ChangeKind.SHOW
    assert kind(ebay("20", 3), ebay("20", 1)) is ChangeKind.QUANTITY


def test_one_change_carries_every_field() -> None:
    kind, new, _ = only(plan(PlanItem(1, base(1000, True, 0), base(1500, True, 2))))
    assert (kind, new) == (ChangeKind.SHOW, base(1500, True, 2))


def test_a_listing_twice_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        plan(PlanItem(1, base(1), base(2)), PlanItem(1, base(1), base(3)))


# ---------------------------------------------------------------- properties

prices = st.integers(1, 40).map(lambda n: D(n * 50))
platform_states = {
    "base": st.builds(
        ListingState,
        price=st.none() | prices,
        visible=st.none() | st.booleans(),
        quantity=st.none() | st.integers(0, 3),
    ),
    "ebay": st.builds(
        ListingState,
        price=st.none() | prices,
        visible=st.none(),
        quantity=st.none() | st.integers(0, 3),
    ),
}
guard_settings = st.builds(
    GuardSettings,
    max_drop_pct=st.sampled_from([D(10), D(50), D(90)]),
    max_hide_fraction=st.sampled_from([D("0.1"), D("0.3"), D(1)]),
    min_hides=st.sampled_from([1, 2, 5]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[AccountSettings, GuardSettings, list[PlanItem]]:
    account = draw(st.sampled_from([BASE_ACCOUNT, EBAY_ACCOUNT]))
    states = platform_states[account.platform]
    items = [
        PlanItem(i, draw(states), draw(states), draw(st.none() | prices))
        for i in range(draw(st.integers(0, 12)))
    ]
    return account, draw(guard_settings), items


def _apply(items: list[PlanItem], result: Plan) -> list[PlanItem]:
    new = {c.listing_id: c.new for c in result.changes if c.status is ChangeStatus.PLANNED}
    return [replace(item, confirmed=new.get(item.listing_id, item.confirmed)) for item in items]


def _merged(item: PlanItem) -> ListingState:
    c, d = item.confirmed, item.desired
    return ListingState(
        d.price if d.price is not None else c.price,
        d.visible if d.visible is not None else c.visible,
        d.quantity if d.quantity is not None else c.quantity,
    )


@settings(max_examples=120)
@given(scenario=scenarios())
def test_no_price_is_ever_set_or_left_listed_under_its_floor(
    scenario: tuple[AccountSettings, GuardSettings, list[PlanItem]],
) -> None:
    account, guards, items = scenario
    result = plan_account(items, account, guards)
    floors = {item.listing_id: item.floor for item in items}
    for change in result.changes:
        floor = floors[change.listing_id]
        if floor is not None and change.new.price != change.old.price:
            assert change.new.price is not None and change.new.price >= floor
    held = {c.listing_id for c in result.changes if c.status is ChangeStatus.HELD}
    for item in _apply(items, result):
        state, floor = item.confirmed, item.floor
        if item.listing_id in held or floor is None or state.price is None:
            continue
        assert not is_listed(account.platform, state) or state.price >= floor


@settings(max_examples=120)
@given(scenario=scenarios())
def test_planning_again_after_applying_leaves_only_the_held_changes(
    scenario: tuple[AccountSettings, GuardSettings, list[PlanItem]],
) -> None:
    account, guards, items = scenario
    first = plan_account(items, account, guards)
    second = plan_account(_apply(items, first), account, guards)
    assert second.planned == ()
    assert [(c.listing_id, c.kind, c.new) for c in second.held] == [
        (c.listing_id, c.kind, c.new) for c in first.held
    ]


@settings(max_examples=120)
@given(scenario=scenarios())
def test_changes_only_where_desired_differs_and_only_in_those_fields(
    scenario: tuple[AccountSettings, GuardSettings, list[PlanItem]],
) -> None:
    account, guards, items = scenario
    result = plan_account(items, account, guards)
    by_id = {item.listing_id: item for item in items}
    assert len({c.listing_id for c in result.changes}) == len(result.changes)
    for change in result.changes:
        item = by_id[change.listing_id]
        target = _merged(item)
        assert change.old == item.confirmed
        assert change.new != change.old
        below_floor = (
            item.floor is not None and target.price is not None and target.price < item.floor
        )
        assert target != item.confirmed or below_floor
        for field in ("price", "visible", "quantity"):
            old, new = getattr(change.old, field), getattr(change.new, field)
            if new != old and not (below_floor and change.kind is ChangeKind.HIDE):
                assert new == getattr(target, field)


@settings(max_examples=120)
@given(scenario=scenarios())
def test_priority_order_and_kinds(
    scenario: tuple[AccountSettings, GuardSettings, list[PlanItem]],
) -> None:
    account, guards, items = scenario
    changes = plan_account(items, account, guards).changes
    assert [(c.priority, c.listing_id) for c in changes] == sorted(
        (c.priority, c.listing_id) for c in changes
    )
    assert all(c.priority == PRIORITY[c.kind] for c in changes)
    kinds = [c.kind for c in changes]
    if ChangeKind.HIDE in kinds and ChangeKind.PRICE_CUT in kinds:
        last_hide = max(i for i, k in enumerate(kinds) if k is ChangeKind.HIDE)
        assert last_hide < kinds.index(ChangeKind.PRICE_CUT)
    for change in changes:
        if change.kind is ChangeKind.HIDE:
            assert is_listed(account.platform, change.old)
            assert not is_listed(account.platform, change.new)
            assert change.new.price == change.old.price
        if change.kind is ChangeKind.PRICE_CUT:
            assert change.old.price is not None and change.new.price is not None
            assert change.new.price < change.old.price
        if change.kind in (ChangeKind.PRICE_RAISE, ChangeKind.PRICE_FIX) and change.old.price:
            assert change.new.price is not None and change.new.price > change.old.price


@settings(max_examples=120)
@given(scenario=scenarios())
def test_held_changes_match_the_guard_definitions_exactly(
    scenario: tuple[AccountSettings, GuardSettings, list[PlanItem]],
) -> None:
    account, guards, items = scenario
    result = plan_account(items, account, guards)
    report = result.report
    hides = [c for c in result.changes if c.kind is ChangeKind.HIDE]
    tripped = (
        len(hides) > guards.max_hide_fraction * max(report.listed, 1)
        and len(hides) >= guards.min_hides
    )
    assert report.mass_hide_tripped == tripped
    for change in result.changes:
        old, new = change.old.price, change.new.price
        deep = (
            old is not None
            and new is not None
            and old > 0
            and (old - new) / old * 100 > (guards.max_drop_pct)
        )
        if change.kind is ChangeKind.HIDE:
            assert (change.status is ChangeStatus.HELD) == tripped
        else:
            assert (change.status is ChangeStatus.HELD) == deep
    assert report.held_hides == (len(hides) if tripped else 0)
    assert report.held_drops == sum(
        c.status is ChangeStatus.HELD and c.kind is not ChangeKind.HIDE for c in result.changes
    )


# ---------------------------------------------------------------- rules + plan together

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
MARKUP = PricingStrategy(kind="markup")


@settings(max_examples=80)
@given(
    sources=st.lists(
        st.tuples(
            st.sampled_from([QuoteStatus.OK, QuoteStatus.OUT_OF_STOCK, QuoteStatus.ERROR]),
            st.integers(100, 20_000).map(D),
            st.integers(0, 10).map(lambda h: NOW - timedelta(hours=h)),
        ),
        max_size=10,
    ),
    confirmed=st.lists(platform_states["base"], min_size=10, max_size=10),
)
def test_a_second_cycle_over_an_unchanged_market_writes_nothing(
    sources: list[tuple[QuoteStatus, Decimal, datetime]], confirmed: list[ListingState]
) -> None:
    quotes = [
        ProductQuote(QuoteStatus.OK, price, at, "timeout")
        if status is QuoteStatus.ERROR
        else ProductQuote(status, price if status is QuoteStatus.OK else None, at)
        for status, price, at in sources
    ]

    def items(states: list[ListingState]) -> list[PlanItem]:
        result = []
        for i, quote in enumerate(quotes):
            desired = desired_state(
                BASE_ACCOUNT, MARKUP, quote, states[i], NOW, default_stale_after=timedelta(hours=6)
            )
            result.append(PlanItem(i, states[i], desired.state, desired.floor, desired.reason))
        return result

    first = plan_account(items(confirmed), BASE_ACCOUNT, GUARDS)
    applied = {c.listing_id: c.new for c in first.planned}
    after = [applied.get(i, state) for i, state in enumerate(confirmed)]
    second = plan_account(items(after), BASE_ACCOUNT, GUARDS)
    assert second.planned == ()


# ---------------------------------------------------------------- the seller's decisions


@settings(max_examples=120)
@given(scenario=scenarios(), reject=st.booleans())
def test_a_release_sends_exactly_the_held_targets_and_a_rejection_leaves_them_out(
    scenario: tuple[AccountSettings, GuardSettings, list[PlanItem]], reject: bool
) -> None:
    account, guards, items = scenario
    first = plan_account(items, account, guards)
    kind = DecisionKind.REJECTED if reject else DecisionKind.RELEASED
    decisions = {
        c.listing_id: Decision(kind, c.listing_id, c.new, guard_of(c.kind.value), "cli", NOW)
        for c in first.held
    }
    second = plan_account(items, account, guards, decisions=decisions)
    by_id = {c.listing_id: c for c in second.changes}
    for held in first.held:
        if reject:
            assert held.listing_id not in by_id
        else:
            again = by_id[held.listing_id]
            assert (again.kind, again.new, again.status) == (
                held.kind,
                held.new,
                ChangeStatus.PLANNED,
            )
    untouched = [c for c in first.changes if c.listing_id not in decisions]
    assert [(c.listing_id, c.new) for c in untouched] == [
        (c.listing_id, c.new) for c in second.changes if c.listing_id not in decisions
    ]
    floors = {item.listing_id: item.floor for item in items}
    for change in second.planned:  # the floor is never lifted
        floor = floors[change.listing_id]
        if floor is not None and change.new.price != change.old.price:
            assert change.new.price is not None and change.new.price >= floor
