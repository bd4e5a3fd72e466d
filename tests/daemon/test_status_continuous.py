"""``ecsync status`` speaks the daemon's mode: in continuous mode a cycle is a reporting
window (the refresh never stops; a window closes the books), so the text says "window" there
and keeps "cycle" for the sweep; the live Refresh line shows the queue and probe hit rate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ecsync.config import load_settings
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.schema import Cycle
from tests.conftest import CliResult
from tests.daemon.conftest import daemon_lease

REFRESH = {
    "queue": {"urgent": 1, "new": 0, "overdue": 4, "in_flight": 2},
    "probes": 200,
    "probe_hits": 50,
}


def _running_daemon(config: Path, progress: dict[str, Any]) -> None:
    """A live daemon's lease (this process, fresh heartbeat) in a window that started 20
    minutes ago and closes in 40, plus one finished cycle row."""
    engine = make_engine(load_settings(config).database_url)
    now = datetime.now(UTC)
    with transaction(session_factory(engine)) as session:
        session.add(
            daemon_lease(
                since=now - timedelta(hours=2),
                heartbeat_at=now,
                phase="refresh",
                progress={"interval_s": 3600.0, **progress},
                next_cycle_at=now + timedelta(minutes=40),
            )
        )
        session.add(
            Cycle(
                started_at=now - timedelta(minutes=80),
                finished_at=now - timedelta(minutes=20),
                status="ok",
                summary={},
            )
        )
    engine.dispose()


@pytest.mark.parametrize(
    "progress",
    [{"mode": "continuous", "refresh": REFRESH}, {"refresh": REFRESH}],
    ids=["heartbeat-says-continuous", "older-heartbeat-with-scheduler-figures"],
)
def test_a_continuous_daemon_is_described_in_windows(
    write_config: Callable[..., Path],
    cli: Callable[..., CliResult],
    progress: dict[str, Any],
) -> None:
    config = write_config()
    assert cli("init").code == 0
    _running_daemon(config, progress)
    text = " ".join(cli("status").out.split())  # rich wraps lines: compare words
    assert "Daemon: refreshing (reporting window)" in text, text
    assert "continuous refresh, a reporting window every 60 min" in text, text
    assert "this window closes" in text and "(in 40 min)" in text, text
    assert "Last reporting windows (most recent first)" in text, text
    assert "left open for the next window" in text, text
    assert "Refresh (continuous): queue 1 urgent, 0 new, 4 overdue, 2 in flight" in text, text
    assert "200 probes, 50 led to a change (25.0%)" in text, text
    assert "cycle" not in text.replace("ecsync", ""), text


def test_a_sweep_daemon_keeps_its_cycles(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    config = write_config()
    assert cli("init").code == 0
    _running_daemon(config, {"mode": "sweep"})
    text = " ".join(cli("status").out.split())
    assert "Daemon: running a cycle" in text, text
    assert "a cycle every 60 min" in text and "next cycle due" in text, text
    assert "Last cycles (most recent first)" in text, text
    assert "between its cycles" in text, text
    assert "reporting window" not in text and "next window" not in text, text
    assert "Refresh (continuous)" not in text, text
