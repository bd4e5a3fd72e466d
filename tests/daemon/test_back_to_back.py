"""``daemon --interval 0`` (cycles back to back) must not turn a lasting failure into a tight
loop: a refused Amazon token fails every cycle at once, and without a pause the daemon asked
LWA again several times a second (and wrote a failed cycle each time) until someone noticed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ecsync.config import Settings
from ecsync.daemon import sweep_floor_s
from tests.daemon.conftest import PROMPT_STOP_S, DaemonProcess, Db, log_text, set_config, wait_for
from tests.integration.conftest import Shop

SPEED = 100.0  # the pause after a failed cycle, 5 simulated minutes, is 3 s of real time
PAUSE_WALL_S = 300 / SPEED


def test_a_failed_cycle_is_followed_by_a_pause_not_at_once(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
) -> None:
    shop, db = shop_for_daemon(speed=SPEED, products=60)
    set_config(shop.config, "amazon", refresh_token="Atzr|refused")
    daemon = daemons(shop.config, "--interval", "0")
    first = wait_for(lambda: db.finished(daemon.pid), "the first cycle")[0]
    assert first["status"] == "failed", first
    second = wait_for(lambda: db.finished(daemon.pid)[1:], "the cycle after the pause")[0]
    # Judged from the cycles' own start times (no sleep): the second starts a pause after
    # the first started, not as soon as it ended.
    gap = (_when(second["started_at"]) - _when(first["started_at"])).total_seconds()
    assert gap >= PAUSE_WALL_S * 0.95, (gap, first, second)
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    assert "with --interval 0 the next one starts 3.0 s (5m simulated) after it started" in (
        log_text(shop.dir)
    )


def _when(value: Any) -> datetime:
    """A cycle's timestamp as the store returns it (SQLite: ISO text; PostgreSQL: datetime)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_a_back_to_back_sweep_gets_twice_its_catalogues_floor_before_its_deadline() -> None:
    """16,000 ASINs: 800 batches; after the first (the burst) 799 at 0.1 request/s."""
    settings = Settings()
    assert sweep_floor_s(16_000, settings) == 7990.0
    assert sweep_floor_s(16_001, settings) == 8000.0
    assert sweep_floor_s(0, settings) == 0.0
    fast = settings.model_copy(
        update={"runtime": settings.runtime.model_copy(update={"time_scale": 100.0})}
    )
    assert sweep_floor_s(16_000, fast) == 79.9
