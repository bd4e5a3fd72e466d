"""`ecsync status` from the database alone: readable for a new user, complete as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecsync.config import load_settings
from ecsync.status import _reason_key
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.schema import ApiUsage
from tests.conftest import CliResult
from tests.daemon.conftest import daemon_lease


def _status(cli: Callable[..., CliResult]) -> dict[str, Any]:
    result = cli("status", "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _fresh(write_config: Callable[..., Path], cli: Callable[..., CliResult]) -> Path:
    config = write_config()
    assert cli("init").code == 0
    return config


def test_status_of_a_new_shop(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    _fresh(write_config, cli)
    data = _status(cli)
    assert set(data) >= {"daemon", "cycles", "quotes", "changes", "lock", "budgets"}
    daemon = data["daemon"]
    assert daemon["state"] == "stopped" and daemon["pid"] is None
    assert {"pid", "host", "since", "heartbeat_at", "next_cycle_at"} <= set(daemon)
    assert data["cycles"] == [] and data["lock"] is None and data["changes"] == {}
    assert data["quotes"]["total"] == 0
    assert data["quotes"]["interval_s"] == 3 * 3600
    hour = data["budgets"]["base:base-1:hour"]
    assert hour["remaining"] == hour["limit"] == 5000
    assert data["budgets"]["ebay:ebay-1:day"]["remaining"] == 5000

    human = cli("status").out
    assert "Daemon: stopped — no daemon is running: no daemon has run on this database yet" in human
    assert "Start one with `ecsync daemon`" in human
    assert "Cycles: none yet" in human and "Lock: free" in human


def test_a_stalled_daemon_and_used_budgets(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    config = _fresh(write_config, cli)
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    now = datetime.now(UTC)
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    with transaction(session_factory(engine)) as session:
        session.add(
            daemon_lease(
                since=now - timedelta(hours=1),
                heartbeat_at=now - timedelta(minutes=5),
                phase="fetch",
                progress={"interval_s": 600.0},  # alive, but its heartbeat is five minutes old
                next_cycle_at=None,
            )
        )
        session.add(
            ApiUsage(
                key="base:base-1:hour",
                window_start=hour_start,
                window_count=120,
                window_limit=5000,
                updated_at=now,
            )
        )
        session.add(
            ApiUsage(
                key="base:base-2:hour",
                window_start=hour_start - timedelta(hours=1),  # last hour's: whole again
                window_count=4999,
                window_limit=5000,
                updated_at=now - timedelta(hours=1),
            )
        )
    engine.dispose()
    data = _status(cli)
    assert data["daemon"]["state"] == "stalled"
    assert "no heartbeat for 300 s" in data["daemon"]["note"]
    assert data["daemon"]["interval_s"] == 600.0 and data["quotes"]["interval_s"] == 600.0
    assert data["budgets"]["base:base-1:hour"]["remaining"] == 5000 - 120
    assert data["budgets"]["base:base-2:hour"]["remaining"] == 5000
    assert "Daemon: STALLED" in cli("status").out


def test_reasons_group_whatever_their_numbers() -> None:
    one = _reason_key("held", "out of stock; held: price cut 63.2% exceeds max_drop_pct 50%", None)
    two = _reason_key("held", "held: price cut 71.0% exceeds max_drop_pct 50%", None)
    assert one == two == "held: price cut N% exceeds max_drop_pct N%"
    assert _reason_key("failed", "price raise", "BASE 400: bad_item_id 17") == (
        "BASE N: bad_item_id N"
    )


def test_daemon_usage_errors_exit_2(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    _fresh(write_config, cli)
    bad = cli("daemon", "--interval", "soon")
    assert bad.code == 2 and "--interval: not a duration: 'soon'" in bad.err
    missing = cli("daemon")  # the basic config has no credentials
    assert missing.code == 2 and "amazon.client_id: required" in missing.err
