"""The daemon in continuous mode: one cycle row per reporting window, the next window at
once, and a stop within 2 s from inside a window; a mode that does not exist is a usage
error."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime

from tests.conftest import CliResult
from tests.daemon.conftest import PROMPT_STOP_S, DaemonProcess, Db, set_config, wait_for
from tests.integration.conftest import Shop

WINDOW = "300s"  # simulated: 3 real seconds at the simulator's 100x
WINDOW_REAL_S = 3.0


def _moment(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_continuous_windows_are_cycles_back_to_back_and_sigterm_stops_within_2s(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
) -> None:
    shop, db = shop_for_daemon(speed=100.0, products=60)
    set_config(shop.config, "daemon", mode="continuous", window=WINDOW)
    daemon = daemons(shop.config)

    finished = wait_for(
        lambda: len(done := db.finished(daemon.pid)) >= 2 and done,
        "two reporting windows recorded as cycles",
        timeout=90,
    )
    first, second = finished[0], finished[1]
    for cycle in (first, second):
        assert cycle["status"] == "ok", cycle
        assert "refresh" in cycle["summary"], cycle["summary"]
        # A window lasts its length: the refresh runs until the window ends.
        length = (_moment(cycle["finished_at"]) - _moment(cycle["started_at"])).total_seconds()
        assert length >= WINDOW_REAL_S - 0.05, length
    # The next window starts at once (no interval's sleep in between).
    gap = (_moment(second["started_at"]) - _moment(first["finished_at"])).total_seconds()
    assert 0 <= gap < WINDOW_REAL_S, gap

    # Stop from inside a running window.
    wait_for(
        lambda: any(c["status"] == "running" for c in db.cycles(daemon.pid)),
        "a window running",
    )
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    last = db.cycles(daemon.pid)[-1]
    assert last["status"] == "partial" and "SIGTERM" in (last["error"] or ""), last
    leases = [db.lease("daemon"), db.lease("cycle")]
    assert all(lease is not None and lease["pid"] == 0 for lease in leases), leases


def test_an_unknown_mode_is_a_usage_error(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    cli: Callable[..., CliResult],
) -> None:
    shop_for_daemon(speed=100.0, products=20)
    result = cli("daemon", "--mode", "fast")
    assert result.code == 2, (result.code, result.err)
    assert "--mode" in result.err and "continuous" in result.err
