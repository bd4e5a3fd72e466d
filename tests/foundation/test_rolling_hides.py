"""Continuous mode's mass-hide guard remembers through the journal: hides journaled by the
previous reporting window (another cycle row, as after a window boundary or a restart) count
in the rolling window; older ones, and other accounts', do not.

The oracle is the rule worked by hand on the seeded rows: 20 listed items, 5 % of 20 is 1,
so ``min_hides`` 5 decides: the 5th hide within the hour trips.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ecsync.config import AccountSettings, GuardSettings, RuntimeSettings, Settings
from ecsync.engine.collect import Scope
from ecsync.engine.plan import Planner
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.journal import recent_hides
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.schema import Account, Change, Cycle, Listing, Product

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
LISTED = 20


def _seed(engine: Engine) -> None:
    """base-1: 20 listed items, 4 earlier hides (3 within the hour, in cycle 1, one of them
    twice); base-2: 3 hides within the hour. Products B..01 and B..02 are sold out now."""
    upgrade_to_head(engine)
    with transaction(session_factory(engine)) as session:
        one = Account(name="base-1", platform="base", active=True, created_at=NOW - 900 * MIN)
        two = Account(name="base-2", platform="base", active=True, created_at=NOW - 900 * MIN)
        session.add_all([one, two])
        session.add(Cycle(id=1, started_at=NOW - 70 * MIN, status="ok"))  # previous window
        session.flush()
        for i in range(1, LISTED + 1):
            sold_out = i <= 2
            session.add(
                Product(
                    asin=f"B{i:09d}",
                    quote_status="out_of_stock" if sold_out else "ok",
                    price=None if sold_out else Decimal(800),
                    fetched_at=NOW - MIN,
                )
            )
        session.flush()
        listings = []
        for i in range(1, LISTED + 1):
            listing = Listing(
                account_id=one.id,
                asin=f"B{i:09d}",
                item_id=str(i),
                confirmed_price=Decimal(1000),
                confirmed_visible=True,
                confirmed_quantity=1,
                created_at=NOW - 900 * MIN,
                updated_at=NOW - 900 * MIN,
            )
            session.add(listing)
            listings.append(listing)
        others = []
        for i in range(1, 4):
            other = Listing(
                account_id=two.id,
                asin=f"B{i + 2:09d}",
                item_id=f"o{i}",
                confirmed_visible=False,
                created_at=NOW - 900 * MIN,
                updated_at=NOW - 900 * MIN,
            )
            session.add(other)
            others.append(other)
        session.flush()

        def hide(listing: Listing, status: str, ago: int) -> None:
            session.add(
                Change(
                    cycle_id=1,
                    listing_id=listing.id,
                    kind="hide",
                    old_visible=True,
                    new_visible=False,
                    reason="sold out",
                    status=status,
                    created_at=NOW - ago * MIN,
                )
            )

        hide(listings[10], "applied", 70)  # older than the hour: out
        hide(listings[11], "applied", 50)
        hide(listings[12], "held", 40)
        hide(listings[13], "superseded", 30)  # a planned hide the new window re-planned...
        hide(listings[13], "sent", 20)  # ...as this one: one listing, counted once
        session.add(
            Change(
                cycle_id=1,
                listing_id=listings[14].id,
                kind="price_cut",
                old_price=Decimal(1000),
                new_price=Decimal(900),
                status="applied",
                created_at=NOW - 10 * MIN,
            )
        )
        for other in others:
            hide(other, "applied", 15)


def _plan_two(
    engine: Engine, time_scale: float = 1.0
) -> tuple[list[tuple[str, str, str]], Planner]:
    """A continuous-mode planner's first two batches, one sold-out ASIN each, a minute apart:
    the journal rows they wrote (asin, status, reason) and the planner."""
    settings = Settings(
        accounts=[
            AccountSettings(name="base-1", platform="base"),
            AccountSettings(name="base-2", platform="base"),
        ],
        guards=GuardSettings(min_hides=5),
        runtime=RuntimeSettings(time_scale=time_scale),
    )
    planner = Planner(
        settings,
        Scope(),
        cycle_id=2,
        stock_only=False,
        default_stale_after=timedelta(hours=6),
        keep_preview=False,
        continuous=True,
    )
    with transaction(session_factory(engine)) as session:
        session.add(Cycle(id=2, started_at=NOW, status="running"))
        session.flush()
        planner.start(session, now=NOW)
        planner.plan_batch(session, ["B000000001"], NOW)
        planner.plan_batch(session, ["B000000002"], NOW + MIN)
        rows = session.execute(
            select(Listing.asin, Change.status, Change.reason)
            .join(Listing, Listing.id == Change.listing_id)
            .where(Change.cycle_id == 2)
            .order_by(Listing.asin)
        ).all()
    return [(asin, status, reason) for asin, status, reason in rows], planner


def _check(engine: Engine) -> None:
    _seed(engine)
    with transaction(session_factory(engine)) as session:
        recent = recent_hides(session, NOW - 60 * MIN)
    assert sorted(recent) == ["base-1", "base-2"]
    assert recent["base-1"] == [NOW - 50 * MIN, NOW - 40 * MIN, NOW - 20 * MIN]
    assert len(recent["base-2"]) == 3

    rows, planner = _plan_two(engine)
    # 1st: 3 in the window + 1 = 4: sent at once (had the 70-minute-old one counted: 5).
    # 2nd: 4 + 1 = 5 >= min_hides and > 5 % of 20: held (had cycle 1 not counted: 2, sent).
    assert [(asin, status) for asin, status, _ in rows] == [
        ("B000000001", "planned"),
        ("B000000002", "held"),
    ]
    assert "mass-hide guard: 5 hides of 20 listed items within 1 h" in rows[1][2]
    assert planner.tally.tripped_accounts == {"base-1"}
    assert planner.tally.listed_total["base-1"] == LISTED


def test_hides_of_the_previous_window_count_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    _check(engine)
    engine.dispose()


def test_the_window_runs_on_the_time_scale(tmp_path: Path) -> None:
    # At time_scale 60 the hour is a minute: every seeded hide (15 minutes ago or more) is
    # out of it, so both new hides go (1, then 2, under min_hides 5).
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    _seed(engine)
    rows, planner = _plan_two(engine, time_scale=60)
    engine.dispose()
    assert [(asin, status) for asin, status, _ in rows] == [
        ("B000000001", "planned"),
        ("B000000002", "planned"),
    ]
    assert planner.tally.tripped_accounts == set()


@pytest.mark.postgres
def test_hides_of_the_previous_window_count_on_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    _check(engine)
    engine.dispose()
