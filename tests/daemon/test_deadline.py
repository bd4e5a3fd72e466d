"""A cycle facing 100 % hangs ends by its deadline, failed; the daemon goes on and alerts."""

from __future__ import annotations

import signal
from collections.abc import Callable

from tests.conftest import CliResult
from tests.daemon.conftest import (
    PROMPT_STOP_S,
    DaemonProcess,
    Db,
    Webhook,
    cycle_records,
    log_text,
    set_config,
    wait_for,
)
from tests.integration.conftest import Shop


def test_a_hung_cycle_fails_at_its_deadline_and_the_daemon_goes_on_and_alerts(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    webhook: Webhook,
    cli: Callable[..., CliResult],
) -> None:
    shop, db = shop_for_daemon(speed=1000.0, products=60)
    # A first sync learns the granted rate: a governor that never got an answer paces at the
    # documented 0.1/s, and each hung cycle would book one more 10 s slot than time repays.
    assert cli("sync").code == 0
    # Only the deadline (90 % of 3.6 s) can end a call that hangs for 30 s.
    set_config(shop.config, "amazon", read_timeout_s=30, total_timeout_s=60)
    set_config(shop.config, "daemon", alerts=[webhook.url])
    shop.sim("PUT", "/_sim/faults", json={"spapi": {"hang": 1.0}})
    daemon = daemons(shop.config, "--interval", "1h")

    # The runner records the cut cycle as interrupted, then the daemon marks it failed and
    # logs its record: wait for that record.
    record = wait_for(
        lambda: cycle_records(log_text(shop.dir)), "the hung cycle's record", timeout=60
    )[0]
    shop.sim("PUT", "/_sim/faults", json={"spapi": {}})
    failed = next(c for c in db.cycles(daemon.pid) if c["id"] == record["cycle_id"])
    assert record["status"] == "failed" and record["error"] == failed["error"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("deadline reached after 3.2 s in phase fetch: ")
    assert "60 of 60 ASINs not fetched" in failed["error"]
    assert failed["summary"]["status"] == "failed"
    # Cut at the deadline: far below the 30 s the hung call would take (loose for a busy CPU).
    assert 3.2 <= failed["summary"]["duration_s"] < 3.2 + 10

    # The daemon's own stop stayed un-set: it carries on, and a later cycle succeeds.
    wait_for(
        lambda: any(c["status"] == "ok" for c in db.finished(daemon.pid)),
        "a later cycle to succeed",
        timeout=60,
    )
    assert daemon.exited() is None
    assert db.lease("daemon")["pid"] == daemon.pid

    # Alerts reached the local webhook: started, and the failed cycle with its reason.
    wait_for(lambda: any("cycle" in t and "failed" in t for t in webhook.titles()), "an alert")
    assert any("daemon started" in t for t in webhook.titles())
    failure = next(m for m in webhook.messages if "failed" in str(m.get("title")))
    assert "deadline reached" in failure["message"] and failure["type"] == "failure"

    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    wait_for(lambda: any("daemon stopped" in t for t in webhook.titles()), "the stop alert")
    assert "cycle deadline (3.2 s) reached in phase fetch" in log_text(shop.dir)
