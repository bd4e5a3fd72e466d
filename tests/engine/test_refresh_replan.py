"""What an earlier cycle left unfinished is re-planned when the next continuous window opens.

A sweep re-plans every ASIN each cycle, so a hide that could not go out (the channel was
down, the deadline came) is sent by the next cycle. A continuous window plans an ASIN only
when it is quoted again, which may be hours away (it was just quoted). The window's start
supersedes the open change; unless the window re-plans its listing, the sold-out item stays
on sale until its next quote.

Here a sweep finds six sell-outs (of about 200 listings: 3 %) while BASE answers 500 to everything: the hides stay
planned. BASE comes back; one continuous window runs with a scheduler that quotes nothing of
its own accord and never probes. The oracle is the simulator's channel truth.

Likewise the quotes a window wrote before a stop cut its planning short.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ecsync.app import open_app
from ecsync.config import load_settings
from ecsync.domain.model import QuoteStatus
from ecsync.domain.quotes import Quote
from ecsync.store.engine import transaction
from ecsync.store.quotes import QuoteWrite, write_quotes
from ecsync.store.schema import Cycle
from tests.conftest import CliResult
from tests.engine.test_refresh_release import AskOnly, _base_items, _window
from tests.integration.conftest import Shop, make_shop  # noqa: F401
from tests.integration.test_cycle_e2e import _listings, _sync, _synced_shop


def test_hides_left_planned_by_a_channel_outage_go_out_in_the_next_window(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = _synced_shop(make_shop, cli, products=200, base_accounts=1, ebay_accounts=0, drift=0.0)
    visible = [row[0] for row in _listings(shop) if row[0].confirmed_visible]
    dark = {listing.asin for listing in visible[:6]}
    assert len(dark) == 6
    for asin in dark:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})
    shop.sim("PUT", "/_sim/faults", json={"base": {"error500": 1.0}})
    monkeypatch.setenv("ECSYNC_CHANNELS__RETRY_BASE_S", "0.01")
    down = _sync(cli, "--no-reconcile")
    shop.sim("PUT", "/_sim/faults", json={})
    assert down["changes_pending"] == 6, down
    assert all(_base_items(shop)[asin]["visible"] for asin in dark)  # still on sale

    scheduler = AskOnly()
    summary = _window(shop, scheduler)

    assert not scheduler.quotes  # nothing was quoted: the plan came from the stored quotes
    truth = _base_items(shop)
    assert {asin for asin in dark if not truth[asin]["visible"]} == dark, summary
    assert all(truth[row.asin]["visible"] for row in visible if row.asin not in dark)
    # Six hides in the hour, under 5 % of the listed items: the rolling guard counts each
    # re-planned hide once (its superseded journal row and its new plan are one hide).
    assert summary.extra["mass_hide_tripped"] == [] and summary.changes_held == 0, summary


def _interrupted_window_wrote(shop: Shop, asins: set[str]) -> None:
    """What a window a stop cut short leaves: its cycle row ``partial`` with the stop's
    error, and quotes written after it started that its planning never saw."""
    app = open_app(load_settings(shop.config))
    try:
        with transaction(app.sessions) as session:
            started = datetime.now(UTC) - timedelta(seconds=30)
            session.add(
                Cycle(
                    started_at=started,
                    finished_at=started + timedelta(seconds=20),
                    status="partial",
                    error="interrupted: SIGTERM",
                    summary={},
                )
            )
            writes = [QuoteWrite(asin, Quote(QuoteStatus.OUT_OF_STOCK)) for asin in asins]
            write_quotes(session, writes, started + timedelta(seconds=10))
    finally:
        app.close()


def test_sell_outs_a_stopped_window_wrote_but_never_planned_go_out_in_the_next_window(
    make_shop: Callable[..., Shop],  # noqa: F811
    cli: Callable[..., CliResult],
) -> None:
    shop = _synced_shop(make_shop, cli, products=200, base_accounts=1, ebay_accounts=0, drift=0.0)
    visible = [row[0] for row in _listings(shop) if row[0].confirmed_visible]
    dark = {listing.asin for listing in visible[:3]}
    for asin in dark:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})
    _interrupted_window_wrote(shop, dark)

    scheduler = AskOnly()
    summary = _window(shop, scheduler)

    assert not scheduler.quotes  # the plan came from the stored quotes
    truth = _base_items(shop)
    assert {asin for asin in dark if not truth[asin]["visible"]} == dark, summary
    assert all(truth[row.asin]["visible"] for row in visible if row.asin not in dark)
