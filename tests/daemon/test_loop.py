"""The schedule loop in-process: its heartbeat while working and while idle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ecsync.alerts import Alerts
from ecsync.app import open_app
from ecsync.clock import Stop
from ecsync.config import load_settings
from ecsync.daemon import Daemon
from ecsync.errors import Interrupted
from ecsync.health import DaemonMetrics, HealthState
from ecsync.lock import InstanceLock, lock_path
from tests.daemon.conftest import Db
from tests.integration.conftest import Shop


async def _until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


async def test_the_heartbeat_is_refreshed_while_working_and_while_idle(
    shop_for_daemon: Callable[..., tuple[Shop, Db]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ecsync.daemon.HEARTBEAT_S", 0.1)  # 5 s in production
    shop, db = shop_for_daemon(speed=100.0, products=300)  # 15 batches at 10/s
    loaded = load_settings(shop.config)
    interval = loaded.daemon.model_copy(update={"interval": timedelta(minutes=10)})  # 6 s
    settings = loaded.model_copy(update={"daemon": interval})
    app = open_app(settings)
    locks = {
        name: InstanceLock(
            app.sessions, name, lock_path(settings.database_url, settings.config_path, name)
        )
        for name in ("daemon", "cycle")
    }
    locks["daemon"].acquire()
    health = HealthState(interval_s=6.0)
    stop = Stop()
    daemon = Daemon(
        app,
        stop,
        daemon_lock=locks["daemon"],
        cycle_lock=locks["cycle"],
        alerts=Alerts([], min_gap_s=6.0),
        metrics=DaemonMetrics(),
        health=health,
    )
    task = asyncio.create_task(daemon.run())
    try:

        def lease() -> dict[str, Any]:
            return db.lease() or {}

        working = await _until(
            lambda: (
                (row := lease()).get("state") == "running"
                and '"batches_done": ' in str(row.get("progress"))
                and row
            ),
            "a heartbeat with the cycle's progress",
        )
        assert working["phase"] == "fetch"
        assert await _until(
            lambda: lease().get("heartbeat_at") != working["heartbeat_at"], "a beat"
        )
        idle = await _until(lambda: (row := lease()).get("state") == "idle" and row, "idle")
        assert idle["next_cycle_at"] is not None
        beats = {idle["heartbeat_at"]}
        while len(beats) < 3:  # refreshed while it sleeps, not only when it wakes
            row = await _until(lambda: lease().get("heartbeat_at") not in beats, "an idle beat")
            assert row and lease()["state"] == "idle"
            beats.add(lease()["heartbeat_at"])
        assert health.verdict()[0], health.verdict()

        stop.set("test stop")
        started = time.monotonic()
        with pytest.raises(Interrupted):
            await asyncio.wait_for(task, timeout=30)
        assert time.monotonic() - started < 4.0  # in-process; loose for a busy CPU
        assert daemon.cycles_run == 1
    finally:
        if not task.done():
            task.cancel()
        locks["daemon"].release()
        app.close()
