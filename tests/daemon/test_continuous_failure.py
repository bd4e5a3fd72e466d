"""A continuous window that fails early is followed by the next one after a short pause,
not at the end of its reporting window.

In sweep mode a failed cycle waits for the next interval: the cycle is the unit of work.
In continuous mode the window is only a reporting unit: the refresh is meant to run without
pause. A window cut short (a token refused for a moment, the SP-API breaker opening) used to
leave the daemon asleep until the window's end, an hour by default, while sold-out items
stayed on sale. A lasting failure must still not become a tight loop: the next window starts
``FAILED_PAUSE`` after the failed one started, as for ``--interval 0``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.daemon.conftest import PROMPT_STOP_S, DaemonProcess, Db, log_text, set_config, wait_for
from tests.integration.conftest import Shop

SPEED = 100.0
PAUSE_WALL_S = 300 / SPEED  # FAILED_PAUSE, 5 simulated minutes
WINDOW = "6000s"  # 60 real seconds: far longer than the pause
WINDOW_WALL_S = 6000 / SPEED


def test_a_failed_window_is_followed_after_the_pause_not_at_the_windows_end(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
) -> None:
    shop, db = shop_for_daemon(speed=SPEED, products=60)
    set_config(shop.config, "daemon", mode="continuous", window=WINDOW)
    set_config(shop.config, "amazon", refresh_token="Atzr|refused")
    daemon = daemons(shop.config)
    first = wait_for(lambda: db.finished(daemon.pid), "the first window")[0]
    assert first["status"] == "failed", first
    second = wait_for(
        lambda: db.cycles(daemon.pid)[1:], "the next window", timeout=WINDOW_WALL_S / 2
    )[0]
    gap = (_when(second["started_at"]) - _when(first["started_at"])).total_seconds()
    assert PAUSE_WALL_S * 0.95 <= gap < WINDOW_WALL_S / 2, (gap, first, second)
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    assert "the next window starts 3.0 s (5m simulated) after it started" in log_text(shop.dir)


def _when(value: Any) -> datetime:
    """A cycle's timestamp as the store returns it (SQLite: ISO text; PostgreSQL: datetime)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
