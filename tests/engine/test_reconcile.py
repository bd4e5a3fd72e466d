"""Reconcile and pull judge by the adapter's bulk read: an error is never evidence of gone.

The engine is the code under test; the adapter is input, so a small fake implementing the
read side of the protocol hands it exactly the ``ChannelRead`` each case needs. Every oracle
is written here from the case itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ecsync.engine.reconcile import (
    PullOutcome,
    ReadResult,
    ReconcileOutcome,
    apply_pull,
    apply_reconcile,
    read_account,
)
from ecsync.ports import ChannelItem, ChannelRead, ReadProblem
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.schema import Account, Listing, Product

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class FakeReader:
    """The read side of a channel adapter, answering one prepared ``ChannelRead``."""

    def __init__(self, account: str, read: ChannelRead) -> None:
        self.account = account
        self.platform = "fake"
        self._read = read
        self.calls = 0

    async def read(self, expected_skus: Iterable[str] = ()) -> ChannelRead:
        self.calls += 1
        return self._read


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ecsync.db'}")
    upgrade_to_head(engine)
    with transaction(session_factory(engine)) as session:
        session.add_all(
            [
                Account(name="base-1", platform="base", active=True, created_at=NOW),
                Account(name="ebay-1", platform="ebay", active=True, created_at=NOW),
            ]
        )
    yield session_factory(engine)
    engine.dispose()


def _asin(n: int) -> str:
    return f"B{n:09d}"


def _seed(
    sessions: sessionmaker[Session], account: str, rows: list[tuple[str, str, str, str | None]]
) -> None:
    """Listed listings (asin, item_id, sku, offer_id), confirmed at price 1000, qty 1."""
    with transaction(sessions) as session:
        account_id = session.scalars(select(Account.id).where(Account.name == account)).one()
        for asin, item_id, sku, offer_id in rows:
            if session.get(Product, asin) is None:
                session.add(Product(asin=asin, error_count=0))
            session.flush()
            session.add(
                Listing(
                    account_id=account_id,
                    asin=asin,
                    item_id=item_id,
                    sku=sku,
                    offer_id=offer_id,
                    status="listed",
                    confirmed_price=Decimal(1000),
                    confirmed_visible=True,
                    confirmed_quantity=1,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )


def _base_item(n: int, price: int = 1000, visible: bool = True) -> ChannelItem:
    return ChannelItem(str(n), _asin(n), Decimal(price), visible, 1)


def _ebay_item(n: int, quantity: int = 1) -> ChannelItem:
    return ChannelItem(f"offer-{n}", _asin(n), Decimal("12.50"), None, quantity)


def _listings(sessions: sessionmaker[Session], account: str) -> dict[str, Listing]:
    with sessions() as session:
        rows = session.scalars(
            select(Listing).join(Account).where(Account.name == account).order_by(Listing.asin)
        ).all()
        session.expunge_all()
    return {row.asin: row for row in rows}


def _reconcile(
    sessions: sessionmaker[Session], account: str, read: ChannelRead
) -> ReconcileOutcome:
    result = asyncio.run(read_account(FakeReader(account, read)))  # type: ignore[arg-type]
    with transaction(sessions) as session:
        return apply_reconcile(session, result, NOW)


def _pull(sessions: sessionmaker[Session], account: str, read: ChannelRead) -> PullOutcome:
    with transaction(sessions) as session:
        return apply_pull(session, ReadResult(account, read), NOW)


def _base_shop(sessions: sessionmaker[Session]) -> None:
    _seed(sessions, "base-1", [(_asin(n), str(n), "", None) for n in (1, 2, 3)])


def test_absent_from_a_partial_read_stays_listed_and_what_was_read_is_refreshed(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    _base_shop(sessions)
    problems = [ReadProblem("item 2", "400 internal_error"), ReadProblem("item 3", "timeout")]
    read = ChannelRead([_base_item(1, price=1200, visible=False)], problems=problems)
    outcome = _reconcile(sessions, "base-1", read)
    after = _listings(sessions, "base-1")
    assert {asin: row.status for asin, row in after.items()} == {
        _asin(1): "listed",
        _asin(2): "listed",
        _asin(3): "listed",
    }
    assert after[_asin(1)].confirmed_price == Decimal(1200)
    assert after[_asin(1)].confirmed_visible is False
    assert after[_asin(2)].confirmed_price == Decimal(1000)  # untouched: not read
    assert (outcome.complete, outcome.problems, outcome.gone, outcome.drifted) == (False, 2, 0, 1)
    assert (
        "2 items could not be read" in caplog.text and "item 2: 400 internal_error" in caplog.text
    )


def test_absent_from_a_complete_read_is_gone(sessions: sessionmaker[Session]) -> None:
    _base_shop(sessions)
    outcome = _reconcile(sessions, "base-1", ChannelRead([_base_item(1), _base_item(3)]))
    after = _listings(sessions, "base-1")
    assert [after[_asin(n)].status for n in (1, 2, 3)] == ["listed", "gone", "listed"]
    assert (outcome.complete, outcome.gone, outcome.drifted) == (True, 1, 0)


def test_positively_gone_in_a_partial_read_is_gone(sessions: sessionmaker[Session]) -> None:
    _base_shop(sessions)
    read = ChannelRead(
        [_base_item(1)],
        problems=[ReadProblem("item 3", "500")],
        gone=frozenset({"2"}),
    )
    outcome = _reconcile(sessions, "base-1", read)
    after = _listings(sessions, "base-1")
    assert [after[_asin(n)].status for n in (1, 2, 3)] == ["listed", "gone", "listed"]
    assert outcome.gone == 1


def test_ebay_listings_match_by_offer_then_sku_and_go_by_sku_or_offer(
    sessions: sessionmaker[Session],
) -> None:
    _seed(
        sessions,
        "ebay-1",
        [
            (_asin(1), "offer-1", _asin(1), "offer-1"),
            (_asin(2), "csv-2", _asin(2), None),  # imported without its offer id
            (_asin(3), "offer-3", _asin(3), "offer-3"),
            (_asin(4), "csv-4", _asin(4), None),
            (_asin(5), "offer-5", _asin(5), "offer-5"),
        ],
    )
    read = ChannelRead(
        [_ebay_item(1, quantity=0), _ebay_item(2)],
        problems=[ReadProblem("SKU B000000005", "403 Forbidden")],
        gone=frozenset({"offer-3"}),
        gone_skus=frozenset({_asin(4)}),
    )
    _reconcile(sessions, "ebay-1", read)
    after = _listings(sessions, "ebay-1")
    assert [after[_asin(n)].status for n in range(1, 6)] == [
        "listed",
        "listed",
        "gone",  # its offer answered 404
        "gone",  # its SKU has no offer at all
        "listed",  # refused read: no evidence
    ]
    assert after[_asin(1)].confirmed_quantity == 0
    assert after[_asin(2)].offer_id == "offer-2"  # found by SKU, offer id stored


def test_reconcile_ignores_gone_listings_and_other_accounts(
    sessions: sessionmaker[Session],
) -> None:
    _base_shop(sessions)
    _seed(sessions, "ebay-1", [(_asin(9), "offer-9", _asin(9), "offer-9")])
    _reconcile(sessions, "base-1", ChannelRead([]))
    assert {row.status for row in _listings(sessions, "base-1").values()} == {"gone"}
    assert _listings(sessions, "ebay-1")[_asin(9)].status == "listed"


def test_pull_counts_only_real_changes(sessions: sessionmaker[Session]) -> None:
    items = [_base_item(n) for n in range(1, 8)]
    first = _pull(sessions, "base-1", ChannelRead(items))
    assert (first.added, first.changed, first.unchanged) == (7, 0, 0)
    again = _pull(sessions, "base-1", ChannelRead(items))
    assert (again.added, again.changed, again.unchanged) == (0, 0, 7)
    items[3] = _base_item(4, price=1500)
    third = _pull(sessions, "base-1", ChannelRead([*items, _base_item(8)]))
    assert (third.added, third.changed, third.unchanged) == (1, 1, 6)
    assert _listings(sessions, "base-1")[_asin(4)].confirmed_price == Decimal(1500)


def test_a_moved_item_id_leaves_a_readable_gone_listing(sessions: sessionmaker[Session]) -> None:
    _pull(sessions, "base-1", ChannelRead([_base_item(1), _base_item(2)]))
    # On the channel, item 1 now carries ASIN 3 (relisted for another product).
    moved = ChannelItem("1", _asin(3), Decimal(900), True, 1)
    outcome = _pull(sessions, "base-1", ChannelRead([moved, _base_item(2)]))
    after = _listings(sessions, "base-1")
    assert after[_asin(3)].item_id == "1" and after[_asin(3)].status == "listed"
    assert after[_asin(1)].status == "gone"
    assert after[_asin(1)].item_id == f"1 (moved to {_asin(3)})"
    assert "~" not in after[_asin(1)].item_id
    assert (outcome.added, outcome.unchanged) == (1, 1)
    # And back: the listing of ASIN 1 is revived with its id, ASIN 3's becomes the moved one.
    _pull(sessions, "base-1", ChannelRead([_base_item(1), _base_item(2)]))
    after = _listings(sessions, "base-1")
    assert (after[_asin(1)].item_id, after[_asin(1)].status) == ("1", "listed")
    assert (after[_asin(3)].item_id, after[_asin(3)].status) == (f"1 (moved to {_asin(1)})", "gone")


@pytest.mark.parametrize("reverse", [False, True])
def test_pull_survives_item_ids_swapping_between_asins(
    sessions: sessionmaker[Session], reverse: bool
) -> None:
    _pull(sessions, "base-1", ChannelRead([_base_item(1), _base_item(2)]))
    swapped = [
        ChannelItem("2", _asin(1), Decimal(1000), True, 1),
        ChannelItem("1", _asin(2), Decimal(1000), True, 1),
    ]
    outcome = _pull(sessions, "base-1", ChannelRead(swapped[::-1] if reverse else swapped))
    after = _listings(sessions, "base-1")
    assert {asin: (row.item_id, row.status) for asin, row in after.items()} == {
        _asin(1): ("2", "listed"),
        _asin(2): ("1", "listed"),
    }
    assert (outcome.added, outcome.changed) == (0, 2)


def test_pull_retires_by_absence_only_after_a_complete_read(
    sessions: sessionmaker[Session],
) -> None:
    _pull(sessions, "base-1", ChannelRead([_base_item(n) for n in (1, 2, 3)]))
    partial = _pull(
        sessions, "base-1", ChannelRead([_base_item(1)], problems=[ReadProblem("page 2", "500")])
    )
    assert partial.gone == 0 and partial.problems == 1
    assert {r.status for r in _listings(sessions, "base-1").values()} == {"listed"}
    positive = _pull(
        sessions,
        "base-1",
        ChannelRead([_base_item(1)], problems=[ReadProblem("x", "500")], gone=frozenset({"2"})),
    )
    assert positive.gone == 1
    complete = _pull(sessions, "base-1", ChannelRead([_base_item(1)]))
    assert complete.gone == 1
    after = _listings(sessions, "base-1")
    assert [after[_asin(n)].status for n in (1, 2, 3)] == ["listed", "gone", "gone"]


def test_chunked_reconcile_covers_every_listing(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ecsync.engine.reconcile as reconcile

    monkeypatch.setattr(reconcile, "CHUNK", 7)
    _pull(sessions, "base-1", ChannelRead([_base_item(n) for n in range(1, 51)]))
    read = ChannelRead([_base_item(n, price=2000) for n in range(1, 51) if n % 5])
    outcome = _reconcile(sessions, "base-1", read)
    after = _listings(sessions, "base-1")
    assert outcome.gone == 10 and outcome.drifted == 40
    assert all((row.status == "gone") == (int(row.asin[1:]) % 5 == 0) for row in after.values())
