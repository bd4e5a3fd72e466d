"""Clean stops from anywhere within 2 s, exit 130; locks; kill -9 and a restart."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable
from typing import Any

from ecsync.config import load_settings
from ecsync.lock import InstanceLock, lock_path
from ecsync.store.engine import make_engine, session_factory
from tests.conftest import CliResult
from tests.daemon.conftest import PROMPT_STOP_S, DaemonProcess, Db, log_text, set_config, wait_for
from tests.integration.conftest import Shop


def _fetched(db: Db) -> int:
    return int(db.one("SELECT count(*) FROM products WHERE fetched_at IS NOT NULL") or 0)


def _status(cli: Callable[..., CliResult]) -> dict[str, Any]:
    result = cli("status", "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_sigterm_during_a_rate_wait_stops_within_2s_keeping_the_work_done(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    cli: Callable[..., CliResult],
) -> None:
    # Real time: getItemOffersBatch is granted 0.1/s, so batch 2 waits 10 s for its slot.
    shop, db = shop_for_daemon(speed=1.0, products=120)
    daemon = daemons(shop.config)
    wait_for(lambda: _fetched(db) >= 20, "the first batch's quotes", timeout=60)

    # A manual sync during the daemon's cycle exits 3 naming the holder.
    manual = cli("sync")
    assert manual.code == 3, manual.err
    assert f"cycle lock: pid {daemon.pid} on {socket.gethostname()}" in manual.err

    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    cycle = db.cycles(daemon.pid)[-1]
    assert cycle["status"] == "partial" and "SIGTERM" in cycle["error"]
    assert cycle["summary"]["quotes_ok"] + cycle["summary"]["quotes_out_of_stock"] >= 1
    assert _fetched(db) >= 20  # the work done stays
    assert db.lease("daemon")["pid"] == 0 and db.lease("cycle")["pid"] == 0
    assert _status(cli)["daemon"]["state"] == "stopped"


def test_sigterm_during_a_hung_http_call_stops_within_2s(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
) -> None:
    shop, db = shop_for_daemon(speed=1000.0, products=60)
    set_config(shop.config, "amazon", read_timeout_s=30, total_timeout_s=60)
    shop.sim("PUT", "/_sim/faults", json={"spapi": {"hang": 1.0}})
    daemon = daemons(shop.config, "--interval", "100h")  # deadline 324 s: only SIGTERM ends it
    wait_for(lambda: shop.sim("GET", "/_sim/faults")["hanging"] >= 1, "a hung SP-API call")

    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    cycle = db.cycles(daemon.pid)[-1]
    assert cycle["status"] == "partial" and "SIGTERM" in cycle["error"]


def test_kill_9_then_restart_takes_the_lock_over_and_finishes_the_work(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    cli: Callable[..., CliResult],
) -> None:
    # 600 ASINs at 10 requests/s: a cycle fetches for about 3 s.
    shop, db = shop_for_daemon(speed=100.0, products=600, drift=0.3)
    first = daemons(shop.config, "--interval", "100h")
    wait_for(lambda: _fetched(db) >= 40, "the killed daemon to fetch some batches", timeout=60)
    first.proc.kill()  # SIGKILL: no cleanup at all
    first.proc.wait(timeout=10)

    status = _status(cli)
    assert status["daemon"]["state"] == "stopped"
    assert f"pid {first.pid} ended without releasing" in status["daemon"]["note"]
    assert status["lock"] is None
    assert status["cycles"][0]["status"] == "running" and not status["cycles"][0]["alive"]

    second = daemons(shop.config, "--interval", "100h")
    wait_for(lambda: db.finished(second.pid), "the restarted daemon's cycle", timeout=60)
    cycles = {c["pid"]: c for c in db.cycles()}
    assert cycles[first.pid]["status"] == "failed"
    assert "did not finish" in cycles[first.pid]["error"]
    assert cycles[second.pid]["status"] == "ok", cycles[second.pid]["error"]
    assert _fetched(db) == 600
    open_changes = db.one("SELECT count(*) FROM changes WHERE status IN ('planned', 'sent')")
    assert open_changes == 0  # the killed cycle's changes were settled or re-planned
    text = log_text(shop.dir)
    assert f"taking over the daemon lock left by pid {first.pid}" in text
    assert f"taking over the cycle lock left by pid {first.pid}" in text
    assert db.lease("daemon")["pid"] == second.pid

    code, seconds = second.stop(signal.SIGINT)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)


def test_a_due_cycle_waits_for_a_manual_sync_holding_the_cycle_lock(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    cli: Callable[..., CliResult],
) -> None:
    shop, db = shop_for_daemon(speed=1000.0, products=40)
    settings = load_settings(shop.config)
    engine = make_engine(settings.database_url)
    manual = InstanceLock(
        session_factory(engine),
        "cycle",
        lock_path(settings.database_url, settings.config_path, "cycle"),
    )
    manual.acquire()  # what a manual `ecsync sync` holds while it runs
    try:
        daemon = daemons(shop.config, "--interval", "100h")
        wait_for(
            lambda: (
                "a cycle is due, but another ecsync instance holds the cycle lock"
                in log_text(shop.dir)
            ),
            "the daemon to say it waits",
        )
        status = _status(cli)
        assert status["daemon"]["state"] == "idle"
        assert status["daemon"]["phase"] == "waiting for the cycle lock"
        assert "waiting for another ecsync run" in cli("status").out
        assert not db.cycles(daemon.pid)
    finally:
        manual.release()
        engine.dispose()
    wait_for(lambda: db.finished(daemon.pid), "the cycle once the lock is free")
    assert db.finished(daemon.pid)[0]["status"] == "ok"
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
