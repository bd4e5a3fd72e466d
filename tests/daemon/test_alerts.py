"""Alerts through apprise: what is worth telling, at most one per kind per interval, and
never a failure that could reach the cycle."""

from __future__ import annotations

import logging
import time

import pytest

from ecsync.alerts import (
    CYCLE_FAILED,
    GUARD_TRIPPED,
    THROTTLING,
    Alert,
    Alerts,
    cycle_alerts,
)
from tests.daemon.conftest import Webhook, free_port, wait_for


def test_what_a_cycle_summary_alerts_about() -> None:
    assert cycle_alerts({"cycle_id": 1, "status": "ok", "spapi_requests": 50}) == []
    failed = cycle_alerts({"cycle_id": 2, "status": "failed", "error": "deadline reached"})
    assert [a.kind for a in failed] == [CYCLE_FAILED]
    assert "deadline reached" in failed[0].body
    guard = cycle_alerts({"cycle_id": 3, "status": "ok", "mass_hide_tripped": ["base-1"]})
    assert [a.kind for a in guard] == [GUARD_TRIPPED] and "base-1" in guard[0].body
    drops = cycle_alerts({"cycle_id": 4, "status": "ok", "held_drops": 3})
    assert [a.kind for a in drops] == [GUARD_TRIPPED] and "3 price cuts" in drops[0].body
    throttled = cycle_alerts({"status": "ok", "spapi_requests": 40, "spapi_throttled": 6})
    assert [a.kind for a in throttled] == [THROTTLING]
    assert cycle_alerts({"status": "ok", "spapi_requests": 400, "spapi_throttled": 6}) == []


def test_at_most_one_alert_per_kind_per_interval(webhook: Webhook) -> None:
    now = [0.0]
    alerts = Alerts([webhook.url], min_gap_s=60.0, clock=lambda: now[0])
    try:
        assert alerts.send(Alert(CYCLE_FAILED, "cycle 1 failed", "first"))
        assert not alerts.send(Alert(CYCLE_FAILED, "cycle 2 failed", "second"))
        assert not alerts.send(Alert(CYCLE_FAILED, "cycle 3 failed", "third"))
        assert alerts.send(Alert(GUARD_TRIPPED, "guard", "another kind goes out"))
        now[0] = 61.0
        assert alerts.send(Alert(CYCLE_FAILED, "cycle 4 failed", "fourth"))
        wait_for(lambda: len(webhook.messages) == 3, "three messages")
    finally:
        alerts.close()
    titles = webhook.titles()
    assert [t.split(": ", 1)[1] for t in titles] == ["cycle 1 failed", "guard", "cycle 4 failed"]
    assert "2 similar alerts held back" in webhook.messages[2]["message"]


def test_an_unreachable_or_unknown_target_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    unknown = Alerts(["nonsense://whatever"], min_gap_s=1)
    assert not unknown.enabled and not unknown.send(Alert(CYCLE_FAILED, "x", "y"))
    assert "apprise does not understand this nonsense:// URL" in caplog.text
    assert "whatever" not in caplog.text  # a URL may hold a token: never logged

    down = Alerts([f"json://127.0.0.1:{free_port()}/"], min_gap_s=1)
    assert down.send(Alert(CYCLE_FAILED, "cycle failed", "nobody listens"))
    wait_for(lambda: "did not reach every target" in caplog.text, "the delivery warning")
    started = time.monotonic()
    down.close(timeout=0.5)
    assert time.monotonic() - started < 3.0  # the close bounds its wait; loose for a busy CPU
