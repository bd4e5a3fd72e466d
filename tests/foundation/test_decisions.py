"""The seller's decisions in the store, on SQLite and PostgreSQL alike: only held changes are
decided, a bad id writes nothing, and what the planner reads back (a release until used, a
rejection until the product moves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ecsync.domain.guards import DecisionKind, Guard
from ecsync.domain.model import ListingState
from ecsync.errors import UsageError
from ecsync.store.decisions import (
    close_superseded_holds,
    decide,
    decisions_for,
    finish_releases,
    list_changes,
)
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.schema import Account, Change, Cycle, Listing, Product

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _seed(engine: Engine) -> dict[str, int]:
    """Two listings, one per account: a held cut, a held hide, an applied change."""
    with transaction(session_factory(engine)) as session:
        a = Account(name="base-1", platform="base", active=True, created_at=T0)
        b = Account(name="base-2", platform="base", active=True, created_at=T0)
        session.add_all([a, b, Product(asin="B000000001"), Product(asin="B000000002")])
        session.add(Cycle(id=1, started_at=T0, status="ok"))
        session.flush()
        one = Listing(account_id=a.id, asin="B000000001", item_id="1", created_at=T0, updated_at=T0)
        two = Listing(account_id=b.id, asin="B000000002", item_id="2", created_at=T0, updated_at=T0)
        session.add_all([one, two])
        session.flush()

        def change(listing: Listing, kind: str, status: str, new_price: int) -> Change:
            row = Change(
                cycle_id=1,
                listing_id=listing.id,
                kind=kind,
                old_price=Decimal(1000),
                new_price=Decimal(new_price),
                old_visible=True,
                new_visible=kind != "hide",
                old_quantity=1,
                new_quantity=1,
                reason="r",
                status=status,
                created_at=T0,
            )
            session.add(row)
            return row

        cut = change(one, "price_cut", "held", 300)
        hide = change(two, "hide", "held", 1000)
        done = change(one, "price_raise", "applied", 1200)
        session.flush()
        return {"cut": cut.id, "hide": hide.id, "done": done.id, "one": one.id, "two": two.id}


def _statuses(engine: Engine) -> list[tuple[int, str, str | None]]:
    with transaction(session_factory(engine)) as session:
        rows = session.execute(select(Change.id, Change.status, Change.decided_by))
        return sorted((i, s, by) for i, s, by in rows)


def _check(engine: Engine) -> None:
    upgrade_to_head(engine)
    ids = _seed(engine)
    sessions = session_factory(engine)
    before = _statuses(engine)
    for bad, message in (
        ([ids["cut"], 999], "change 999: no such change"),
        ([ids["done"]], f"change {ids['done']}: applied, not held"),
    ):
        with pytest.raises(UsageError, match=message), transaction(sessions) as session:
            decide(session, DecisionKind.RELEASED, bad, account=None, by="cli", now=T0)
    with (
        pytest.raises(UsageError, match="belongs to account 'base-2'"),
        transaction(sessions) as session,
    ):
        decide(session, DecisionKind.RELEASED, [ids["hide"]], account="base-1", by="x", now=T0)
    assert _statuses(engine) == before

    at = T0 + timedelta(hours=1)
    with transaction(sessions) as session:
        all_base2 = decide(session, DecisionKind.RELEASED, None, account="base-2", by="ops", now=at)
        rejected = decide(
            session, DecisionKind.REJECTED, [ids["cut"]], account=None, by="h", now=at
        )
    assert (all_base2, rejected) == ([ids["hide"]], [ids["cut"]])
    with transaction(sessions) as session:
        assert list_changes(session) == []  # nothing open any more
        found = decisions_for(session, [ids["one"], ids["two"]])
    release, rejection = found[ids["two"]], found[ids["one"]]
    assert (release.kind, release.guard, release.by) == (
        DecisionKind.RELEASED,
        Guard.MASS_HIDE,
        "ops",
    )
    assert release.target == ListingState(Decimal(1000), False, 1)
    assert (rejection.kind, rejection.guard) == (DecisionKind.REJECTED, Guard.MAX_DROP)
    assert rejection.target.price == Decimal(300)

    with transaction(sessions) as session:
        finish_releases(session, [release.change_id], at)  # used by a cycle
        product = session.get(Product, "B000000001")
        assert product is not None
        product.price_changed_at = at - timedelta(minutes=1)  # moved before the rejection
    with transaction(sessions) as session:
        assert set(decisions_for(session, [ids["one"], ids["two"]])) == {ids["one"]}
        product = session.get(Product, "B000000001")
        assert product is not None
        product.stock_changed_at = at + timedelta(minutes=1)  # moved after it
    with transaction(sessions) as session:
        assert decisions_for(session, [ids["one"], ids["two"]]) == {}


def _check_superseding(engine: Engine) -> None:
    upgrade_to_head(engine)
    ids = _seed(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        session.add(Cycle(id=2, started_at=T0, status="running"))
        session.flush()
        assert close_superseded_holds(session, [ids["one"]], 2, T0) == 1
    with transaction(sessions) as session:
        assert [row.id for row in list_changes(session, statuses=("held",))] == [ids["hide"]]


def test_decisions_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    _check(engine)
    engine.dispose()
    other = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    _check_superseding(other)
    other.dispose()


@pytest.mark.postgres
def test_decisions_on_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    _check(engine)
    engine.dispose()
