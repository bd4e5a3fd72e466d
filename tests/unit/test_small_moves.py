"""Small price moves: skipped relative to the listed price with an absolute minimum, and
journalled once per listing and target as ``skipped`` (never open, never counted as sent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.config import AccountSettings, GuardSettings
from ecsync.domain.model import ListingState
from ecsync.domain.plan import (
    ChangeKind,
    ChangeStatus,
    PlanItem,
    PlannedChange,
    SmallMove,
    plan_account,
)
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.journal import (
    cycle_change_counts,
    record_skips,
    supersede_open_changes,
)
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.schema import Account, Change, Cycle, Listing, Product

D = Decimal
LOOSE = GuardSettings(max_hide_fraction=D(1))
BASE_ACCOUNT = AccountSettings(name="base-1", platform="base")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def shown(price: int) -> ListingState:
    return ListingState(D(price), True, 1)


def skipped_oracle(listed: Decimal, new: Decimal, absolute: Decimal, pct: Decimal) -> bool:
    """The documented rule, written out: skipped when the move is under the larger of the
    absolute minimum and pct % of the listed price (under either of them, that is)."""
    move = abs(new - listed)
    return move < absolute or move < listed * pct / 100


@pytest.mark.parametrize(
    ("listed", "new", "skipped"),
    [
        (400, 409, True),  # under 10 yen (1 % would be 4)
        (400, 410, False),  # 2.5 %: sent, where the old fixed 100 yen left it 25 % off
        (400, 300, False),
        (20_000, 20_199, True),  # 1 % of 20,000 is 200
        (20_000, 19_800, False),
        (1_000, 990, False),  # exactly 10 yen = exactly 1 %: sent
    ],
)
def test_base_default_threshold(listed: int, new: int, skipped: bool) -> None:
    result = plan_account([PlanItem(1, shown(listed), shown(new), D(1))], BASE_ACCOUNT, LOOSE)
    assert (result.report.small_moves_skipped == 1) is skipped
    assert (result.changes == ()) is skipped
    assert (len(result.skipped) == 1) is skipped


def test_the_thresholds_are_configurable() -> None:
    strict = BASE_ACCOUNT.model_copy(update={"min_change": D(0), "min_change_pct": D(0)})
    one_yen = plan_account([PlanItem(1, shown(400), shown(401), D(1))], strict, LOOSE)
    assert len(one_yen.changes) == 1 and one_yen.skipped == ()
    wide = BASE_ACCOUNT.model_copy(update={"min_change": D(100), "min_change_pct": D(5)})
    move = plan_account([PlanItem(1, shown(10_000), shown(10_499), D(1))], wide, LOOSE)
    assert move.changes == () and len(move.skipped) == 1


@settings(max_examples=200, deadline=None)
@given(
    listed=st.integers(1, 200_000).map(D),
    new=st.integers(1, 200_000).map(D),
    absolute=st.integers(0, 500).map(D),
    pct=st.decimals(min_value=0, max_value=20, places=1),
)
def test_the_rule_matches_the_oracle(
    listed: Decimal, new: Decimal, absolute: Decimal, pct: Decimal
) -> None:
    expected = skipped_oracle(listed, new, absolute, pct)
    assert SmallMove(absolute, pct).is_small(listed, new) is expected


def test_a_skip_is_reported_as_a_skipped_change_with_its_reason() -> None:
    result = plan_account(
        [PlanItem(7, shown(1300), shown(1305), D(1050), "source 1000 yen -> 1305")],
        BASE_ACCOUNT,
        LOOSE,
    )
    (skip,) = result.skipped
    assert (skip.listing_id, skip.kind, skip.status) == (
        7,
        ChangeKind.PRICE_RAISE,
        ChangeStatus.SKIPPED,
    )
    assert (skip.old, skip.new) == (shown(1300), shown(1305))
    assert skip.reason.startswith("source 1000 yen -> 1305; price move 1300 -> 1305 under 13")
    assert result.planned == () and result.held == ()


def test_a_skip_beside_another_change_is_only_a_note_on_it() -> None:
    # Quantity changes (BASE restock 0 -> 1 counts as a show and carries the price): use an
    # eBay-like quantity change on BASE with stock 3 -> 1 instead.
    result = plan_account(
        [PlanItem(1, ListingState(D(1300), True, 3), ListingState(D(1305), True, 1))],
        BASE_ACCOUNT,
        LOOSE,
    )
    (change,) = result.changes
    assert change.new == ListingState(D(1300), True, 1) and "1305 under 13 skipped" in change.reason
    assert result.skipped == ()


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    upgrade_to_head(engine)
    factory = session_factory(engine)
    with transaction(factory) as s:
        account = Account(name="base-1", platform="base", active=True, created_at=NOW)
        s.add_all([account, Product(asin="B000000001"), Product(asin="B000000002")])
        s.flush()
        for n in (1, 2):
            s.add(
                Listing(
                    id=n,
                    account_id=account.id,
                    asin=f"B00000000{n}",
                    item_id=str(n),
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        for n in (1, 2, 3, 4):
            s.add(Cycle(id=n, started_at=NOW))
    return factory()


def _skip(listing: int, old: int, new: int) -> list[PlannedChange]:
    return list(
        plan_account([PlanItem(listing, shown(old), shown(new), D(1))], BASE_ACCOUNT, LOOSE).skipped
    )


def test_the_journal_keeps_one_skipped_row_per_listing_and_target(session: Session) -> None:
    at = [NOW + timedelta(hours=h) for h in range(4)]
    assert record_skips(session, 1, _skip(1, 1300, 1305) + _skip(2, 500, 505), at[0]) == 2
    assert record_skips(session, 2, _skip(1, 1300, 1305) + _skip(2, 500, 505), at[1]) == 0
    assert record_skips(session, 3, _skip(1, 1300, 1310), at[2]) == 1  # a new target
    assert record_skips(session, 4, _skip(1, 1300, 1305), at[3]) == 1  # moved back: new row
    session.flush()
    rows = session.execute(
        select(Change.listing_id, Change.cycle_id, Change.new_price, Change.status).order_by(
            Change.id
        )
    ).all()
    assert [(r[0], r[1], int(r[2]), r[3]) for r in rows] == [
        (1, 1, 1305, "skipped"),
        (2, 1, 505, "skipped"),
        (1, 3, 1310, "skipped"),
        (1, 4, 1305, "skipped"),
    ]
    # Never open: a later cycle supersedes nothing, and its counts show no planned change.
    assert supersede_open_changes(session, 5, at[3]) == 0
    assert cycle_change_counts(session, 1) == {"skipped": 2}
    session.close()
