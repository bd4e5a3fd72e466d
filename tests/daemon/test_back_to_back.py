"""``daemon --interval 0`` (cycles back to back) must not turn a lasting failure into a tight
loop: a refused Amazon token fails every cycle at once, and without a pause the daemon asked
LWA again several times a second (and wrote a failed cycle each time) until someone noticed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

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
    time.sleep(PAUSE_WALL_S * 0.8)  # well inside the pause: no second cycle yet
    assert len(db.cycles(daemon.pid)) == 1, [c["status"] for c in db.cycles(daemon.pid)]
    wait_for(lambda: len(db.finished(daemon.pid)) >= 2, "the cycle after the pause")
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    assert "with --interval 0 the next one starts 3.0 s (5m simulated) after it started" in (
        log_text(shop.dir)
    )
