"""The daemon over several cycles: schedule, one instance, health, metrics, status, logs."""

from __future__ import annotations

import itertools
import json
import signal
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CliResult
from tests.daemon.conftest import (
    PROMPT_STOP_S,
    DaemonProcess,
    Db,
    cycle_records,
    log_text,
    metrics_url,
    set_config,
    wait_for,
)
from tests.integration.conftest import Shop

SPEED = 1000.0  # the simulator's clock: `--interval 1h` is 3.6 s of real time
INTERVAL_S = 3600 / SPEED


def _metrics(url: str) -> dict[str, float]:
    """Every sample of /metrics as {name{labels}: value}, through prometheus's own parser."""
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def _status(cli: Callable[..., CliResult]) -> dict[str, Any]:
    result = cli("status", "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_cycles_follow_the_interval_with_health_metrics_status_and_one_instance(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    cli: Callable[..., CliResult],
) -> None:
    shop, db = shop_for_daemon(speed=SPEED, products=120)
    set_config(shop.config, "daemon", metrics_port=0)
    set_config(shop.config, "logging", max_bytes=1024, backup_count=500)  # rotates often
    daemon = daemons(shop.config, "--interval", "1h")
    url = metrics_url(shop.dir)
    wait_for(lambda: len(db.finished(daemon.pid)) >= 1, "the first cycle")

    # A second daemon exits 3, naming the first: pid, host, since when.
    second = daemons(shop.config)
    assert second.proc.wait(timeout=60) == 3
    assert f"pid {daemon.pid} on {socket.gethostname()} since " in second.output()

    wait_for(lambda: len(db.finished(daemon.pid)) >= 3, "three cycles", timeout=60)
    cycles = db.finished(daemon.pid)
    starts = [c["started_at"] for c in cycles]
    gaps = [
        (datetime.fromisoformat(str(b)) - datetime.fromisoformat(str(a))).total_seconds()
        for a, b in itertools.pairwise(starts)
    ]
    assert all(INTERVAL_S - 0.05 <= gap <= INTERVAL_S + 1.0 for gap in gaps), gaps
    assert all(c["status"] == "ok" for c in cycles), [(c["status"], c["error"]) for c in cycles]

    # /healthz is 200 while the heartbeat is fresh.
    health = httpx.get(f"{url}/healthz", timeout=5)
    assert health.status_code == 200, health.text
    assert health.text.startswith("ok")

    # /metrics parses as Prometheus text, and its counters add up the cycles' summaries.
    samples = _metrics(url)
    last = int(samples["ecsync_last_cycle_id{}"])
    done = [c["summary"] for c in db.finished(daemon.pid) if c["id"] <= last]
    assert done and done[-1]["cycle_id"] == last

    def total(key: str) -> int:
        return sum(int(s[key]) for s in done)

    assert samples["ecsync_cycles_total{status=ok}"] == len(done)
    assert samples["ecsync_cycle_duration_seconds_count{}"] == len(done)
    for status in ("ok", "out_of_stock", "no_eligible_offer", "error"):
        assert samples[f"ecsync_quotes_total{{status={status}}}"] == total(f"quotes_{status}")
    for status in ("planned", "applied", "failed", "held"):
        assert samples[f"ecsync_changes_total{{status={status}}}"] == total(f"changes_{status}")
    assert samples["ecsync_spapi_requests_total{}"] == total("spapi_requests")
    assert samples["ecsync_spapi_throttled_total{}"] == total("spapi_throttled")
    assert samples["ecsync_channel_calls_total{}"] == total("channel_calls")
    assert samples["ecsync_last_success_timestamp_seconds{}"] > 0
    assert samples["ecsync_quotes_current{status=ok}"] > 0  # read from the database
    assert samples["ecsync_api_budget_remaining{account=base-1,budget=hour,platform=base}"] > 0

    # `status --json`: the daemon, its cycles, the lock holder, quotes, changes, budgets.
    status = _status(cli)
    assert status["daemon"]["state"] in ("running", "idle")
    assert status["daemon"]["pid"] == daemon.pid
    assert status["daemon"]["host"] == socket.gethostname()
    assert status["daemon"]["next_cycle_at"]
    assert status["daemon"]["interval_s"] == INTERVAL_S
    assert status["lock"]["pid"] == daemon.pid
    newest = status["cycles"][0]
    assert newest["cycle_id"] >= last and newest["started_at"]
    assert {"status", "asins", "quotes_ok", "changes_applied", "duration_s"} <= set(newest)
    assert status["quotes"]["total"] == 120
    assert status["quotes"]["older_than_2x"] == 0
    assert status["changes"].get("applied", 0) == total("changes_applied")
    assert status["budgets"]["base:base-1:hour"]["remaining"] > 0

    human = cli("status")
    assert human.code == 0
    for phrase in ("Daemon: ", f"pid {daemon.pid}", "Last cycles", "Quotes: 120 listed ASINs"):
        assert phrase in human.out, human.out
    assert "API budgets left" in human.out

    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    assert db.lease("daemon")["pid"] == 0  # released

    # The log rotated many times (2 KB files) and lost nothing: every cycle's JSON record is
    # there exactly once, in order, between the start and stop lines.
    assert len(list(shop.dir.glob("ecsync.log.*"))) >= 2
    log = log_text(shop.dir)
    records = [r["cycle_id"] for r in cycle_records(log)]
    assert records == [c["id"] for c in db.finished(daemon.pid)]
    assert log.count("daemon started: pid") == 1
    assert log.index("daemon started: pid") < log.index("daemon stopping (SIGTERM received)")
    for cycle in db.finished(daemon.pid):
        assert log.count(f"cycle {cycle['id']} started") == 1


def test_a_manual_sync_beside_an_idle_daemon_never_rotates_its_log(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    cli: Callable[..., CliResult],
) -> None:
    shop, db = shop_for_daemon(speed=SPEED, products=60)
    set_config(shop.config, "logging", max_bytes=1024, backup_count=100)
    daemon = daemons(shop.config, "--interval", "1000h")  # one cycle, then an hour's sleep
    wait_for(lambda: db.finished(daemon.pid), "the daemon's first cycle")
    # Asleep, and done writing: "next cycle at" is logged before the beat that says so
    # (phase "finished", right after the cycle, comes earlier).
    wait_for(lambda: (db.lease() or {}).get("phase") == "sleeping", "the daemon to sleep")
    assert "next cycle at" in log_text(shop.dir)
    rotated = sorted(p.name for p in shop.dir.glob("ecsync.log.*"))

    log = shop.dir / "ecsync.log"
    manual = []
    while log.stat().st_size <= 1024 and len(manual) < 5:
        result = cli("sync", "--json")  # in this process: the non-rotating handler
        assert result.code == 0, result.err
        manual.append(json.loads(result.out)["cycle_id"])
    assert log.stat().st_size > 1024  # past max_bytes, yet the syncs did not rotate it
    assert sorted(p.name for p in shop.dir.glob("ecsync.log.*")) == rotated

    code, seconds = daemon.stop(signal.SIGTERM)  # in the interval sleep
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    text = log_text(shop.dir)
    for cycle in manual:  # the syncs' lines survived the daemon's rotation
        assert text.count(f"cycle {cycle} started") == 1
    assert "daemon stopping (SIGTERM received)" in text


def test_interval_zero_runs_cycles_back_to_back(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
) -> None:
    shop, db = shop_for_daemon(speed=SPEED, products=120)
    daemon = daemons(shop.config, "--interval", "0")
    wait_for(lambda: len(db.finished(daemon.pid)) >= 3, "three cycles", timeout=60)
    cycles = db.finished(daemon.pid)[:3]
    gaps = [
        (
            datetime.fromisoformat(str(b["started_at"]))
            - datetime.fromisoformat(str(a["finished_at"]))
        ).total_seconds()
        for a, b in itertools.pairwise(cycles)
    ]
    # The next cycle starts as soon as the last one ended: no interval's sleep between them
    # (1 s is bookkeeping on a loaded machine; any sleep would be an interval of some length).
    assert all(0 <= gap < 1.0 for gap in gaps), gaps
    assert all(c["status"] == "ok" for c in cycles), [(c["status"], c["error"]) for c in cycles]
    # Quotes a cycle just fetched are fresh: staleness is measured by the default cadence (2 x
    # 3 h), not by twice a zero interval (which would call every quote stale and hide all).
    stale = db.rows("SELECT reason FROM changes WHERE reason LIKE '%last good quote is%'")
    assert stale == [], stale[:3]
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 130 and seconds < PROMPT_STOP_S, (code, seconds)
    text = log_text(shop.dir)
    assert "cycles back to back (interval 0)" in text
    # The deadline is the default cadence's (3 h x 0.9, at the simulator's speed), not zero.
    assert f"each with a deadline of {10800 * 0.9 / SPEED:.1f} s" in text
    assert "longer than the interval" not in text and "next cycle at" not in text
