"""/healthz judges the heartbeat and the last success; /metrics is Prometheus text."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ecsync.health import DaemonMetrics, HealthServer, HealthState, cycle_succeeded


class FakeTime:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def served(clock: FakeTime) -> Iterator[tuple[HealthServer, HealthState]]:
    state = HealthState(interval_s=60.0, started_at=clock.now, clock=clock)
    server = HealthServer("127.0.0.1", 0, state, DaemonMetrics()).start()
    try:
        yield server, state
    finally:
        server.close()


def test_healthz_turns_503_when_the_heartbeat_is_old(
    served: tuple[HealthServer, HealthState], clock: FakeTime
) -> None:
    server, state = served
    state.heartbeat_at = clock.now
    state.state, state.phase = "running", "fetch"
    ok = httpx.get(f"{server.url}/healthz")
    assert ok.status_code == 200 and ok.text.startswith("ok: running fetch")

    clock.now += 45  # three heartbeats missed: the loop is stuck, the HTTP thread is not
    stalled = httpx.get(f"{server.url}/healthz")
    assert stalled.status_code == 503
    assert "stalled: no heartbeat for 45 s (limit 30 s)" in stalled.text
    assert "'fetch'" in stalled.text


def test_healthz_turns_503_without_a_successful_cycle_for_two_intervals(
    served: tuple[HealthServer, HealthState], clock: FakeTime
) -> None:
    server, state = served
    clock.now += 100
    state.heartbeat_at = clock.now
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # 100 s < 2 x 60 s
    clock.now += 30
    state.heartbeat_at = clock.now
    never = httpx.get(f"{server.url}/healthz")
    assert never.status_code == 503 and "no successful cycle since the daemon started" in never.text

    state.last_success_at = clock.now - 10
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    state.last_success_at = clock.now - 121
    old = httpx.get(f"{server.url}/healthz")
    assert old.status_code == 503 and "older than 2 intervals (120 s)" in old.text
    assert httpx.get(f"{server.url}/nothing").status_code == 404


def test_metrics_parse_and_add_up_cycle_summaries(
    served: tuple[HealthServer, HealthState],
) -> None:
    server, _ = served
    summary = {
        "cycle_id": 7,
        "status": "partial",
        "asins": 40,
        "spapi_requests": 3,
        "spapi_throttled": 1,
        "quotes_ok": 30,
        "quotes_out_of_stock": 5,
        "quotes_no_eligible_offer": 3,
        "quotes_error": 2,
        "changes_planned": 9,
        "changes_applied": 8,
        "changes_failed": 1,
        "changes_held": 2,
        "channel_calls": 11,
        "duration_s": 2.5,
    }
    server.metrics.record_cycle(summary, finished_at=1234.0)
    server.metrics.record_cycle({**summary, "cycle_id": 8, "status": "failed"}, 1300.0)
    server.metrics.record_store(
        {"by_status": {"ok": 30, "error": 2}, "older_than_1x": 4, "older_than_2x": 1},
        {"base:b:hour": {"platform": "base", "account": "b", "window": "hour", "remaining": 7}},
    )
    response = httpx.get(f"{server.url}/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("ecsync_quotes_total", (("status", "ok"),))] == 60
    assert samples[("ecsync_changes_total", (("status", "held"),))] == 4
    assert samples[("ecsync_cycles_total", (("status", "partial"),))] == 1
    assert samples[("ecsync_cycles_total", (("status", "failed"),))] == 1
    assert samples[("ecsync_spapi_throttled_total", ())] == 2
    assert samples[("ecsync_channel_calls_total", ())] == 22
    assert samples[("ecsync_last_cycle_id", ())] == 8
    assert samples[("ecsync_last_cycle_status", (("status", "failed"),))] == 1
    assert samples[("ecsync_last_success_timestamp_seconds", ())] == 1234.0
    assert samples[("ecsync_cycle_duration_seconds_count", ())] == 2
    assert samples[("ecsync_quotes_older_than_intervals", (("intervals", "2"),))] == 1
    budget = (("account", "b"), ("budget", "hour"), ("platform", "base"))
    assert samples[("ecsync_api_budget_remaining", budget)] == 7


@pytest.mark.parametrize(
    ("summary", "succeeded"),
    [
        ({"status": "ok", "asins": 10}, True),
        ({"status": "partial", "asins": 10, "quotes_error": 3}, True),
        ({"status": "partial", "asins": 10, "quotes_error": 10}, False),
        ({"status": "failed", "asins": 10}, False),
        ({"status": "dry_run", "asins": 10}, False),
    ],
)
def test_what_counts_as_a_successful_cycle(summary: dict[str, object], succeeded: bool) -> None:
    assert cycle_succeeded(summary) is succeeded
