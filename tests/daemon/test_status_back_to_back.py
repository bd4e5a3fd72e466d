"""`ecsync status` of a daemon running ``--interval 0``: quote freshness is judged by the same
period the daemon judges it by (the default 3 h cadence), not by the config's interval, which
that daemon is not following; and the human view says the cycles run back to back."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecsync.config import load_settings
from ecsync.store.engine import make_engine, session_factory, transaction
from tests.conftest import BASIC_CONFIG, CliResult
from tests.daemon.conftest import daemon_lease

BACK_TO_BACK_S = 3 * 3600  # the daemon's deadline, stale_after and /healthz measure by it


def test_status_of_a_back_to_back_daemon(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    config = write_config(BASIC_CONFIG + '\n[daemon]\ninterval = "30m"\n')
    assert cli("init").code == 0
    engine = make_engine(load_settings(config).database_url)
    now = datetime.now(UTC)
    with transaction(session_factory(engine)) as session:
        session.add(
            daemon_lease(
                since=now - timedelta(minutes=1),
                heartbeat_at=now,
                phase="fetch",
                progress={"interval_s": 0.0},  # what `daemon --interval 0` publishes
                next_cycle_at=None,
            )
        )
    engine.dispose()
    result = cli("status", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["daemon"]["interval_s"] == 0.0
    assert data["quotes"]["interval_s"] == BACK_TO_BACK_S
    human = cli("status").out
    assert "cycles back to back (interval 0)" in human
