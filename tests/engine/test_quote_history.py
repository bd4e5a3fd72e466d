"""Each good quote extends its ASIN's change history and keeps what it implied for probes;
an error touches neither (an error is not evidence of a change, nor of calm)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecsync.domain.model import QuoteStatus
from ecsync.domain.probes import QuoteView
from ecsync.domain.quotes import Quote, quote_from_error
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.quotes import QuoteWrite, stored_view, write_quotes
from ecsync.store.schema import Product

ASIN = "B000000001"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


def _ok(price: int) -> Quote:
    return Quote(status=QuoteStatus.OK, price=Decimal(price), offer_count=2)


def _write(sessions: sessionmaker[Session], write: QuoteWrite, at: datetime) -> dict[str, bool]:
    with transaction(sessions) as session:
        return write_quotes(session, [write], at)


def _row(sessions: sessionmaker[Session]) -> Product:
    with transaction(sessions) as session:
        product = session.get(Product, ASIN)
        assert product is not None
        session.expunge(product)
        return product


def test_changes_and_observed_seconds_count_good_quotes_only(
    sessions: sessionmaker[Session],
) -> None:
    view = QuoteView(buy_box_present=True, buy_box_landed=Decimal(1500), new_offer_count=3)
    # first quote: no change, no history yet
    assert _write(sessions, QuoteWrite(ASIN, _ok(1000), view), T0) == {ASIN: False}
    row = _row(sessions)
    assert (row.quote_changes, row.observed_s) == (0, 0.0)
    assert (row.buy_box_present, row.buy_box_landed, row.new_offer_count) == (
        True,
        Decimal(1500),
        3,
    )
    # same price 60 s later: no change, 60 s observed
    assert _write(sessions, QuoteWrite(ASIN, _ok(1000), view), T0 + timedelta(seconds=60)) == {
        ASIN: False
    }
    # an error 30 s later: nothing learned, nothing changed, the view kept
    assert (
        _write(sessions, QuoteWrite(ASIN, quote_from_error("boom")), T0 + timedelta(seconds=90))
        == {}
    )
    row = _row(sessions)
    assert (row.quote_changes, row.observed_s) == (0, 60.0)
    assert row.buy_box_present is True
    # price moved 100 s after the last GOOD quote: one change, 160 s observed
    assert _write(sessions, QuoteWrite(ASIN, _ok(1100)), T0 + timedelta(seconds=160)) == {
        ASIN: True
    }
    # sold out 40 s later: a change of availability
    gone = Quote(status=QuoteStatus.OUT_OF_STOCK)
    assert _write(sessions, QuoteWrite(ASIN, gone), T0 + timedelta(seconds=200)) == {ASIN: True}
    row = _row(sessions)
    assert (row.quote_changes, row.observed_s) == (2, 200.0)
    # a quote with no view forgets the old one: the stored status speaks instead
    assert (row.buy_box_present, row.new_offer_count) == (None, None)
    assert stored_view(row) == QuoteView(
        buy_box_present=False, buy_box_landed=None, new_offer_count=0
    )


def test_stored_view_prefers_the_kept_buy_box_and_count(sessions: sessionmaker[Session]) -> None:
    view = QuoteView(buy_box_present=False, buy_box_landed=None, new_offer_count=4)
    _write(sessions, QuoteWrite(ASIN, _ok(900), view), T0)
    assert stored_view(_row(sessions)) == view
